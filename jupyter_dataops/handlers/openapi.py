from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import DataOpsHandler, Operation


class OpenAPIHandler(DataOpsHandler):
    path = "openapi.json"
    operations = {"get": Operation("This API's OpenAPI 3.1 document", None)}

    @web.authenticated
    @authorized
    def get(self) -> None:
        from ..api import openapi_document

        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(openapi_document()))
