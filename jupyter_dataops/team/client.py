"""Client mode: the extension in a user's Jupyter server, with the team's DataOps service.

Every ``/dataops/api/v1/...`` request of JupyterLab is forwarded to the service as this server's
user, with the server's JupyterHub API token (``JUPYTERHUB_API_TOKEN``; the Hub grants it
``access:services!service=dataops`` through ``c.Spawner.server_token_scopes``). Responses are
streamed back as they come (Arrow pulls, a run's log as server-sent events). Nothing governed is
stored here: no metadata store, no policy, no key, no data.

Kernels get the service's URL and use the Hub API token they inherit from the server, so
``dops.pull`` goes to the service directly, as the user.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import httpclient, web
from tornado.iostream import StreamClosedError

from ..exceptions import DataOpsError, InvalidRequest
from ..handlers.base import API_PREFIX, AUTH_RESOURCE
from ..jobs.service import notebook_file, notebook_parameters

HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
# Request headers worth passing on; Authorization is replaced, cookies never leave this server.
_PASS = ("Content-Type", "Accept", "Last-Event-ID")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


def service_token() -> str:
    return os.environ.get(HUB_TOKEN_ENV, "")


_SENDS_NOTEBOOK = re.compile(r"^(runs|jobs|jobs/[^/]+)$")


def _error(status: int, code: str, message: str, **details: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message, "details": details}}


class ForwardHandler(APIHandler):
    """One handler for every API path: forward to the service as this server's user.

    The service's workspace holds no user's notebooks: a run or a job of a notebook of this
    server goes with the notebook itself, read here, and its parameters are read here too.
    """

    auth_resource = AUTH_RESOURCE

    def initialize(self, service_url: str) -> None:
        self.service_url = service_url if service_url.endswith("/") else service_url + "/"

    @property
    def _root(self) -> Path:
        return Path(self.settings.get("server_root_dir") or os.getcwd()).expanduser().resolve()

    def _fail(self, status: int, code: str, message: str, **details: Any) -> None:
        self.set_status(status)
        self.finish(_error(status, code, message, **details)[1])

    def _with_notebook(self, path: str, body: bytes) -> bytes:
        """The request's body, with the notebook it names read from this server's files."""
        if not _SENDS_NOTEBOOK.match(path) or not body:
            return body
        try:
            data = json.loads(body)
        except ValueError:
            return body  # the service answers the 400
        if not isinstance(data, dict) or data.get("job") or data.get("notebook") is not None:
            return body
        rel = data.get("notebook_path")
        if not isinstance(rel, str):
            return body
        nb = notebook_file(self._root, rel)  # InvalidRequest/Forbidden: answered as JSON
        data["notebook"] = json.loads(nb.read_text(encoding="utf-8"))
        return json.dumps(data).encode()

    async def _forward(self, path: str) -> None:
        token = service_token()
        if not token:
            self._fail(
                503,
                "unavailable",
                "c.DataOps.service_url is set but this server has "
                f"no {HUB_TOKEN_ENV} to call the service with (team mode needs JupyterHub)",
            )
            return  # fmt: skip
        url = self.service_url + API_PREFIX.lstrip("/") + "/" + path
        if self.request.query:
            url += "?" + self.request.query
        headers = {k: v for k in _PASS if (v := self.request.headers.get(k))}
        headers["Authorization"] = f"token {token}"
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None
        if body is not None:
            try:
                body = self._with_notebook(path, body)
            except DataOpsError as e:
                self.set_status(e.status)
                self.finish(e.to_dict())
                return
            except (OSError, ValueError) as e:
                self._fail(400, "invalid_request", f"cannot read the notebook: {e}")
                return
        started = False

        def on_header(line: str) -> None:
            nonlocal started
            line = line.strip()
            if line.startswith("HTTP/"):
                self.set_status(int(line.split()[1]))
                for h in list(self._headers):
                    self.clear_header(h)
                return
            name, sep, value = line.partition(":")
            if sep and name.lower() not in _HOP:
                self.add_header(name.strip(), value.strip())

        def on_chunk(chunk: bytes) -> None:
            nonlocal started
            started = True
            self.write(chunk)
            self.flush()

        try:
            await httpclient.AsyncHTTPClient().fetch(
                url,
                method=self.request.method or "GET",
                headers=headers,
                body=body,
                allow_nonstandard_methods=True,
                follow_redirects=False,
                raise_error=False,
                header_callback=on_header,
                streaming_callback=on_chunk,
                request_timeout=24 * 3600,  # a followed log lasts as long as its run
                connect_timeout=10,
            )
        except StreamClosedError:
            return  # the browser went away
        except Exception as e:
            if started:
                raise
            self._fail(
                502,
                "bad_gateway",
                f"the DataOps service at {self.service_url} did not answer: {type(e).__name__}",
            )
            return  # fmt: skip
        self.finish()

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        if path == "notebooks/parameters":  # this server's notebook: read here
            rel = self.get_query_argument("path", "")
            try:
                if not rel:
                    raise InvalidRequest("path is required")
                params = notebook_parameters(notebook_file(self._root, rel), rel)
            except DataOpsError as e:
                self.set_status(e.status)
                self.finish(e.to_dict())
                return
            self.set_header("Content-Type", "application/json")
            self.finish(params.model_dump_json())
            return
        await self._forward(path)

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @authorized
    async def patch(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @authorized
    async def delete(self, path: str) -> None:
        await self._forward(path)


def forward_handlers(service_url: str) -> list[tuple[str, type[Any], dict[str, Any]]]:
    return [(f"{API_PREFIX}/(.*)", ForwardHandler, {"service_url": service_url})]
