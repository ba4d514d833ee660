"""The kernel-side package stays cheap to import and fails clearly without a server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_import_pulls_in_nothing_of_the_server():
    code = (
        "import sys, json, jupyter_dataops as d; "
        "heavy = ['sqlalchemy', 'pydantic', 'tornado', 'jupyter_server', 'duckdb', 'mlflow', "
        "'pandas', 'yaml', 'urllib.request']; "
        "print(json.dumps({m: m in sys.modules for m in heavy}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert not any(loaded.values()), loaded


def test_status_without_a_server_says_what_to_do(monkeypatch):
    import jupyter_dataops as dops
    from jupyter_dataops import client

    monkeypatch.delenv(client.URL_ENV, raising=False)
    monkeypatch.delenv(client.TOKEN_ENV, raising=False)
    monkeypatch.setattr(client, "_default", None)
    with pytest.raises(dops.DataOpsClientError, match="connect") as e:
        dops.status()
    assert e.value.code == "not_configured"


def test_unreachable_server_is_a_clear_error(monkeypatch):
    import jupyter_dataops as dops

    c = dops.Client("http://127.0.0.1:9/", "dops1.x.y", timeout=5)
    with pytest.raises(dops.DataOpsClientError, match="cannot reach") as e:
        c.status()
    assert e.value.code == "unreachable"


def test_progress_bars_are_off_in_job_runs(monkeypatch):
    from jupyter_dataops import client

    monkeypatch.setenv("DATAOPS_RUN_ID", "0" * 32)  # a headless run: nobody watches the bar
    assert client._progress("flights", None) is None
    assert client._progress("flights", False) is None
    monkeypatch.delenv("DATAOPS_RUN_ID")
    bar = client._progress("flights", None)
    assert bar is not None
    bar.close()
    monkeypatch.setenv("DATAOPS_RUN_ID", "0" * 32)
    bar = client._progress("flights", True)  # asked for explicitly: shown all the same
    assert bar is not None
    bar.close()
