"""The DataOps sidebar against a real `jupyter lab`, in headless Chromium."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

import jupyter_dataops

from .conftest import LabServer
from .pages import COUNT_KINDS, LabPage

pytestmark = pytest.mark.ui

INVALID_CONFIG = """\
version: 1
groups:
  analysts:
    members: 5
"""


def _wait_for_api(server: LabServer, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status = server.status()
    while not predicate(status):
        if time.monotonic() > deadline:
            pytest.fail(f"the API never reached the expected state: {json.dumps(status)}")
        time.sleep(0.2)
        status = server.status()
    return status


def test_sidebar_shows_the_status_the_api_reports(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    lab.open_sidebar().wait_for_status()
    api = lab_server.status()

    assert lab.user() == api["user"]["name"]
    assert lab.groups() == api["user"]["groups"]
    assert "analysts" in api["user"]["groups"], "dataops.yaml makes the user an analyst"
    assert lab.version() == jupyter_dataops.__version__ == api["version"]
    assert lab.store_url() == api["store"]["url"]
    assert lab.counts() == {k: api["counts"][k] for k in COUNT_KINDS}
    assert api["workspace"]["config_error"] is None
    assert lab.config_error.count() == 0
    assert lab.error.count() == 0
    assert "Loading…" not in lab.status_text()

    shot = lab.screenshot(artifacts_dir / "sidebar.png")
    assert shot.stat().st_size > 0


def test_refresh_shows_where_dataops_yaml_is_invalid(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    lab.open_sidebar().wait_for_status()
    assert lab.config_error.count() == 0

    lab_server.config_file.write_text(INVALID_CONFIG)
    api = _wait_for_api(lab_server, lambda s: s["workspace"]["config_error"] is not None)
    problem = api["workspace"]["config_error"]
    assert problem["line"] == 4  # sanity check of the server's answer: `members: 5`

    lab.refresh()
    lab.config_error.wait_for(state="visible", timeout=15_000)
    warning = lab.config_error.inner_text()
    assert problem["file"] in warning
    assert lab.field("dataops-config-error-file").inner_text() == problem["file"]
    assert re.search(rf"\bline {problem['line']}\b", warning), warning
    if problem.get("field"):
        assert problem["field"] in warning
    assert problem["message"] in warning
    assert lab.config_error.get_attribute("role") == "alert"
    lab.screenshot(artifacts_dir / "sidebar-config-error.png")


def test_server_error_is_shown_and_refresh_recovers(lab: LabPage, lab_server: LabServer) -> None:
    lab.open_sidebar().wait_for_status()
    message = "The metadata store is unavailable: database is locked"

    def unavailable(route: Any) -> None:
        route.fulfill(
            status=503,
            content_type="application/json",
            body=json.dumps({"error": {"code": "unavailable", "message": message, "details": {}}}),
        )

    pattern = re.compile(r"/dataops/api/v1/status(\?.*)?$")
    lab.page.route(pattern, unavailable)
    lab.refresh()
    lab.error.wait_for(state="visible", timeout=15_000)
    assert lab.error.inner_text() == message
    assert lab.error.get_attribute("role") == "alert"
    assert lab.refresh_button.is_visible()

    lab.page.unroute(pattern)
    lab.refresh()
    lab.error.wait_for(state="detached", timeout=15_000)
    assert lab.user() == lab_server.status()["user"]["name"]
