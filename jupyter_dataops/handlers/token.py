from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import InvalidRequest
from ..models import TokenInfo
from .base import DataOpsHandler, Operation, TokenUser


class TokenRenewHandler(DataOpsHandler):
    path = "token/renew"
    operations = {
        "post": Operation(
            "Exchange a kernel's or a run's DataOps token (expired or not) for a fresh one, "
            "while its kernel or run lives",
            TokenInfo,
            run_token=True,
        ),
    }
    accepts_expired_tokens = True

    @web.authenticated
    @authorized
    async def post(self) -> None:
        user = self.current_user
        if not isinstance(user, TokenUser):
            raise InvalidRequest(
                "only DataOps kernel and run tokens are renewed; send 'Authorization: DataOps "
                "<token>'"
            )
        token = self.request.headers["Authorization"].partition(" ")[2].strip()
        fresh, exp = await self.platform.store.run(self.platform.renew_token, token)
        self.write_model(TokenInfo(token=fresh, expires_at=exp, scope=user.scope))
