"""Dashboards' pages, for browsers: the index, the published view, share links, assets.

They are built on the API's base handler (the same identity, ``Operation`` and 401/403 rules),
with what a page needs instead of what an API needs: a browser without credentials is sent to
the server's login page (Jupyter's, or JupyterHub's OAuth in the team's service), errors are
HTML, and a share link's cookie stands for its holder on the one dashboard it opens.

A share link's secret travels in the URL's fragment, which browsers never send: its page
reads it in the browser and trades it (in a header, never a logged URL) for an HttpOnly cookie
scoped to that dashboard's path.
"""

from __future__ import annotations

import html
import mimetypes
import urllib.parse
from typing import Any, ClassVar

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from ..dashboards import render
from ..dashboards.service import SHARE_COOKIE, NoView, Share
from ..exceptions import DataOpsError, Forbidden, InvalidRequest, Unauthorized
from ..identity import Principal
from .base import DataOpsHandler, Operation

PAGES_PREFIX = "/dataops/dashboards"
SLUG = "(?P<slug>[a-z0-9-]+)"
SHARE_HEADER = "X-DataOps-Share"

# A published view runs the notebook's output scripts (widgets, plots): in a sandbox, with an
# origin of its own, so they cannot act on the server as the viewer (no cookies, no XSRF).
SANDBOX = "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-downloads"


def share_cookie(slug: str) -> str:
    return f"{SHARE_COOKIE}-{slug}"


class PageHandler(DataOpsHandler):
    """A page: the API's identity and checks, a login redirect, HTML errors."""

    share_links: ClassVar[bool] = False  # whether a share link's cookie opens this page

    @property
    def content_security_policy(self) -> str:
        # Jupyter's policy for pages, not the API's ("default-src 'none'").
        return str(JupyterHandler.content_security_policy.fget(self))  # type: ignore[attr-defined]

    def get_login_url(self) -> str:
        return str(JupyterHandler.get_login_url(self))

    def check_xsrf_cookie(self) -> None:
        return  # pages are GETs that change nothing (but the audit log)

    async def prepare(self) -> None:  # type: ignore[override]
        self.share: Share | None = None
        try:
            await super().prepare()
        except Unauthorized:
            if self._finished:
                return
            if self.share_links and not self.request.headers.get("Authorization"):
                slug = (self.path_kwargs or {}).get("slug", "")
                token = self.get_cookie(share_cookie(slug))
                if token:
                    dashboards = self.platform.dashboards
                    self.share = await self.platform.store.run(dashboards.share_of, token, slug)
                    if self.share is not None:
                        return
                    # Revoked or expired: its holder has no account to log in with.
                    audit = self.platform.dashboards.refused_share
                    await self.platform.store.run(audit, slug)
                    raise Forbidden(
                        "this share link does not work (any more): ask for a new one"
                    ) from None
            if self.request.method in ("GET", "HEAD") and not self.request.headers.get(
                "Authorization"
            ):
                # A browser: to the login page, and back here afterwards.
                url = self.get_login_url()
                sep = "&" if "?" in url else "?"
                self.redirect(url + sep + urllib.parse.urlencode({"next": self.request.uri}))
                return
            raise
        user = self.current_user
        if not await self._authorized(user):
            raise Forbidden("this server does not let you use DataOps")

    async def _authorized(self, user: Any) -> bool:
        from jupyter_core.utils import ensure_async

        return bool(
            await ensure_async(self.authorizer.is_authorized(self, user, "read", "dataops"))
        )

    def viewer(self) -> Principal | None:
        """The user asking, or None for a share link's holder (see ``self.share``)."""
        return None if self.share is not None else self.principal()

    def base(self) -> str:
        return str(self.settings.get("base_url", "/"))

    def write_page(self, body: str, status: int = 200, title: str = "Dashboards") -> None:
        self.set_status(status)
        self.finish(page(title, body), set_content_type="text/html; charset=utf-8")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DataOpsError):
            message = exc.message
        elif isinstance(exc, web.HTTPError):
            message = exc.log_message or exc.reason or "error"
        else:
            message = "internal server error; the server log has the traceback"
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'DataOps realm="jupyter-dataops", token')
        retry = getattr(exc, "details", {}).get("retry_after_s") if exc else None
        if retry:
            self.set_header("Retry-After", str(int(retry)))
        body = (
            f'<h1 class="dops-error">{status_code}</h1>'
            f'<p class="dops-message">{html.escape(message)}</p>'
        )
        self.set_status(status_code)
        self.finish(page("Dashboards", body), set_content_type="text/html; charset=utf-8")


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>{PAGE_STYLE}</head>"
        f'<body class="dops-page">{body}</body></html>'
    )


