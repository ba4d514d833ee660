from __future__ import annotations

import json

from jupyter_dataops.api import DOCUMENT, _openapi_path, openapi_document, render
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
    assert set(doc["paths"]) == {_openapi_path(h.path) for h in RESOURCES}
    json.dumps(doc)  # serializable


def test_typescript_types_match_openapi(tmp_path):
    """labextension/src/api/schema.ts is generated from openapi.json (`make openapi`)."""
    import shutil
    import subprocess
    from pathlib import Path

    ext = Path(__file__).resolve().parents[2] / "labextension"
    tool = ext / "node_modules" / ".bin" / "openapi-typescript"
    if not tool.exists() or shutil.which("node") is None:
        import os

        import pytest

        msg = "labextension/node_modules is missing: run `make test`, which installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    out = tmp_path / "schema.ts"
    subprocess.run(
        [str(tool), str(DOCUMENT), "-o", str(out)], check=True, capture_output=True, cwd=ext
    )
    assert out.read_text() == (ext / "src" / "api" / "schema.ts").read_text(), (
        "labextension/src/api/schema.ts is stale: run `make openapi`"
    )
