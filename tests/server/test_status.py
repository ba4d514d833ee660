"""GET /status: what the sidebar and `jupyter dataops status` show."""

from __future__ import annotations

import os
import time
from pathlib import Path

import sqlalchemy as sa

import jupyter_dataops
from jupyter_dataops.store.migrate import head_revision


async def test_status_reports_user_store_and_counts(api, jp_serverapp, store_url):
    code, body = await api("GET", "status")
    assert code == 200, body
    assert body["version"] == jupyter_dataops.__version__
    # A personal server maps Jupyter's anonymous token user to c.DataOps.local_user.
    assert body["user"]["name"] == "ada"
    assert body["store"]["dialect"] == sa.make_url(store_url).get_backend_name()
    assert body["store"]["revision"] == head_revision()
    assert body["counts"] == {"datasets": 0, "jobs": 0, "runs": 0, "dashboards": 0}
    assert body["workspace"]["root"] == str(Path(jp_serverapp.root_dir).resolve())


async def test_counts_follow_the_store(api, jp_serverapp):
    platform = jp_serverapp.web_app.settings["dataops"]
    from jupyter_dataops.store import tables as t

    with platform.store.session() as s:
        s.add(t.Dataset(name="flights", owner="ada"))
        s.add(t.Dataset(name="weather", owner="ada"))
        s.add(t.Dashboard(name="delays", owner="ada"))
    code, body = await api("GET", "status")
    assert code == 200
    assert body["counts"] == {"datasets": 2, "jobs": 0, "runs": 0, "dashboards": 1}


async def test_groups_come_from_dataops_yaml(api, jp_root_dir):
    (jp_root_dir / "dataops.yaml").write_text(
        "groups:\n  analysts:\n    members: [ada, bob]\n  ops:\n    members: [bob]\n"
    )
    code, body = await api("GET", "status")
    assert code == 200
    assert body["user"]["groups"] == ["analysts"]
    assert body["workspace"]["config_loaded"] is True
    assert body["workspace"]["config_error"] is None


def _rewrite(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:  # coarse file-system clocks
        os.utime(path, ns=(time.time_ns(), before + 1_000_000))


async def test_invalid_config_keeps_last_good_and_names_line_and_field(api, jp_root_dir):
    cfg = jp_root_dir / "dataops.yaml"
    _rewrite(cfg, "groups:\n  analysts:\n    members: [ada]\n")
    assert (await api("GET", "status"))[1]["user"]["groups"] == ["analysts"]

    _rewrite(cfg, "groups:\n  analysts:\n    members: [ada]\n  ops:\n    memberz: [ada]\n")
    code, body = await api("GET", "status")
    assert code == 200  # the server keeps serving
    err = body["workspace"]["config_error"]
    assert err["file"] == str(cfg)
    assert err["line"] == 5
    assert err["field"] == "groups.ops.memberz"
    # The last good config stays in force: still in analysts, not in ops.
    assert body["user"]["groups"] == ["analysts"]

    _rewrite(cfg, "groups:\n  ops:\n    members: [ada]\n")
    code, body = await api("GET", "status")
    assert body["workspace"]["config_error"] is None
    assert body["user"]["groups"] == ["ops"]


async def test_store_password_is_hidden(jp_serverapp):
    platform = jp_serverapp.web_app.settings["dataops"]
    from jupyter_dataops.store import redact_url

    url = "postgresql+psycopg://alice:s3cret@db.example:5432/meta"
    assert "s3cret" not in redact_url(url)
    assert redact_url(url) == "postgresql+psycopg://alice:***@db.example:5432/meta"
    assert "***" not in platform.store.redacted_url or ":***@" in platform.store.redacted_url
