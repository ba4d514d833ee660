"""The kernel-side client: talks to the DataOps server that started this kernel or job.

The server puts ``JUPYTER_DATAOPS_URL`` and ``JUPYTER_DATAOPS_TOKEN`` in the environment of
every kernel it starts, so ``import jupyter_dataops as dops; dops.status()`` needs no set-up.
Imports nothing of the server side.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

URL_ENV = "JUPYTER_DATAOPS_URL"
TOKEN_ENV = "JUPYTER_DATAOPS_TOKEN"
API_PREFIX = "dataops/api/v1/"


class DataOpsClientError(Exception):
    """A request to the DataOps server failed; ``code`` and ``status`` say how."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "client_error",
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.details = details or {}


class Client:
    """A connection to one DataOps server.

    Example::

        c = Client("http://127.0.0.1:8888/", token="...")
        c.status()["user"]["name"]
    """

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        url = urllib.parse.urljoin(self.url, API_PREFIX + path.lstrip("/"))
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"DataOps {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as e:
            raise _from_http_error(e) from None
        except urllib.error.URLError as e:
            raise DataOpsClientError(
                f"cannot reach the DataOps server at {self.url}: {e.reason}", code="unreachable"
            ) from None
        return json.loads(payload) if payload else None

    def status(self) -> dict[str, Any]:
        return self.request("GET", "status")


def _from_http_error(e: urllib.error.HTTPError) -> DataOpsClientError:
    try:
        err = json.loads(e.read())["error"]
        return DataOpsClientError(
            err["message"], code=err["code"], status=e.code, details=err.get("details") or {}
        )
    except Exception:
        return DataOpsClientError(f"HTTP {e.code}: {e.reason}", status=e.code)


_default: Client | None = None


def connect(url: str | None = None, token: str | None = None) -> Client:
    """The client for this kernel's server (from the environment), or for ``url``/``token``.

    Example::

        dops.connect()                                  # the server that started this kernel
        dops.connect("http://127.0.0.1:8888/", "dops1...")   # another server
    """
    global _default
    if url is None and token is None and _default is not None:
        return _default
    url = url or os.environ.get(URL_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    if not url or not token:
        raise DataOpsClientError(
            f"No DataOps server known: this kernel was not started by a Jupyter server with "
            f"jupyter_dataops enabled ({URL_ENV} / {TOKEN_ENV} are not set). "
            "Call dops.connect(url, token) to choose one.",
            code="not_configured",
        )
    _default = Client(url, token)
    return _default


def status() -> dict[str, Any]:
    """Status of the DataOps server: version, your user and groups, store, counts.

    Example::

        >>> import jupyter_dataops as dops
        >>> dops.status()["user"]["name"]
        'alice'
    """
    return connect().status()
