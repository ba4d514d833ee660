"""A published view in real Chromium with no network but loopback: its widget is drawn from
the saved state by the widget manager this server serves; a share link opens it for someone
without an account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.ui.conftest import CHROMIUM_ARGS
from tests.ui.conftest import chromium_path as chromium_path  # a fixture

from .test_dashboards import published
from .test_dashboards import server as server  # fixtures
from .test_dashboards import store_url as store_url

pytestmark = [pytest.mark.kernel, pytest.mark.ui]


@asynccontextmanager
async def chromium(path: Path) -> AsyncIterator[Any]:
    """Playwright's async API, on the test's loop (the server's): pytest has no async
    fixtures here."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(path), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def offline_context(browser: Any, headers: dict[str, str] | None = None) -> tuple[Any, list]:
    """A browser context that reaches 127.0.0.1 only: everything else is aborted (and kept)."""
    ctx = await browser.new_context(extra_http_headers=headers or {})
    blocked: list[str] = []

    async def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    await ctx.route("**/*", only_loopback)
    return ctx, blocked


async def test_a_published_widget_is_drawn_offline(
    server, api, chromium_path, jp_http_port, jp_base_url, jp_auth_header
):
    async with chromium(chromium_path) as browser:
        await _widget_drawn_offline(server, api, browser, jp_http_port, jp_base_url, jp_auth_header)


async def _widget_drawn_offline(server, api, browser, port, base_url, auth) -> None:  # type: ignore[no-untyped-def]
    await published(
        api, server, "offline", {"notebook_path": "nb/report.ipynb", "parameters": {"n": 8}}
    )
    url = f"http://127.0.0.1:{port}{base_url}dataops/dashboards/offline"
    ctx, blocked = await offline_context(browser, auth)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    # The IntSlider, drawn by @jupyter-widgets/html-manager from the state saved at execution.
    slider = page.locator(".widget-slider").first
    await slider.wait_for(state="visible", timeout=30_000)
    assert await page.locator(".widget-readout").first.inner_text() == "8"
    assert await page.locator(".widget-label").first.inner_text() == "N"
    assert "carriers: 8" in await page.inner_text("body")
    assert blocked == [], f"the view asked the network for: {blocked}"
    assert errors == []
    await ctx.close()


async def test_a_share_link_opens_the_view_for_someone_without_an_account(
    server, api, chromium_path, jp_http_port, jp_base_url
):
    async with chromium(chromium_path) as browser:
        await _share_link(server, api, browser, jp_http_port, jp_base_url)


async def _share_link(server, api, browser, port, base_url) -> None:  # type: ignore[no-untyped-def]
    await published(api, server, "shared", {"notebook_path": "nb/report.ipynb"})
    code, link = await api("POST", "dashboards/shared/shares", {"label": "the board"})
    assert code == 201, link
    assert "#" in link["url"]  # the secret is in the fragment, which browsers never send
    base = f"http://127.0.0.1:{port}{base_url}"
    origin = f"http://127.0.0.1:{port}"
    ctx, blocked = await offline_context(browser)  # no credentials at all
    page = await ctx.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url))
    assert link["url"].startswith(base_url)  # a path of this server
    await page.goto(origin + link["url"])
    await page.locator(".widget-slider").first.wait_for(state="visible", timeout=30_000)
    assert page.url == base + "dataops/dashboards/shared"  # and the secret is off the URL
    secret = link["url"].split("#", 1)[1]
    assert not any(secret in u for u in sent), "the secret went to the server in a URL"
    assert blocked == []
    # Revoked: the next view is refused, and says nothing of the dashboard.
    code, _ = await api("DELETE", f"dashboards/shared/shares/{link['id']}")
    assert code == 200
    resp = await page.goto(base + "dataops/dashboards/shared")
    assert resp is not None and resp.status == 403
    assert "carriers" not in await page.inner_text("body")
    await ctx.close()


async def test_a_live_view_s_widgets_talk_to_its_kernel_offline(
    server, api, chromium_path, jp_http_port, jp_base_url, jp_auth_header, jp_root_dir
):
    from .test_dashboards import dashboard_notebook

    dashboard_notebook(
        jp_root_dir / "nb" / "ping.ipynb", "# Ping", "greeting = 'pong'",
        "import ipywidgets as w\n"
        "b = w.Button(description='Ping', icon='check')\nout = w.Label(value='not yet')\n"
        "b.on_click(lambda _: setattr(out, 'value', f'{greeting} from the kernel'))\n"
        "w.VBox([b, out])",
    )  # fmt: skip
    await published(api, server, "ping", {"notebook_path": "nb/ping.ipynb", "live": True})
    async with chromium(chromium_path) as browser:
        ctx, blocked = await offline_context(browser, jp_auth_header)
        page = await ctx.new_page()
        base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}dataops/dashboards/ping/live"
        log: list[str] = []
        page.on("console", lambda m: log.append("console " + m.text))
        page.on("requestfailed", lambda r: log.append("failed " + r.url))
        page.on(
            "response", lambda r: log.append(f"{r.status} {r.url}") if r.status >= 400 else None
        )
        page.on("websocket", lambda ws: log.append("ws " + ws.url))
        await page.goto(base + "?greeting=hello")
        button = page.get_by_role("button", name="Ping")
        try:
            await button.wait_for(state="visible", timeout=20_000)
        except Exception:
            print("\n".join(log[:60]), blocked)
            raise
        await button.click()
        # The click went to the viewer's kernel over its websocket, and came back.
        await page.get_by_text("hello from the kernel").wait_for(timeout=30_000)
        assert blocked == [], f"the live view asked the network for: {blocked}"
        await ctx.close()
