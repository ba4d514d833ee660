"""A real kernel started by the server finds its server and acts as the kernel's owner."""

from __future__ import annotations

import json

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


async def test_kernel_client_gets_status(serving, api):
    out, reply = await run_in_kernel(serving, CODE)
    text = "".join(out)
    assert reply["status"] == "ok", text
    result = json.loads(text.split("RESULT ", 1)[1])
    _, expected = await api("GET", "status")
    assert result["user"] == "ada" == expected["user"]["name"]
    assert result["counts"] == expected["counts"]
    assert result["version"] == expected["version"]


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
