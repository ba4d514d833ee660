"""A real ``jupyter server`` with jupyter_dataops on 127.0.0.1, for the benchmarks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, token: str, body: Any = None, timeout: float = 30) -> Any:
    """One JSON request with a Jupyter token; raises RuntimeError on an HTTP error."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"token {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {url}: HTTP {e.code}: {e.read()[:500]!r}") from None
    return json.loads(raw) if raw else None


def start(
    root: Path, port: int, token: str, user: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """Start the server on ``root`` (its own config and runtime dirs); output to ``log``."""
    env = dict(os.environ)
    env["JUPYTER_CONFIG_DIR"] = str(root / ".jupyter")
    env["JUPYTER_RUNTIME_DIR"] = str(root / ".runtime")
    env.pop("JUPYTERHUB_USER", None)
    cmd = [
        sys.executable, "-m", "jupyter_server",
        f"--ServerApp.root_dir={root}", f"--port={port}", "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}", "--no-browser", "--allow-root",
        "--ServerApp.jpserver_extensions={'jupyter_dataops': True}",
        f"--DataOps.local_user={user}", *extra,
    ]  # fmt: skip
    with open(log, "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)


def wait_ready(
    url: str, token: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            http("GET", url + "api/status", token, timeout=2)
            return
        except (OSError, RuntimeError):
            time.sleep(0.2)
    raise RuntimeError(f"server did not start in time; see {log}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
