"""The OpenAPI document, generated from the pydantic models and the handlers' operations.

``openapi.json`` beside this file is the committed copy (the front end's TypeScript types are
generated from it); ``tests/unit/test_openapi.py`` fails when it drifts from the code.
Regenerate with ``python -m jupyter_dataops.api``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .. import __version__
from ..models import ErrorResponse

DOCUMENT = Path(__file__).parent / "openapi.json"


def _openapi_path(route: str) -> str:
    """``datasets/(?P<name>[^/]+)`` -> ``/datasets/{name}``."""
    return "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)


def openapi_document() -> dict[str, Any]:
    from ..handlers import API_PREFIX, RESOURCES

    # Requests are described as validated (defaults optional), responses as serialized
    # (every field present), which is what the TypeScript types need.
    uses: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ErrorResponse, "serialization")}
    for h in RESOURCES:
        for op in h.operations.values():
            if op.request is not None:
                uses.add((op.request, "validation"))
            if op.response is not None:
                uses.add((op.response, "serialization"))
    ordered = sorted(uses, key=lambda u: (u[0].__name__, u[1]))
    keys, schema = models_json_schema(ordered, ref_template="#/components/schemas/{model}")

    def ref(m: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, str]:
        return dict(keys[(m, mode)])

    error = {
        "description": "Error",
        "content": {"application/json": {"schema": ref(ErrorResponse)}},
    }
    paths: dict[str, Any] = {}
    for h in RESOURCES:
        item: dict[str, Any] = {}
        path = _openapi_path(h.path)
        for method, op in sorted(h.operations.items()):
            ok_schema = ref(op.response) if op.response else {"type": "object"}
            callers = ["user", *(["kernel"] if op.kernel_token else [])]
            callers += ["run"] if op.run_token else []
            entry: dict[str, Any] = {
                "operationId": method + re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_"),
                "summary": op.summary,
                # Who may call it (401: no valid credentials; 403: not this caller): users,
                # kernels' tokens, job runs' tokens (their own run only). See docs/api.md.
                "x-dataops-callers": callers,
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": ok_schema}},
                    },
                    "default": error,
                },
            }
            params = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in re.findall(r"\{(\w+)\}", path)
            ] + [
                {
                    "name": n,
                    "in": "query",
                    "required": False,
                    "schema": {"type": typ},
                    "description": d,
                }
                for n, typ, d in op.params
            ]
            if params:
                entry["parameters"] = params
            if op.request is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref(op.request, "validation")}},
                }
            item[method] = entry
        paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "jupyter-dataops", "version": __version__.split("+")[0]},
        "servers": [{"url": API_PREFIX}],
        "security": [{"jupyterToken": []}, {"dataopsToken": []}],
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {
                "jupyterToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token <Jupyter server token>`",
                },
                "dataopsToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`DataOps <kernel or job run token>`: expiring, valid while "
                    "its kernel or run lives, renewed with POST token/renew",
                },
            },
        },
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
