from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import StatusResponse
from .base import DataOpsHandler, Operation


class StatusHandler(DataOpsHandler):
    path = "status"
    operations = {
        "get": Operation("Version, current user, store and counts", StatusResponse, run_token=True),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        user = self.principal()
        self.write_model(await self.platform.store.run(self.platform.status, user))
