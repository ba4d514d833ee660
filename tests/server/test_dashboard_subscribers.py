"""Dashboards' subscribers: an e-mail (a real SMTP server, aiosmtpd) with a link and the PDF
(printed by the machine's Chromium) for each new render, recorded as the run's notifications."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import chromium_path as chromium_path  # a fixture (installs Chromium)

from .conftest import server_config
from .test_dashboard_access import ADA, BOB
from .test_dashboards import WIDGET_NB, dashboard_notebook, platform
from .test_jobs import wait_for
from .test_notify import Mailbox
from .test_notify import smtp as smtp  # a fixture

pytestmark = pytest.mark.kernel


@pytest.fixture
def store_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jp_server_config(store_url: str, smtp: tuple[Mailbox, int]) -> dict[str, Any]:
    return server_config(
        store_url,
        ServerApp={"identity_provider_class": "tests.server.identities.HeaderUsers"},
        DataOps={"warm_kernels": 0, "job_workers": 1, "smtp_host": "127.0.0.1",
                 "smtp_port": smtp[1], "smtp_from": "dashboards@lab.test"},
    )  # fmt: skip


async def test_subscribers_get_each_new_render_with_its_pdf(
    jp_serverapp, http_server_client, jp_root_dir, api, smtp, chromium_path
):
    box, _ = smtp
    dashboard_notebook(jp_root_dir / "nb" / "report.ipynb", *WIDGET_NB)
    await jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    code, job = await api("POST", "jobs", {"name": "weekly", "notebook_path": "nb/report.ipynb"},
                          headers=ADA)  # fmt: skip
    code, d = await api("POST", "dashboards", {
        "slug": "weekly", "title": "Weekly delays", "job": "weekly", "run_now": True,
        "viewers": {"users": ["bob"]}}, headers=ADA)  # fmt: skip
    assert code == 201, d
    await wait_for(lambda *a: api(*a, headers=ADA), d["pending_run"])
    platform(jp_serverapp).dashboards.drain(60)
    assert box.messages == []  # no subscriber yet

    code, sub = await api("PUT", "dashboards/weekly/subscription",
                          {"email": "bob@example.com"}, headers=BOB)  # fmt: skip
    assert code == 200 and sub["email"] == "bob@example.com" and sub["pdf"] is True
    code, info = await api("GET", "dashboards/weekly", headers=BOB)
    assert info["subscribed"] is True
    code, bad = await api("PUT", "dashboards/weekly/subscription", {"email": "not an address"},
                          headers=BOB)  # fmt: skip
    assert code == 400 and "email" in bad["error"]["message"]

    code, run = await api("POST", "runs", {"job": "weekly", "parameters": {"n": 12}}, headers=ADA)
    assert (await wait_for(lambda *a: api(*a, headers=ADA), run["id"]))["status"] == "succeeded"
    platform(jp_serverapp).dashboards.drain(120)
    platform(jp_serverapp).notifier.drain(60)
    assert len(box.messages) == 1
    msg = box.messages[0]
    assert msg["To"] == "bob@example.com" and msg["Subject"] == "[dataops] Weekly delays updated"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "/dataops/dashboards/weekly" in text and '"n": 12' in text
    pdfs = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdfs and pdfs[0].get_content().startswith(b"%PDF-")
    code, done = await api("GET", f"runs/{run['id']}", headers=ADA)
    assert [(n["channel"], n["event"], n["status"]) for n in done["notifications"]] == [
        ("email", "render", "sent")
    ]

    # Unsubscribed: the next render sends nothing.
    code, _ = await api("DELETE", "dashboards/weekly/subscription", headers=BOB)
    assert code == 204
    code, run = await api("POST", "runs", {"job": "weekly"}, headers=ADA)
    await wait_for(lambda *a: api(*a, headers=ADA), run["id"])
    platform(jp_serverapp).dashboards.drain(120)
    platform(jp_serverapp).notifier.drain(60)
    assert len(box.messages) == 1
