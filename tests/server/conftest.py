from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest


def server_config(store_url: str, **extra: Any) -> dict[str, Any]:
    """Jupyter Server config with the extension on, auth enforced, and ``store_url``."""
    config: dict[str, Any] = {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_dataops": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "DataOps": {"db_url": store_url, "local_user": "ada"},
    }
    for section, values in extra.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.fixture
def jp_server_config(store_url: str) -> dict[str, Any]:
    return server_config(store_url)


@pytest.fixture
def api(jp_fetch):  # type: ignore[no-untyped-def]
    """Call the DataOps API; returns (status, json body) and never raises on 4xx/5xx."""

    async def call(
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **(headers or {})}
        kwargs: dict[str, Any] = {"method": method, "raise_error": False}
        if raw is not None:
            kwargs["body"] = raw
        elif body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
        path, _, query = path.partition("?")
        params = dict(urllib.parse.parse_qsl(query)) if query else None
        resp = await jp_fetch(
            "dataops", "api", "v1", *path.split("/"), headers=headers, params=params, **kwargs
        )
        text = resp.body.decode()
        return resp.code, (json.loads(text) if text else None)

    return call