PAGE_STYLE = """<style>
body.dops-page { font-family: system-ui, sans-serif; margin: 0; padding: 24px 32px; color: #222; }
.dops-index { list-style: none; padding: 0; display: grid; gap: 16px;
  grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); }
.dops-card { border: 1px solid #ddd; border-radius: 6px; padding: 12px; }
.dops-card img { max-width: 100%; max-height: 160px; display: block; margin: 8px 0; }
.dops-card .dops-when, .dops-card .dops-preview { color: #555; font-size: 0.9em; }
.dops-stale { color: #7a4b00; background: #fff3cd; padding: 2px 6px; border-radius: 3px; }
</style>"""


class PublishedPage(PageHandler):
    path = f"{SLUG}"
    share_links = True
    operations = {
        "get": Operation(
            "The published view: its latest successful run, rendered once, code hidden "
            "(?run=ID: an earlier one)",
            None,
            kernel_token=False,
        )
    }

    @property
    def content_security_policy(self) -> str:
        return super().content_security_policy + "; " + SANDBOX

    @allow_unauthenticated  # authenticated in prepare: a user, or a share link's cookie
    async def get(self, slug: str) -> None:
        run_id = self.get_query_argument("run", None) or None
        if run_id is not None and not (len(run_id) == 32 and run_id.isalnum()):
            raise InvalidRequest("run must be a run id (32 hex digits)")
        dashboards = self.platform.dashboards
        try:
            view = await self.platform.store.run(
                dashboards.view, self.viewer(), self.share, slug, run_id, self.base()
            )
        except NoView as e:
            self.set_header("Refresh", "10" if e.pending else "60")
            self.write_page(
                f'<h1>Not ready</h1><p class="dops-message">{html.escape(e.message)}.</p>'
                "<p>This page reloads by itself.</p>",
                status=503 if e.pending else 404,
            )
            return
        cached = await self.platform.store.run(view.page.read_text, "utf-8")
        self.set_header("Cache-Control", "no-cache, private")
        self.finish(
            render.compose(cached, render.header_html(view.header)),
            set_content_type="text/html; charset=utf-8",
        )


class ThumbnailPage(PageHandler):
    path = f"{SLUG}/thumbnail.png"
    share_links = True
    operations = {
        "get": Operation(
            "The first image of its last render (for the index)", None, kernel_token=False
        )
    }

    @allow_unauthenticated  # authenticated in prepare
    async def get(self, slug: str) -> None:
        dashboards = self.platform.dashboards
        p = await self.platform.store.run(dashboards.thumbnail, self.viewer(), self.share, slug)
        if p is None or not p.exists():
            raise web.HTTPError(404, "no thumbnail")
        self.set_header("Cache-Control", "no-cache, private")
        self.finish(await self.platform.store.run(p.read_bytes), set_content_type="image/png")


