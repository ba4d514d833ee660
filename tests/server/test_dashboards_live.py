"""The live view: Voila executing the dashboard's notebook for one viewer, as that viewer, in a
kernel from a capped pool; query parameters validated first."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import server_config
from .test_dashboards import dashboard_notebook, platform
from .test_jobs import wait_for

pytestmark = pytest.mark.kernel

POLICY = """
admins: [root]
datasets:
  flights:
    owner: ada
    source: {type: csv, path: data/flights.csv}
  salaries:
    owner: ada
    source: {type: csv, path: data/salaries.csv}
grants:
  - users: [ada]
    datasets: [flights, salaries]
  - users: [bob]
    datasets: [flights]
    row_filter: "carrier = 'AA'"
"""

LIVE_NB = (
    "# Live flights",
    "carrier = 'AA'\nminimum = 0",
    "import json, os, jupyter_dataops as dops\n"
    "who = dops.status()['user']['name']\n"
    "print('VIEWER', who, os.environ.get('DATAOPS_DASHBOARD'))\n"
    "from jupyter_dataops.client import _claims, TOKEN_ENV\n"
    "c = _claims(os.environ[TOKEN_ENV])\n"
    "print('TOKEN', c['scope'], c['sub'], c.get('kid') == os.environ.get('VOILA_KERNEL_ID'),\n"
    "      c['exp'] > c['iat'])",
    "df = dops.pull('flights', where=f'dep_delay >= {int(minimum)}')\n"
    "print('ROWS', len(df), sorted(set(df['carrier'])))",
    "try:\n"
    "    dops.run_notebook('nb/live.ipynb', wait=False)\n"
    "    print('ACTED', 'yes')\n"
    "except dops.DataOpsClientError as e:\n"
    "    print('ACTED', e.status)",
    "import ipywidgets as w\n"
    "b = w.Button(description='Ping')\nout = w.Label(value='not yet')\n"
    "b.on_click(lambda _: setattr(out, 'value', f'pong for {who}'))\n"
    "w.VBox([b, out])",
    "print('SALARIES', len(dops.pull('salaries')))",
    "print('AFTER THE REFUSAL')",
)

ADA, BOB, CAROL = ({"Authorization": f"token user-{n}"} for n in ("ada", "bob", "carol"))


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jp_server_config(store_url: str) -> dict[str, Any]:
    return server_config(
        store_url,
        ServerApp={"identity_provider_class": "tests.server.identities.HeaderUsers"},
        DataOps={"warm_kernels": 0, "job_workers": 1, "live_kernels": 2, "live_pool": 1,
                 "live_idle_timeout": 600, "live_preload": ["ipywidgets"]},
    )  # fmt: skip


@pytest.fixture
def board(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop, api):  # type: ignore[no-untyped-def]
    """ada's dashboard "live-flights" with its live view, for bob."""
    (jp_root_dir / "dataops.yaml").write_text(POLICY)
    (jp_root_dir / "data").mkdir()
    (jp_root_dir / "data" / "flights.csv").write_text(
        "carrier,dep_delay\nAA,5\nAA,70\nUA,90\nAA,-3\n"
    )
    (jp_root_dir / "data" / "salaries.csv").write_text("name,pay\nada,100\n")
    dashboard_notebook(jp_root_dir / "nb" / "live.ipynb", *LIVE_NB)
    run = jp_asyncio_loop.run_until_complete
    run(jp_serverapp.extension_manager.start_extension("jupyter_dataops"))
    code, d = run(api("POST", "dashboards", {
        "slug": "live-flights", "notebook_path": "nb/live.ipynb", "live": True,
        "viewers": {"users": ["bob"]}}, headers=ADA))  # fmt: skip
    assert code == 201, d
    done = run(wait_for(lambda *a: api(*a, headers=ADA), d["pending_run"]))
    assert done["status"] == "succeeded", done["error"]
    platform(jp_serverapp).dashboards.drain(60)
    return jp_serverapp


def live(server: Any) -> Any:
    return server.web_app.settings["dataops_live"]


async def live_view(jp_fetch, headers: dict[str, str], **params: str) -> tuple[int, str, Any]:
    resp = await jp_fetch("dataops", "dashboards", "live-flights", "live", headers=headers,
                          params=params or None, raise_error=False, follow_redirects=False,
                          request_timeout=120)  # fmt: skip
    return resp.code, resp.body.decode(), resp


def outputs(page: str) -> str:
    """The text of the cells' outputs: streams as HTML, rich outputs as JSON for Voila's
    front end."""
    import html
    import re

    chunks = re.findall(
        r'<script type="application/vnd.voila.cell-output\+json">(.*?)</script>', page, re.S
    )
    return html.unescape(page) + "\n".join(json.dumps(json.loads(c)) for c in chunks)


