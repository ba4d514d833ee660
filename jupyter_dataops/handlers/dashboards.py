"""Dashboards' API: publish, change, unpublish, renders, share links, subscriptions.

The pages themselves (the published view, the live view, the index) are in ``pages.py``.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import (
    DashboardInfo,
    DashboardList,
    DashboardPatch,
    DashboardRequest,
    RenderList,
    ShareLinkInfo,
    ShareLinkList,
    ShareLinkRequest,
    SubscriptionInfo,
    SubscriptionRequest,
)  # fmt: skip
from .base import DataOpsHandler, Operation

SLUG = "(?P<slug>[a-z0-9-]+)"


class _DashboardsBase(DataOpsHandler):
    @property
    def dashboards(self):  # type: ignore[no-untyped-def]
        return self.platform.dashboards

    def located(self, info: DashboardInfo) -> DashboardInfo:
        """Its URLs as paths of this server (the team's service in team mode, whose pages
        users open), not relative ones."""
        base = str(self.settings.get("base_url", "/"))
        info.url = base + info.url
        if info.live_url:
            info.live_url = base + info.live_url
        return info

    def wake_executor(self) -> None:
        executor = self.settings.get("dataops_executor")
        if executor is not None:
            executor.wake()


class DashboardsHandler(_DashboardsBase):
    path = "dashboards"
    operations = {
        "get": Operation("The dashboards you may see", DashboardList),
        "post": Operation(
            "Publish a job's results, or a notebook, as a dashboard (its source's owner only)",
            DashboardInfo,
            request=DashboardRequest,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        items = await self.platform.store.run(self.dashboards.list_dashboards, self.principal())
        self.write_model(DashboardList(dashboards=[self.located(d) for d in items]))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        req = self.parse_body(DashboardRequest)
        info, run_id = await self.platform.store.run(self.dashboards.publish, self.principal(), req)
        if run_id is not None:
            self.wake_executor()
        self.write_model(self.located(info), status=201)


class DashboardHandler(_DashboardsBase):
    path = f"dashboards/{SLUG}"
    operations = {
        "get": Operation(
            "A dashboard: its source, viewers, last render, stale state", DashboardInfo
        ),
        "patch": Operation(
            "Change a dashboard's title, viewers, template or live view",
            DashboardInfo,
            request=DashboardPatch,
        ),
        "delete": Operation("Unpublish a dashboard (its job and runs stay)", None),
    }

    @web.authenticated
    @authorized
    async def get(self, slug: str) -> None:
        info = await self.platform.store.run(self.dashboards.get, self.principal(), slug)
        self.write_model(self.located(info))

    @web.authenticated
    @authorized
    async def patch(self, slug: str) -> None:
        patch = self.parse_body(DashboardPatch)
        info = await self.platform.store.run(self.dashboards.update, self.principal(), slug, patch)
        self.write_model(self.located(info))

    @web.authenticated
    @authorized
    async def delete(self, slug: str) -> None:
        await self.platform.store.run(self.dashboards.unpublish, self.principal(), slug)
        self.set_status(204)
        self.finish()


class RendersHandler(_DashboardsBase):
    path = f"dashboards/{SLUG}/renders"
    operations = {
        "get": Operation("Its renders, newest first (each opens at ?run=<run id>)", RenderList)
    }

    @web.authenticated
    @authorized
    async def get(self, slug: str) -> None:
        renders = await self.platform.store.run(self.dashboards.renders, self.principal(), slug)
        self.write_model(RenderList(renders=renders))


class SharesHandler(_DashboardsBase):
    path = f"dashboards/{SLUG}/shares"
    operations = {
        "get": Operation("Its share links (owner and admins; never their secrets)", ShareLinkList),
        "post": Operation(
            "Make a revocable, expiring link for someone without an account (owner only; "
            "the URL with its secret is returned once)",
            ShareLinkInfo,
            request=ShareLinkRequest,
            kernel_token=False,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, slug: str) -> None:
        links = await self.platform.store.run(self.dashboards.list_shares, self.principal(), slug)
        self.write_model(ShareLinkList(links=links))

    @web.authenticated
    @authorized
    async def post(self, slug: str) -> None:
        req = self.parse_body(ShareLinkRequest)
        link = await self.platform.store.run(
            self.dashboards.create_share, self.principal(), slug, req
        )
        link.url = str(self.settings.get("base_url", "/")) + (link.url or "")
        self.write_model(link, status=201)


class ShareHandler(_DashboardsBase):
    path = f"dashboards/{SLUG}/shares/(?P<link_id>[0-9a-f]{{32}})"
    operations = {"delete": Operation("Revoke a share link (owner and admins)", ShareLinkInfo)}

    @web.authenticated
    @authorized
    async def delete(self, slug: str, link_id: str) -> None:
        self.write_model(
            await self.platform.store.run(
                self.dashboards.revoke_share, self.principal(), slug, link_id
            )
        )


class SubscriptionHandler(_DashboardsBase):
    path = f"dashboards/{SLUG}/subscription"
    operations = {
        "put": Operation(
            "Get an e-mail (with the PDF when the server makes one) for each new render",
            SubscriptionInfo,
            request=SubscriptionRequest,
        ),
        "delete": Operation("Stop the e-mails", None),
    }

    @web.authenticated
    @authorized
    async def put(self, slug: str) -> None:
        req = self.parse_body(SubscriptionRequest)
        self.write_model(
            await self.platform.store.run(self.dashboards.subscribe, self.principal(), slug, req)
        )

    @web.authenticated
    @authorized
    async def delete(self, slug: str) -> None:
        await self.platform.store.run(self.dashboards.unsubscribe, self.principal(), slug)
        self.set_status(204)
        self.finish()
