from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..config import ConfigTooLarge, InvalidConfig, parse_config
from ..exceptions import InvalidRequest
from ..models import ValidateConfigRequest, ValidateConfigResponse
from .base import DataOpsHandler, Operation


class ValidateConfigHandler(DataOpsHandler):
    path = "workspace/validate"
    operations = {
        "post": Operation(
            "Check a candidate dataops.yaml without saving it",
            ValidateConfigResponse,
            request=ValidateConfigRequest,
        ),
    }

    @web.authenticated
    @authorized
    async def post(self) -> None:
        req = self.parse_body(ValidateConfigRequest)
        file = self.platform.config.path.name
        try:
            # Parsing is CPU work that a hostile text could make long: never on the loop.
            await self.platform.run_query(parse_config, req.text, file)
        except ConfigTooLarge as e:
            raise InvalidRequest(e.message, details={"limit": e.limit}) from None
        except InvalidConfig as e:
            self.write_model(ValidateConfigResponse(valid=False, problems=e.problems))
            return
        self.write_model(ValidateConfigResponse(valid=True))
