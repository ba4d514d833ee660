"""Bad input: every failure is the one JSON error shape with the right status."""

from __future__ import annotations

import pytest


def assert_error(body, code):  # type: ignore[no-untyped-def]
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_malformed_json_is_400(api):
    code, body = await api("POST", "workspace/validate", raw=b'{"text": "groups: {}"')
    assert code == 400
    assert_error(body, "invalid_request")
    assert "not valid JSON" in body["error"]["message"]


async def test_empty_body_is_400(api):
    code, body = await api("POST", "workspace/validate")
    assert code == 400
    assert_error(body, "invalid_request")


async def test_wrong_type_names_the_field(api):
    code, body = await api("POST", "workspace/validate", body={"text": 42})
    assert code == 400
    assert_error(body, "invalid_request")
    assert body["error"]["details"]["errors"][0]["field"] == "text"
    assert "text" in body["error"]["message"]


async def test_unknown_field_is_rejected(api):
    code, body = await api("POST", "workspace/validate", body={"text": "", "txet": "x"})
    assert code == 400
    assert body["error"]["details"]["errors"][0]["field"] == "txet"


async def test_not_json_content_type_is_400(api):
    code, body = await api(
        "POST",
        "workspace/validate",
        raw=b"text=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert code == 400
    assert_error(body, "invalid_request")


@pytest.mark.parametrize("path", ["nope", "status/extra", "datasets/flights/../../x"])
async def test_unknown_route_is_json_404(api, path):
    code, body = await api("GET", path)
    assert code == 404
    assert_error(body, "not_found")


async def test_wrong_method_is_json_405(api):
    code, body = await api("DELETE", "status")
    assert code == 405
    assert_error(body, "method_not_allowed")


async def test_validate_reports_problems_without_saving(api, jp_root_dir):
    code, body = await api(
        "POST", "workspace/validate", body={"text": "groups:\n  a:\n    members: 5\n"}
    )
    assert code == 200
    assert body["valid"] is False
    problem = body["problems"][0]
    assert problem["line"] == 3 and problem["field"] == "groups.a.members"
    assert not (jp_root_dir / "dataops.yaml").exists()
    code, body = await api("POST", "workspace/validate", body={"text": "groups: {}\n"})
    assert body == {"valid": True, "problems": []}


def _alias_bomb(levels: int = 7, width: int = 9) -> str:
    text = "a0: &a0 [" + ", ".join(['"lol"'] * width) + "]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n"
    return text


async def test_validate_refuses_an_alias_bomb_naming_the_limit(api):
    bomb = _alias_bomb()
    assert len(bomb) < 400  # a few hundred bytes, 9**7 values once expanded
    code, body = await api("POST", "workspace/validate", body={"text": bomb})
    assert code == 400
    assert_error(body, "invalid_request")
    assert "aliases" in body["error"]["message"] and "200,000" in body["error"]["message"]
    assert body["error"]["details"]["limit"] == 200_000
    deep = "groups: " + "[" * 500 + "]" * 500
    code, body = await api("POST", "workspace/validate", body={"text": deep})
    assert code == 400 and "nesting" in body["error"]["message"]


async def test_policy_files_are_parsed_off_the_event_loop_and_bounded(
    api, jp_root_dir, monkeypatch
):
    import threading

    from jupyter_dataops import config

    threads: list[str] = []
    real = config.parse_config

    def spy(text: str, file: str) -> config.WorkspaceConfig:
        threads.append(threading.current_thread().name)
        return real(text, file)

    from jupyter_dataops.handlers import workspace

    monkeypatch.setattr(config, "parse_config", spy)
    monkeypatch.setattr(workspace, "parse_config", spy)
    loop_thread = threading.current_thread().name  # the server's loop runs the test too
    (jp_root_dir / "dataops.yaml").write_text("groups:\n  analysts:\n    members: [ada]\n")
    code, body = await api("GET", "status")
    assert code == 200 and body["user"]["groups"] == ["analysts"]
    await api("POST", "workspace/validate", body={"text": "groups: {}\n"})
    assert len(threads) >= 2 and loop_thread not in threads, threads
    # A bomb written to the file itself is refused like any invalid file: the last good
    # policy stays in force and the problem names the limit.
    (jp_root_dir / "dataops.yaml").write_text(_alias_bomb() + "groups: {}\n")
    code, body = await api("GET", "status")
    assert code == 200 and body["user"]["groups"] == ["analysts"]
    assert "200,000" in body["workspace"]["config_error"]["message"]
