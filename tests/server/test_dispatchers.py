"""Dispatchers side by side on one workspace: a real Jupyter server and `jupyter dataops run
--wait` as a real process. Each executes and recovers only its own runs; a dispatcher that dies
has its runs marked lost, by its next incarnation or by whichever one looks next."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.server.conftest import server_config
from tests.server.test_jobs import jobs, notebook, store_url, wait_for  # noqa: F401

pytestmark = pytest.mark.kernel


@pytest.fixture
def jp_server_config(store_url: str) -> dict[str, Any]:  # noqa: F811
    # One worker: a second run of the server waits in its queue while the first runs.
    return server_config(store_url, DataOps={"job_workers": 1, "warm_kernels": 1})


def kill_run_processes(run_id: str) -> None:
    """Kill what still executes a run whose dispatcher was killed (its kernel, its runner):
    they run in sessions of their own, so killing the dispatcher leaves them behind."""
    needle = f"DATAOPS_RUN_ID={run_id}".encode()
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in env:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cli(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "jupyter_dataops.cli", *args, f"--db-url={url}",
            "--DataOps.local_user=ada", "--DataOps.warm_kernels=0"]  # fmt: skip


def hosts(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return dict(c.execute(sa.text("SELECT id, host FROM dops_runs")).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


async def until_running(api, run_id: str, timeout: float = 90) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, run = await api("GET", f"runs/{run_id}")
        if run["status"] == "running" and (run["progress"].get("cell") or 0) >= 2:
            return run
        assert run["status"] in ("queued", "running"), run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not start within {timeout} s")


async def test_a_cli_run_beside_a_running_server_keeps_to_its_own_runs(
    jobs,  # noqa: F811
    api,
    jp_root_dir: Path,
    store_url: str,  # noqa: F811
):
    code, running = await api("POST", "runs", {"notebook_path": "nb/sleep.ipynb"})
    assert code == 201, running
    await until_running(api, running["id"])
    code, waiting = await api("POST", "runs", {"notebook_path": "nb/hello.ipynb"})
    assert code == 201, waiting  # queued: the server's one worker is busy
    proc = await asyncio.create_subprocess_exec(
        *cli(store_url, "run", "nb/hello.ipynb", "-p", "name", "cli", "--wait", "--json"),
        cwd=jp_root_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    mine = json.loads(out)
    assert mine["status"] == "succeeded" and mine["parameters"] == {"name": "cli"}, mine
    # The server's runs are as the server left them: one still running, one still queued.
    code, run = await api("GET", f"runs/{running['id']}")
    assert run["status"] == "running", run
    code, run = await api("GET", f"runs/{waiting['id']}")
    assert run["status"] == "queued" and run["started_at"] is None, run
    by_run = hosts(store_url)
    assert by_run[running["id"]] == by_run[waiting["id"]] != by_run[mine["id"]]
    assert by_run[mine["id"]] == f"{by_run[running['id']]}#run"
    # And the server goes on with its own queue.
    code, _ = await api("POST", f"runs/{running['id']}/cancel")
    assert code == 200
    done = await wait_for(api, waiting["id"])
    assert done["status"] == "succeeded", done


async def test_a_killed_cli_run_is_marked_lost_and_the_servers_runs_are_not(
    jobs,  # noqa: F811
    api,
    jp_root_dir: Path,
    store_url: str,  # noqa: F811
):
    jobs.web_app.settings["dataops_executor"].recover_every_s = 0.2
    code, own = await api("POST", "runs", {"notebook_path": "nb/sleep.ipynb"})
    await until_running(api, own["id"])
    proc = await asyncio.create_subprocess_exec(
        *cli(store_url, "run", "nb/sleep.ipynb", "--wait"),
        cwd=jp_root_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    theirs = None
    try:
        deadline = time.monotonic() + 90
        while theirs is None and time.monotonic() < deadline:
            code, body = await api("GET", "runs")
            theirs = next((r for r in body["runs"] if r["id"] != own["id"]), None)
            await asyncio.sleep(0.1)
        assert theirs is not None
        await until_running(api, theirs["id"])
    finally:
        proc.kill()  # SIGKILL: no clean-up of its own
        await proc.wait()
        if theirs is not None:
            kill_run_processes(theirs["id"])
    lost = await wait_for(api, theirs["id"])
    assert lost["status"] == "failed" and lost["error"]["reason"] == "lost", lost
    assert "`jupyter dataops run --wait` stopped" in lost["error"]["message"]
    code, run = await api("GET", f"runs/{own['id']}")
    assert run["status"] == "running", run  # the live server's run is untouched
    await api("POST", f"runs/{own['id']}/cancel")


# A real server process, killed and started again ---------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path, tmp: Path, url: str) -> None:
        self.port, self.token = _free_port(), secrets.token_hex(8)
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "cfg"),
               "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}  # fmt: skip
        self.log = (tmp / f"server-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             f"--DataOps.db_url={url}", "--DataOps.local_user=ada",
             "--DataOps.warm_kernels=0"],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None and time.monotonic() < deadline, "no server"
            try:
                self.call("GET", "status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/dataops/api/v1/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def until(self, run_id: str, ok: Any, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.call("GET", f"runs/{run_id}")
            if ok(run):
                return run
            time.sleep(0.2)
        raise AssertionError(f"run {run_id}: {run}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextmanager
def server(root: Path, tmp: Path, url: str) -> Iterator[Server]:
    srv = Server(root, tmp, url)
    try:
        yield srv
    finally:
        srv.stop()


def test_a_restarted_server_recovers_what_it_left_running(tmp_path: Path):
    root = tmp_path / "ws"
    notebook(root / "nb" / "sleep.ipynb", "seconds = 60", "import time\ntime.sleep(seconds)")
    notebook(root / "nb" / "hello.ipynb", "name = 'world'", "print(f'hello {name}')")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    with server(root, tmp_path, store) as first:
        run = first.call("POST", "runs", {"notebook_path": "nb/sleep.ipynb"})
        first.until(run["id"], lambda r: (r["progress"].get("cell") or 0) >= 2)
        first.stop(signal.SIGKILL)  # dies mid-run: nothing of it records the end
    kill_run_processes(run["id"])
    with server(root, tmp_path, store) as second:
        lost = second.until(run["id"], lambda r: r["status"] != "running")
        assert lost["status"] == "failed" and lost["error"]["reason"] == "lost", lost
        assert "the Jupyter server stopped" in lost["error"]["message"]
        again = second.call("POST", "runs", {"notebook_path": "nb/hello.ipynb"})
        done = second.until(again["id"], lambda r: r["status"] not in ("queued", "running"))
        assert done["status"] == "succeeded", done
    assert len(set(hosts(store).values())) == 1  # the same identity, incarnation after incarnation
