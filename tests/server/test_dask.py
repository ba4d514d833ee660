"""The Dask executor end to end: a real scheduler and two real workers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.server.conftest import server_config
from tests.server.test_jobs import jobs, notebook, store_url, wait_for  # noqa: F401

pytest.importorskip("distributed")
pytestmark = [pytest.mark.dask, pytest.mark.kernel]

WORKERS = ("w1", "w2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask_cli(command: str) -> list[str]:
    exe = Path(sys.executable).parent / "dask"
    if exe.exists():
        return [str(exe), command]
    return [sys.executable, "-m", f"distributed.cli.dask_{command}"]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A `dask scheduler` and two `dask worker`s (1 process, 1 thread each)."""
    from distributed import Client

    base = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = []
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(args: list[str], name: str, env: dict[str, str] | None = None) -> None:
        out = open(base / f"{name}.log", "wb")
        logs.append(out)
        procs.append(
            subprocess.Popen(
                args,
                cwd=base,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        )

    spawn(
        [*_dask_cli("scheduler"), "--host", "127.0.0.1", "--port", str(port),
         "--dashboard-address", "127.0.0.1:0"],
        "scheduler",
    )  # fmt: skip
    for name in WORKERS:
        local = base / name
        local.mkdir()
        spawn(
            [*_dask_cli("worker"), address, "--nworkers", "1", "--nthreads", "1",
             "--name", name, "--local-directory", str(local)],
            name,
            # Kernels inherit their worker's environment: notebooks can tell where they ran.
            {"DATAOPS_TEST_WORKER": name},
        )  # fmt: skip
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(len(WORKERS), timeout=90)
            names = {a: str(w["name"]) for a, w in client.scheduler_info()["workers"].items()}
            pids = {names[a]: int(pid) for a, pid in client.run(os.getpid).items()}
            # Import what a run needs once per worker, so the first test does not pay for it.
            client.run(__import__, "jupyter_dataops.jobs.runner")
            client.run(__import__, "papermill")
        yield {"address": address, "pids": pids, "dir": base}
    finally:
        for proc in reversed(procs):  # workers first, then the scheduler
            _stop(proc)
        for f in logs:
            f.close()


@pytest.fixture
def jp_server_config(store_url: str, dask_cluster: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    return server_config(
        store_url,
        DataOps={"executor": "dask", "dask_scheduler_address": dask_cluster["address"]},
    )


@pytest.fixture
def cluster_jobs(jobs, jp_root_dir, dask_cluster):  # type: ignore[no-untyped-def]  # noqa: F811
    notebook(
        jp_root_dir / "nb" / "where.ipynb",
        "name = 'world'\nn: int = 1",
        "import os\n"
        "print('WORKER', os.environ.get('DATAOPS_TEST_WORKER'))\nprint(f'hello {name} {n * 2}')",
        "print('cwd', os.getcwd())",
    )
    notebook(
        jp_root_dir / "nb" / "slow.ipynb",
        "seconds = 2.0",
        "import os, time\ntime.sleep(seconds)\nprint('WORKER', os.environ['DATAOPS_TEST_WORKER'])",
    )
    # c.DataOps.executor / dask_scheduler_address reach the executor through the platform.
    executor = jobs.web_app.settings["dataops_executor"]
    assert (
        executor.dask_scheduler_address
        == jobs.web_app.settings["dataops"].settings.dask_scheduler_address
    )
    return jobs


def _kernels_under(pids: dict[str, int]) -> list[Any]:
    import psutil

    found = []
    for pid in pids.values():
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for child in children:
            try:
                if "ipykernel" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:
                pass
    return found


async def _no_kernels_left(dask_cluster: dict[str, Any], timeout: float = 15) -> None:
    # The pids the scheduler reports are the worker processes (the kernels' parents).
    deadline = time.monotonic() + timeout
    while _kernels_under(dask_cluster["pids"]):
        if time.monotonic() > deadline:
            raise AssertionError(f"kernels left running: {_kernels_under(dask_cluster['pids'])}")
        await asyncio.sleep(0.2)


async def _log(jp_fetch, run_id: str) -> str:  # type: ignore[no-untyped-def]
    resp = await jp_fetch("dataops", "api", "v1", "runs", run_id, "outputs", "log")
    return str(resp.body.decode())


async def test_a_parameterized_run_succeeds_on_the_cluster(
    cluster_jobs, api, jp_fetch, jp_root_dir
):
    code, run = await api(
        "POST", "runs", {"notebook_path": "nb/where.ipynb", "parameters": {"name": "ada", "n": 21}}
    )
    assert code == 201 and run["executor"] == "dask", run
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded", done
    assert set(done["outputs"]) >= {"notebook", "log", "input"}
    assert done["progress"]["worker"] in WORKERS
    assert done["progress"]["cell"] == done["progress"]["of"] == 3  # not papermill's own cell
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "notebook")
    out = nbformat.reads(resp.body.decode(), as_version=4)
    injected = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'name = "ada"' in injected[0].source and "n = 21" in injected[0].source
    printed = json.dumps(out.cells[2].outputs)
    assert "hello ada 42" in printed
    assert f"WORKER {done['progress']['worker']}" in printed  # the kernel ran on that worker
    # Same machine here, so the notebook's directory exists on the worker: the kernel runs there.
    assert f"cwd {jp_root_dir / 'nb'}" in json.dumps(out.cells[3].outputs)
    log = await _log(jp_fetch, run["id"])
    assert "hello ada 42" in log and f"on dask worker {done['progress']['worker']}" in log


async def test_a_failing_cell_fails_the_run_with_its_traceback(cluster_jobs, api):
    code, run = await api(
        "POST", "runs", {"notebook_path": "nb/fail.ipynb", "parameters": {"x": 1}}
    )
    done = await wait_for(api, run["id"])
    assert done["status"] == "failed", done
    err = done["error"]
    assert err["ename"] == "ZeroDivisionError" and err["reason"] == "cell_error"
    assert err["cell_index"] == 2  # the notebook's third cell, papermill's fourth
    assert err["source"] == "1 / (x - 1)" and "ZeroDivisionError" in err["traceback"]
    assert "notebook" in done["outputs"]  # the partial output notebook comes back too


async def test_two_runs_at_once_both_succeed(cluster_jobs, api, jp_fetch):
    ids = []
    for _ in range(2):
        code, run = await api("POST", "runs", {"notebook_path": "nb/slow.ipynb"})
        assert code == 201
        ids.append(run["id"])
    t0 = time.monotonic()
    done = [await wait_for(api, run_id) for run_id in ids]
    assert [d["status"] for d in done] == ["succeeded", "succeeded"], done
    workers = {d["progress"]["worker"] for d in done}
    assert workers <= set(WORKERS)
    for d in done:
        assert f"WORKER {d['progress']['worker']}" in await _log(jp_fetch, d["id"])
    assert time.monotonic() - t0 < 60


async def test_timeout_kills_the_run_and_its_kernel(cluster_jobs, api, dask_cluster):
    t0 = time.monotonic()
    code, run = await api("POST", "runs", {"notebook_path": "nb/sleep.ipynb", "timeout_s": 4})
    for _ in range(200):  # let the kernel start on a worker
        if _kernels_under(dask_cluster["pids"]):
            break
        await asyncio.sleep(0.05)
    done = await wait_for(api, run["id"], timeout=60)
    assert done["status"] == "timed_out", done
    assert "timeout of 4 s" in done["error"]["message"]
    assert time.monotonic() - t0 < 30
    await _no_kernels_left(dask_cluster)


async def test_cancel_a_running_run(cluster_jobs, api, dask_cluster):
    code, run = await api("POST", "runs", {"notebook_path": "nb/sleep.ipynb"})
    # Progress arrives live from the worker: the run shows the cell it is stuck in.
    live: dict[str, Any] = {}
    for _ in range(600):
        code, now = await api("GET", f"runs/{run['id']}")
        live = now["progress"]
        if now["status"] == "running" and live.get("source", "").startswith("import time"):
            break
        await asyncio.sleep(0.05)
    assert live.get("cell") == 2 and live.get("of") == 2, live  # no parameters: no injected cell
    assert live.get("worker") in WORKERS and now["status"] == "running"
    code, cancelled = await api("POST", f"runs/{run['id']}/cancel")
    assert code == 200 and cancelled["status"] == "cancelled", cancelled
    await _no_kernels_left(dask_cluster)
    # The workers are free again.
    code, again = await api("POST", "runs", {"notebook_path": "nb/where.ipynb"})
    assert (await wait_for(api, again["id"]))["status"] == "succeeded"


async def test_a_run_on_the_cluster_acts_as_its_owner(cluster_jobs, api, jp_fetch):
    code, run = await api("POST", "runs", {"notebook_path": "nb/whoami.ipynb"})
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded", done
    log = await _log(jp_fetch, run["id"])
    who = json.loads(log.split("WHO ", 1)[1].splitlines()[0])
    who.pop("token")
    assert who == {"user": "ada", "run": run["id"], "submit": 403, "jobs": 403, "runs": 403}


async def test_a_job_definition_chooses_its_executor(cluster_jobs, api):
    code, job = await api(
        "POST", "jobs", {"name": "on-local", "notebook_path": "nb/hello.ipynb", "executor": "local"}
    )
    assert code == 201, job
    code, run = await api("POST", "runs", {"job": "on-local"})
    assert run["executor"] == "local"
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded" and "worker" not in done["progress"], done


async def test_a_run_on_the_cluster_is_one_mlflow_run_with_its_logged_values(
    cluster_jobs, api, jp_root_dir
):
    notebook(
        jp_root_dir / "nb" / "track.ipynb",
        "alpha = 0.5",
        "import mlflow, jupyter_dataops as dops\n"
        "mlflow.log_metric('plain', 1.0)\n"
        "for i in range(20):\n"
        "    dops.log_metric('batched', i, step=i)",
    )
    code, run = await api("POST", "runs", {"notebook_path": "nb/track.ipynb"})
    assert code == 201, run
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded", done
    platform = cluster_jobs.web_app.settings["dataops"]
    from tests.server.test_tracking import mlflow_run

    mr = mlflow_run(platform, run["id"])  # once ended
    mid = mr.info.run_id
    client = platform.tracking.client()
    assert mr.info.status == "FINISHED" and mr.data.tags["dataops.executor"] == "dask"
    assert mr.data.metrics["plain"] == 1.0 and mr.data.params["alpha"] == "0.5"
    # The kernel was killed with its run, before its last batch was sent: the worker's spool
    # came back with the result and the server sent the rest.
    assert len(client.get_metric_history(mid, "batched")) == 20
