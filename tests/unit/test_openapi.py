from __future__ import annotations

import json

from jupyter_dataops.api import DOCUMENT, openapi_document, render
from jupyter_dataops.handlers import RESOURCES


def test_committed_openapi_matches_code():
    assert DOCUMENT.read_text() == render(), (
        "jupyter_dataops/api/openapi.json is stale: run `python -m jupyter_dataops.api` "
        "and `jlpm gen:api` in labextension/"
    )


def test_every_operation_has_a_handler_method():
    doc = openapi_document()
    for h in RESOURCES:
        assert h.operations, h
        for method in h.operations:
            assert callable(getattr(h, method)), (h, method)
    assert set(doc["paths"]) == {"/" + h.path for h in RESOURCES}
    json.dumps(doc)  # serializable
