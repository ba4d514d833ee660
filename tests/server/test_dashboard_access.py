"""Who may see a dashboard: its owner, its viewers (users and groups), admins, and the holders
of a working share link; no one else, and they learn nothing of it. Every view is audited."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from jupyter_dataops.store import tables as t

from .conftest import server_config
from .test_dashboards import WIDGET_NB, dashboard_notebook, platform
from .test_jobs import wait_for

pytestmark = pytest.mark.kernel

POLICY = """
admins: [root]
groups:
  ops:
    members: [grace]
"""

ADA, BOB, GRACE, ROOT = (
    {"Authorization": f"token user-{n}"} for n in ("ada", "bob", "grace", "root")
)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jp_server_config(store_url: str) -> dict[str, Any]:
    return server_config(
        store_url,
        ServerApp={"identity_provider_class": "tests.server.identities.HeaderUsers"},
        DataOps={"warm_kernels": 0, "job_workers": 1},
    )


@pytest.fixture
def board(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop, api):  # type: ignore[no-untyped-def]
    """ada's dashboard "sales" (title "Secret sales"), shared with bob and the ops group."""
    (jp_root_dir / "dataops.yaml").write_text(POLICY)
    dashboard_notebook(jp_root_dir / "nb" / "report.ipynb", *WIDGET_NB)
    run = jp_asyncio_loop.run_until_complete
    run(jp_serverapp.extension_manager.start_extension("jupyter_dataops"))
    code, d = run(api("POST", "dashboards", {
        "slug": "sales", "title": "Secret sales", "notebook_path": "nb/report.ipynb",
        "viewers": {"users": ["bob"], "groups": ["ops"]}}, headers=ADA))  # fmt: skip
    assert code == 201, d
    assert run(wait_for(lambda *a: api(*a, headers=ADA), d["pending_run"]))["status"] == (
        "succeeded"
    )
    platform(jp_serverapp).dashboards.drain(60)
    return jp_serverapp


async def view(jp_fetch, slug: str, headers: dict[str, str], **params: str) -> tuple[int, str]:
    resp = await jp_fetch("dataops", "dashboards", slug, headers=headers, params=params or None,
                          raise_error=False, follow_redirects=False)  # fmt: skip
    return resp.code, resp.body.decode()


