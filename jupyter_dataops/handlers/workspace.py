from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..config import InvalidConfig, parse_config
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
            parse_config(req.text, file)
        except InvalidConfig as e:
            self.write_model(ValidateConfigResponse(valid=False, problems=e.problems))
            return
        self.write_model(ValidateConfigResponse(valid=True))