async def test_the_live_view_runs_as_its_viewer_with_the_query_parameters(board, jp_fetch):
    code, html, resp = await live_view(jp_fetch, BOB, minimum="10")
    assert code == 200, html
    assert resp.headers["Content-Type"].startswith("text/html")
    text = outputs(html)
    assert "VIEWER bob live-flights" in text  # governed calls run as the viewer
    # Its only credential: the viewer's token, bound to this very kernel, expiring.
    assert "TOKEN live bob True True" in text
    assert "ROWS 1 ['AA']" in text  # bob's row filter, and his parameter (dep_delay >= 10)
    assert "ACTED 403" in text  # the dashboard's code can do nothing else as bob
    # The policy's refusal is shown as such; the notebook stops there.
    assert "dops-refused" in text and "salaries" in text
    assert "AFTER THE REFUSAL" not in text
    assert "cdn.jsdelivr.net" not in html  # fonts from this server
    # The same view as its owner: her rights.
    code, html, _ = await live_view(jp_fetch, ADA)
    text = outputs(html)
    assert code == 200 and "VIEWER ada" in text and "SALARIES 1" in text
    assert "ROWS 3 ['AA', 'UA']" in text  # the run's own minimum (0), no row filter for ada


async def test_bad_query_parameters_are_refused_before_anything_runs(board, jp_fetch):
    before = live(board).counts()
    for params, name in (({"minimum": "many"}, "minimum"), ({"carier": "AA"}, "carier"),
                         ({"carrier": "A\nA"}, "carrier")):  # fmt: skip
        code, html, _ = await live_view(jp_fetch, BOB, **params)
        assert code == 400, html
        assert repr(name) in html.replace("&#x27;", "'")
    assert live(board).counts()["in_use"] == before["in_use"] == 0


async def test_non_viewers_and_share_links_get_no_live_view(board, jp_fetch, api):
    code, html, _ = await live_view(jp_fetch, CAROL)
    assert code == 403 and "Live flights" not in html
    code, link = await api("POST", "dashboards/live-flights/shares", {}, headers=ADA)
    token = link["url"].split("#", 1)[1]
    anon = {"Authorization": "", "Cookie": f"dataops-share-live-flights={token}"}
    code, html, resp = await live_view(jp_fetch, anon)
    assert code == 302 and "/login" in resp.headers["Location"]  # an account is needed
    assert live(board).counts()["in_use"] == 0


async def test_past_the_cap_a_503_with_retry_after(board, jp_fetch):
    code, _, _ = await live_view(jp_fetch, BOB)
    assert code == 200
    code, _, _ = await live_view(jp_fetch, ADA)
    assert code == 200
    assert live(board).counts()["in_use"] == 2
    code, html, resp = await live_view(jp_fetch, BOB)
    assert code == 503, html
    assert int(resp.headers["Retry-After"]) > 0
    assert "try again" in html
    # A viewer's kernel that ends frees its place.
    kernel_id = next(iter(live(board)._seats))
    await live(board).shutdown_kernel(kernel_id, now=True)
    code, _, _ = await live_view(jp_fetch, BOB)
    assert code == 200


async def test_idle_kernels_are_culled(board, jp_fetch):
    lk = live(board)
    lk.cull_idle_timeout, lk.cull_interval = 1, 1
    lk._culler_callback.stop()
    lk._culler_callback = None
    lk._initialized_culler = False
    lk.initialize_culler()
    code, _, _ = await live_view(jp_fetch, BOB)
    assert code == 200 and lk.counts()["in_use"] == 1
    kernel_id = next(iter(lk._seats))
    deadline = time.monotonic() + 60
    while kernel_id in lk and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert kernel_id not in lk and lk.counts()["in_use"] == 0
    assert lk.counts()["ready"] + lk.counts()["starting"] <= 1  # the ready one is kept


async def test_a_live_kernel_is_its_viewer_s_only(board, jp_fetch, jp_http_port, jp_base_url):
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    code, _, _ = await live_view(jp_fetch, BOB)
    assert code == 200
    kernel_id = next(iter(live(board)._seats))
    path = ("dataops", "dashboards", "_live", "api", "kernels", kernel_id)
    resp = await jp_fetch(*path, headers=BOB, raise_error=False)
    assert resp.code == 200 and json.loads(resp.body)["id"] == kernel_id
    resp = await jp_fetch(*path, headers=ADA, raise_error=False)
    assert resp.code == 403  # not even the dashboard's owner
    url = (f"ws://127.0.0.1:{jp_http_port}{jp_base_url}dataops/dashboards/_live/api/kernels/"
           f"{kernel_id}/channels")  # fmt: skip
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url, headers=ADA))
    assert refused.value.code == 403
    ws = await websocket_connect(HTTPRequest(url, headers=BOB))
    ws.close()
    # Ending it is its viewer's too; its place goes back.
    resp = await jp_fetch(*path, method="DELETE", headers=ADA, raise_error=False)
    assert resp.code == 403 and kernel_id in live(board)
    resp = await jp_fetch(*path, method="DELETE", headers=BOB, raise_error=False)
    assert resp.code == 204 and kernel_id not in live(board)
    assert live(board).counts()["in_use"] == 0
