"""Bad input: every failure is the one JSON error shape with the right status."""

from __future__ import annotations

import re

import pytest

from jupyter_dataops.handlers import RESOURCES


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


@pytest.mark.parametrize("handler", RESOURCES, ids=lambda h: h.path)
async def test_every_route_requires_auth(api, handler):
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "flights", handler.path)
    for method in handler.operations:
        code, body = await api(
            method.upper(),
            path,
            body={} if method not in ("get", "delete") else None,
            headers={"Authorization": ""},
        )
        assert code == 401, (method, handler.path, body)
        assert_error(body, "unauthorized")


async def test_forged_dataops_token_is_401(api, jp_serverapp):
    platform = jp_serverapp.web_app.settings["dataops"]
    good = platform.tokens.mint("ada")
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    code, body = await api("GET", "status", headers={"Authorization": f"DataOps {forged}"})
    assert code == 401
    assert_error(body, "unauthorized")


async def test_dataops_token_acts_as_its_user(api, jp_serverapp):
    platform = jp_serverapp.web_app.settings["dataops"]
    token = platform.tokens.mint("grace", scope="kernel")
    code, body = await api("GET", "status", headers={"Authorization": f"DataOps {token}"})
    assert code == 200
    assert body["user"]["name"] == "grace"


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