def views_audited(server: Any) -> list[tuple[str, str, str]]:
    with platform(server).store.session() as s:
        rows = s.execute(
            select(t.AuditEvent.user, t.AuditEvent.decision, t.AuditEvent.target)
            .where(t.AuditEvent.action == "dashboard.view")
            .order_by(t.AuditEvent.id)
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


async def test_viewers_owner_and_admins_see_it_others_learn_nothing(board, jp_fetch, api):
    for who in (ADA, BOB, GRACE, ROOT):  # owner, a viewer, a viewer's group, an admin
        code, html = await view(jp_fetch, "sales", who)
        assert code == 200, (who, html)
        assert "carriers: 5" in html and "Secret sales" in html
    carol = {"Authorization": "token user-carol"}
    code, html = await view(jp_fetch, "sales", carol)
    assert code == 403
    assert "Secret sales" not in html and "carriers" not in html and "sales" not in html
    # The same answer as for a dashboard that does not exist: its existence is not revealed.
    code, missing = await view(jp_fetch, "no-such-board", carol)
    assert code == 403 and missing.replace("no-such-board", "sales") == html.replace(
        "no-such-board", "sales"
    )
    # The API says nothing either, and lists only what one may see.
    code, body = await api("GET", "dashboards/sales", headers=carol)
    assert code == 404 and "Secret" not in json.dumps(body)
    code, body = await api("GET", "dashboards", headers=carol)
    assert body["dashboards"] == []
    code, body = await api("GET", "dashboards", headers=GRACE)
    assert [d["slug"] for d in body["dashboards"]] == ["sales"]
    assert body["dashboards"][0]["can_manage"] is False
    # Links to the run are for those who may see the run: its owner and admins.
    run_id = body["dashboards"][0]["last_render"]["run_id"]
    assert f"runs/{run_id}" in (await view(jp_fetch, "sales", ADA))[1]
    assert f"runs/{run_id}" not in (await view(jp_fetch, "sales", BOB))[1]
    # Every view is audited, allowed or not.
    audited = views_audited(board)
    assert audited[:4] == [(u, "allowed", "dashboard:sales") for u in ("ada", "bob", "grace",
                                                                      "root")]  # fmt: skip
    assert ("carol", "denied", "dashboard:sales") in audited
    assert ("carol", "denied", "dashboard:no-such-board") in audited


async def test_only_the_source_owner_publishes_and_shares(board, api):
    code, body = await api(
        "POST", "dashboards", {"slug": "laundry", "job": "dashboard-sales"}, headers=BOB
    )
    assert code == 404  # bob cannot see ada's job
    code, body = await api(
        "POST", "dashboards", {"slug": "laundry", "job": "dashboard-sales"}, headers=ROOT
    )
    assert code == 403 and "only ada" in body["error"]["message"]  # admins do not act for her
    code, body = await api("POST", "dashboards/sales/shares", {}, headers=ROOT)
    assert code == 403
    code, body = await api("POST", "dashboards/sales/shares", {}, headers=BOB)
    assert code == 403  # bob, a viewer, sees it: never manages it
    code, body = await api("PATCH", "dashboards/sales", {"viewers": {"users": ["bob", "carol"]}},
                           headers=ROOT)  # fmt: skip
    assert code == 403  # who sees ada's data is ada's decision
    code, body = await api("PATCH", "dashboards/sales", {"title": "Sales"}, headers=BOB)
    assert code == 403
    code, body = await api("GET", "dashboards/sales", headers=ADA)
    assert body["title"] == "Secret sales" and body["viewers"]["users"] == ["bob"]


async def share(jp_fetch, token: str, slug: str = "sales") -> tuple[int, str | None]:
    resp = await jp_fetch("dataops", "dashboards", slug, "share", raise_error=False,
                          headers={"Authorization": "", "X-DataOps-Share": token})  # fmt: skip
    return resp.code, resp.headers.get("Set-Cookie")


async def test_share_links_open_one_dashboard_until_revoked_or_expired(board, jp_fetch, api):
    code, link = await api("POST", "dashboards/sales/shares",
                           {"label": "the board", "expires_in_s": 3600}, headers=ADA)  # fmt: skip
    assert code == 201, link
    token = link["url"].split("#", 1)[1]
    # Only its hash is kept.
    with platform(board).store.session() as s:
        row = s.get(t.ShareLink, link["id"])
        assert row.token_sha256 != token and token not in row.token_sha256
    code, cookie = await share(jp_fetch, token)
    assert code == 204 and cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/a%40b/dataops/dashboards/sales" in cookie
    anon = {"Authorization": "", "Cookie": f"dataops-share-sales={token}"}
    code, html = await view(jp_fetch, "sales", anon)
    assert code == 200 and "carriers: 5" in html
    assert "runs/" not in html.split("dops-h-links")[-1][:200]  # no link to the run
    # One dashboard only: another dashboard's view, the live view or the API refuse it.
    code, other = await api("POST", "dashboards", {"slug": "other", "job": "dashboard-sales"},
                            headers=ADA)  # fmt: skip
    assert code == 201
    code, html = await view(
        jp_fetch, "other", {"Authorization": "", "Cookie": f"dataops-share-other={token}"}
    )
    assert code == 403 and "Secret" not in html
    code, _ = await share(jp_fetch, token, "other")
    assert code == 403
    code, _ = await api("GET", "dashboards/sales", headers=anon)
    assert code == 401
    # A made-up secret is refused the same way.
    code, _ = await share(jp_fetch, "x" * 43)
    assert code == 403

    # Revoked: refused at once, with nothing of the dashboard in the answer.
    code, links = await api("GET", "dashboards/sales/shares", headers=ADA)
    assert [x["id"] for x in links["links"]] == [link["id"]] and links["links"][0]["url"] is None
    assert links["links"][0]["last_used_at"] is not None
    code, revoked = await api("DELETE", f"dashboards/sales/shares/{link['id']}", headers=ADA)
    assert code == 200 and revoked["active"] is False
    code, html = await view(jp_fetch, "sales", anon)
    assert code == 403 and "Secret" not in html and "carriers" not in html
    code, _ = await share(jp_fetch, token)
    assert code == 403

    # Expired: the same.
    code, link2 = await api("POST", "dashboards/sales/shares", {}, headers=ADA)
    token2 = link2["url"].split("#", 1)[1]
    anon2 = {"Authorization": "", "Cookie": f"dataops-share-sales={token2}"}
    assert (await view(jp_fetch, "sales", anon2))[0] == 200
    with platform(board).store.session() as s:
        s.execute(update(t.ShareLink).where(t.ShareLink.id == link2["id"]).values(
            expires_at=t.utcnow() - timedelta(seconds=1)))  # fmt: skip
    code, html = await view(jp_fetch, "sales", anon2)
    assert code == 403 and "Secret" not in html
    # Every view by a link is audited under the link's name.
    audited = views_audited(board)
    assert (f"share:{link['id']}", "allowed", "dashboard:sales") in audited
    assert ("share:unknown", "denied", "dashboard:sales") in audited


async def test_browsers_without_credentials_go_to_the_login_page(board, jp_fetch):
    resp = await jp_fetch("dataops", "dashboards", "sales", raise_error=False,
                          follow_redirects=False, headers={"Authorization": ""})  # fmt: skip
    assert resp.code == 302
    assert "/login?next=" in resp.headers["Location"]
    assert "dataops%2Fdashboards%2Fsales" in resp.headers["Location"]
    # A bad credential is a 401, not a redirect (a script, not a browser, sent it).
    bad = {"Authorization": "DataOps nope"}
    resp = await jp_fetch("dataops", "dashboards", "sales", raise_error=False,
                          follow_redirects=False, headers=bad)  # fmt: skip
    assert resp.code == 401 and resp.headers["WWW-Authenticate"]


async def test_the_index_lists_what_this_viewer_may_see(board, jp_fetch):
    async def index(headers: dict[str, str]) -> str:
        resp = await jp_fetch("dataops", "dashboards", "", headers=headers, raise_error=False)
        assert resp.code == 200
        return resp.body.decode()

    html = await index(GRACE)
    assert 'data-slug="sales"' in html and "Secret sales" in html
    assert "updated 20" in html  # when its view was last updated
    assert "Delays by carrier The report of the week" in html  # a preview of its text
    html = await index({"Authorization": "token user-carol"})
    assert "Secret sales" not in html and "No dashboard is shared with you yet" in html
