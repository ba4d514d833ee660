"""Kernel tokens: one per kernel, in that kernel's environment only, expiring, renewed while
the kernel lives and useless once it is gone; bad credentials of any shape are a JSON 401."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import jwt
import pytest

from jupyter_dataops.client import TOKEN_ENV, Client, DataOpsClientError

from .test_kernel import kernel_result

pytestmark = pytest.mark.kernel


@pytest.fixture
def store_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def serving(jp_serverapp, http_server_client):  # type: ignore[no-untyped-def]
    return jp_serverapp


def _url(serverapp) -> str:  # type: ignore[no-untyped-def]
    return f"http://127.0.0.1:{serverapp.port}{serverapp.base_url}"


async def test_each_kernel_has_its_own_token_and_the_server_has_none(serving):
    assert TOKEN_ENV not in os.environ  # terminals and other processes inherit nothing
    code = (
        "import json, os, jupyter_dataops as dops\n"
        "print('RESULT', json.dumps({'token': os.environ['JUPYTER_DATAOPS_TOKEN'],\n"
        "      'user': dops.status()['user']['name']}))"
    )
    first, _ = await kernel_result(serving, code)
    second, _ = await kernel_result(serving, code)
    platform = serving.web_app.settings["dataops"]
    a, b = (
        platform.tokens.verify(first["token"], allow_expired=True),
        platform.tokens.verify(second["token"], allow_expired=True),
    )
    assert first["user"] == second["user"] == "ada"
    assert a["scope"] == b["scope"] == "kernel" and a["kid"] != b["kid"]
    assert a["exp"] - a["iat"] == pytest.approx(platform.settings.token_ttl, abs=1)
    # Both kernels are gone (kernel_result shuts them down): their tokens are refused.
    client = Client(_url(serving), first["token"])
    loop = asyncio.get_running_loop()  # the client blocks; the server answers on this loop
    with pytest.raises(DataOpsClientError) as e:
        await loop.run_in_executor(None, client.status)
    assert e.value.status == 401 and e.value.details["reason"] == "gone"
    with pytest.raises(DataOpsClientError) as e:
        await loop.run_in_executor(None, client.renew)
    assert e.value.status == 401


async def test_an_expired_token_of_a_live_kernel_is_renewed_by_the_client(serving, api):
    km = serving.kernel_manager
    kernel_id = await km.start_kernel(kernel_name="python3")
    try:
        platform = serving.web_app.settings["dataops"]
        expired = platform.tokens.mint("ada", "kernel", ttl=-5, kernel_id=kernel_id)
        code, body = await api("GET", "status", headers={"Authorization": f"DataOps {expired}"})
        assert code == 401 and body["error"]["details"]["reason"] == "expired"
        # The kernel-side client renews and retries, off the event loop as a kernel would.
        client = Client(_url(serving), expired)
        loop = asyncio.get_running_loop()
        status = await loop.run_in_executor(None, client.status)
        assert status["user"]["name"] == "ada" and client.token != expired
        assert platform.tokens.verify(client.token)["kid"] == kernel_id
    finally:
        await km.shutdown_kernel(kernel_id, now=True)


def _raw_get(serverapp, path: str, auth: bytes) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    """A request with these exact header bytes (HTTP clients refuse some of them)."""
    with socket.create_connection(("127.0.0.1", serverapp.port), timeout=10) as s:
        s.sendall(
            b"GET " + f"{serverapp.base_url}dataops/api/v1/{path}".encode() + b" HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nAuthorization: " + auth + b"\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _alg_none() -> str:
    claims = {"iss": "jupyter-dataops", "sub": "root", "scope": "kernel", "kid": "x",
              "iat": int(time.time()), "exp": int(time.time()) + 60}  # fmt: skip
    return jwt.encode(claims, None, algorithm="none")


BAD = [
    "DataOps dops1.e30.\u00e9".encode(),  # the non-ASCII signature of the issue
    "DataOps \u00e9\u00e9\u00e9".encode(),
    b"DataOps \xff\xfe\xfd",
    b"DataOps ",
    b"DataOps a.b.c",
    b"DataOps " + b"A" * 10_000,
    b"DataOps eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.x",
    ("DataOps " + _alg_none()).encode(),
    b"token",
    b"Bearer nothing",
]


@pytest.mark.parametrize("auth", BAD, ids=range(len(BAD)))
async def test_bad_credentials_of_any_shape_are_a_json_401(serving, auth):
    loop = asyncio.get_running_loop()
    for path in ("status", "runs"):  # off the loop: the server answers on this loop
        code, body = await loop.run_in_executor(None, _raw_get, serving, path, auth)
        assert code == 401, (auth, body)
        assert body["error"]["code"] == "unauthorized"


async def test_the_same_bad_token_is_401_on_every_method(serving, api):
    bad = {"Authorization": "DataOps not-a-token"}
    assert (await api("GET", "status", headers=bad))[0] == 401
    assert (await api("POST", "runs", {"notebook_path": "x.ipynb"}, headers=bad))[0] == 401
    assert (await api("DELETE", "jobs/x", headers=bad))[0] == 401
