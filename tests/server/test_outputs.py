"""A run's extra output formats: HTML and PDF (printed by the machine's Chromium)."""

from __future__ import annotations

import pytest

from tests.server.test_jobs import jobs, notebook, store_url, wait_for  # noqa: F401
from tests.ui.conftest import chromium_path  # noqa: F401  (apt-installs it when missing)

pytestmark = pytest.mark.kernel


@pytest.fixture
def server(jobs, jp_root_dir):  # type: ignore[no-untyped-def]  # noqa: F811
    notebook(
        jp_root_dir / "nb" / "report.ipynb",
        "title = 'Quarterly'",
        "print(f'REPORT {title} 42')",
    )
    return jobs


async def test_html_and_pdf_outputs_of_a_run(server, api, jp_fetch, chromium_path):  # noqa: F811
    code, run = await api(
        "POST",
        "runs",
        {
            "notebook_path": "nb/report.ipynb",
            "parameters": {"title": "Q3"},
            "output_formats": ["html", "pdf"],
        },
    )
    assert code == 201, run
    done = await wait_for(api, run["id"], timeout=120)
    assert done["status"] == "succeeded", done
    assert {"notebook", "html", "pdf"} <= set(done["outputs"])
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "html")
    assert "REPORT Q3 42" in resp.body.decode()
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "pdf")
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.body.startswith(b"%PDF-") and len(resp.body) > 1000


async def test_pdf_is_refused_where_no_renderer_is_installed(server, api, monkeypatch):
    monkeypatch.setenv("DATAOPS_PDF_BROWSER", "/nonexistent/chromium")
    code, body = await api(
        "POST", "runs", {"notebook_path": "nb/report.ipynb", "output_formats": ["pdf"]}
    )
    assert code == 400
    assert "'pdf' is not available" in body["error"]["message"]
    assert "/nonexistent/chromium" in body["error"]["message"]
    assert body["error"]["details"]["field"] == "output_formats"
    code, runs = await api("GET", "runs")
    assert runs["runs"] == []  # nothing was queued
    code, body = await api(
        "POST", "runs", {"notebook_path": "nb/report.ipynb", "output_formats": ["docx"]}
    )
    assert code == 400 and "unknown output format 'docx'" in body["error"]["message"]