class SharePage(PageHandler):
    path = f"{SLUG}/share"
    share_links = True
    operations = {
        "get": Operation(
            "A share link: its page trades the secret after '#' (sent in the "
            f"{SHARE_HEADER} header) for a cookie that opens this dashboard only",
            None,
            kernel_token=False,
        )
    }

    async def prepare(self) -> None:  # type: ignore[override]
        # Anyone may open a share link's page; the secret is checked in get.
        self.share = None

    @allow_unauthenticated
    async def get(self, slug: str) -> None:
        token = self.request.headers.get(SHARE_HEADER)
        if token is None:
            self.write_page(SHARE_LANDING, title="Opening the dashboard…")
            return
        share = await self.platform.store.run(self.platform.dashboards.share_of, token, slug)
        if share is None:
            # Revoked, expired, another dashboard's or made up: the same answer.
            raise Forbidden("this share link does not work (any more): ask for a new one")
        self.set_cookie(
            share_cookie(slug),
            token,
            path=f"{self.base().rstrip('/')}{PAGES_PREFIX}/{slug}",
            httponly=True,
            secure=self.request.protocol == "https",
            samesite="Strict",
            expires_days=90,  # the link's own expiry is checked on every view
        )
        self.set_status(204)
        self.finish()


SHARE_LANDING = """<p id="dops-share">Opening the dashboard…</p>
<script>
(function () {
  var token = decodeURIComponent(location.hash.slice(1));
  var say = function (text) { document.getElementById("dops-share").textContent = text; };
  if (!token) { say("This link is incomplete: it has no secret after '#'."); return; }
  // Out of the address bar and the history, before anything else.
  history.replaceState(null, "", location.pathname);
  fetch(location.pathname, {headers: {"X-DataOps-Share": token}, credentials: "same-origin"})
    .then(function (r) {
      if (r.ok) { location.replace(location.pathname.replace(/\\/share$/, "")); }
      else { say("This share link does not work (any more): ask for a new one."); }
    });
})();
</script>"""


class IndexPage(PageHandler):
    path = ""
    operations = {
        "get": Operation(
            "The dashboards you may see, with their last update", None, kernel_token=False
        )
    }

    @allow_unauthenticated  # authenticated in prepare (users only)
    async def get(self) -> None:
        items = await self.platform.store.run(self.platform.dashboards.index, self.principal())
        e = html.escape
        cards = []
        for info, preview in items:
            last = info.last_render
            when = (
                f"updated {last.run_finished_at:%Y-%m-%d %H:%M UTC}"
                if last and last.run_finished_at
                else "not rendered yet"
            )
            stale = (
                f' <span class="dops-stale">stale since {info.stale.since:%Y-%m-%d %H:%M}</span>'
                if info.stale
                else ""
            )
            thumb = (
                f'<img src="{e(info.slug)}/thumbnail.png" alt="" loading="lazy" '
                'onerror="this.remove()">'
                if last
                else ""
            )
            cards.append(
                f'<li class="dops-card" data-slug="{e(info.slug)}">'
                f'<a href="{e(info.slug)}"><strong>{e(info.title)}</strong></a>'
                f'<div class="dops-when">{e(when)}{stale}</div>{thumb}'
                f'<div class="dops-preview">{e(preview or info.description)}</div></li>'
            )
        body = "<h1>Dashboards</h1>" + (
            f'<ul class="dops-index">{"".join(cards)}</ul>'
            if cards
            else '<p class="dops-message">No dashboard is shared with you yet.</p>'
        )
        self.write_page(body)


class AssetsHandler(JupyterHandler, web.StaticFileHandler):
    """The published view's widget manager, require.js and fonts (from npm, at build time).

    Public, as Jupyter's own static files are: they are the same for everyone.
    """

    def set_extra_headers(self, path: str) -> None:
        # Fonts are fetched with CORS, and a published view has an origin of its own.
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "public, max-age=3600")

    def get_content_type(self) -> str:
        assert self.absolute_path is not None
        return mimetypes.guess_type(self.absolute_path)[0] or "application/octet-stream"

    @allow_unauthenticated
    async def get(self, path: str, include_body: bool = True) -> None:
        await web.StaticFileHandler.get(self, path, include_body)

    @allow_unauthenticated
    async def head(self, path: str) -> None:
        await web.StaticFileHandler.get(self, path, include_body=False)


PAGES: list[type[PageHandler]] = [IndexPage, PublishedPage, ThumbnailPage, SharePage]
ASSETS_PATH = "_static/(.*)"
ASSETS_KWARGS = {"path": str(render.VENDOR_DIR)}
