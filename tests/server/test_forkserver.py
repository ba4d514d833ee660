"""The local executor's forked kernels: fresh per run, never shared, with fallbacks.

Real server, real fork server process, real forked ipykernels, real papermill runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from jupyter_dataops.jobs.forkserver import forkable
from tests.server.test_jobs import jobs, notebook, store_url, wait_for  # noqa: F401

pytestmark = pytest.mark.kernel


@pytest.fixture
def server(jobs):  # type: ignore[no-untyped-def]  # noqa: F811
    """The server with its extension (and so its executor and fork server) started."""
    return jobs


STATE = (
    "import builtins, json, os, random, sys\n"
    "seen = hasattr(builtins, '_dataops_marker')\n"
    "builtins._dataops_marker = 1\n"
    "runner = os.getppid()\n"
    "with open(f'/proc/{runner}/stat') as f:\n"
    "    grandparent = int(f.read().rsplit(')', 1)[1].split()[1])\n"
    "print('STATE', json.dumps({'seen': seen, 'pid': os.getpid(), 'runner': runner,\n"
    "      'grandparent': grandparent, 'random': random.random(), 'x': x,\n"
    "      'argv': [os.path.basename(sys.argv[0]), sys.argv[1]]}))"
)


def kernelspec(data_dir: Path, name: str, argv: list[str], env: dict[str, str]) -> None:
    d = data_dir / "kernels" / name
    d.mkdir(parents=True)
    spec = {"argv": argv, "display_name": name, "language": "python", "env": env}
    (d / "kernel.json").write_text(json.dumps(spec))


async def state_of(api, jp_fetch, run_id: str) -> dict:
    done = await wait_for(api, run_id)
    assert done["status"] == "succeeded", done
    resp = await jp_fetch("dataops", "api", "v1", "runs", run_id, "outputs", "log")
    return json.loads(resp.body.decode().split("STATE ", 1)[1].splitlines()[0])


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


async def test_each_run_gets_a_fresh_forked_kernel(server, api, jp_fetch, jp_root_dir):
    notebook(jp_root_dir / "nb" / "state.ipynb", "x = 0", STATE)
    forks = server.web_app.settings["dataops_executor"]._forks
    assert forks is not None, "the python3 kernel should run forked"
    states = []
    for i in range(3):
        code, run = await api(
            "POST", "runs", {"notebook_path": "nb/state.ipynb", "parameters": {"x": i}}
        )
        assert code == 201, run
        states.append(await state_of(api, jp_fetch, run["id"]))
    assert [s["x"] for s in states] == [0, 1, 2]
    assert all(s["argv"] == ["ipykernel_launcher.py", "-f"] for s in states)
    # Nothing a run did is seen by the next: a new kernel process each time ...
    assert not any(s["seen"] for s in states)
    assert len({s["pid"] for s in states}) == 3 and len({s["runner"] for s in states}) == 3
    # ... forked by a runner that the fork server forked ...
    assert {s["grandparent"] for s in states} == {forks.proc.pid}
    # ... with its own random state (forked children would otherwise share it) ...
    assert len({s["random"] for s in states}) == 3
    # ... and gone, runner and kernel, once the run is over.
    for s in states:
        assert gone(s["pid"]) and gone(s["runner"]), s


async def test_a_kernelspec_that_cannot_fork_runs_in_its_own_interpreter(
    server, api, jp_fetch, jp_root_dir, jp_data_dir
):
    # A kernelspec with an environment of its own is started the plain way, env applied.
    kernelspec(
        jp_data_dir,
        "py-env",
        [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        {"DATAOPS_SPEC_ENV": "from-the-spec"},
    )
    assert not forkable("py-env") and forkable("python3")
    notebook(
        jp_root_dir / "nb" / "env.ipynb",
        "x = 0",
        "import os\nprint('SPEC', os.environ.get('DATAOPS_SPEC_ENV'))",
    )
    code, run = await api(
        "POST", "runs", {"notebook_path": "nb/env.ipynb", "kernel_name": "py-env"}
    )
    assert code == 201, run
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded" and done["kernel_name"] == "py-env", done
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
    assert "SPEC from-the-spec" in resp.body.decode()


async def test_a_kernel_that_never_starts_fails_the_run_with_the_reason(
    server, api, jp_root_dir, jp_data_dir
):
    kernelspec(jp_data_dir, "broken", ["/nonexistent/python", "-f", "{connection_file}"], {})
    notebook(jp_root_dir / "nb" / "plain.ipynb", "x = 0", "print(x)")
    code, run = await api(
        "POST", "runs", {"notebook_path": "nb/plain.ipynb", "kernel_name": "broken"}
    )
    assert code == 201, run
    done = await wait_for(api, run["id"])
    assert done["status"] == "failed"
    assert done["error"]["reason"] == "kernel_start", done["error"]
    assert "'broken'" in done["error"]["message"] and "3 attempts" in done["error"]["message"]
    # The executor is not stuck: the next run on a good kernel succeeds.
    code, run = await api("POST", "runs", {"notebook_path": "nb/plain.ipynb"})
    assert (await wait_for(api, run["id"]))["status"] == "succeeded"


async def test_runs_go_on_when_the_fork_server_dies(server, api, jp_fetch, jp_root_dir):
    notebook(jp_root_dir / "nb" / "state.ipynb", "x = 0", STATE)
    executor = server.web_app.settings["dataops_executor"]
    first = executor._forks
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    for i in range(2):
        # Runners already forked may serve; new ones come from a restarted fork server.
        code, run = await api(
            "POST", "runs", {"notebook_path": "nb/state.ipynb", "parameters": {"x": i}}
        )
        assert code == 201, run
        assert (await state_of(api, jp_fetch, run["id"]))["x"] == i
    assert executor._forks is not None and executor._forks is not first
    assert executor._forks.proc.poll() is None


async def test_a_killed_run_leaves_no_kernel_files_behind(server, api, jp_fetch, jp_root_dir):
    import tempfile

    notebook(
        jp_root_dir / "nb" / "hang.ipynb",
        "seconds = 60",
        "import os, subprocess, time\n"
        "child = subprocess.Popen(['sleep', str(seconds)])\n"
        "print('RUNNER', os.getppid(), os.getpid(), child.pid, flush=True)\n"
        "time.sleep(seconds)",
    )
    code, run = await api("POST", "runs", {"notebook_path": "nb/hang.ipynb", "timeout_s": 3})
    assert code == 201, run
    done = await wait_for(api, run["id"])
    assert done["status"] == "timed_out", done
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
    runner, kernel, child = map(int, resp.body.decode().split("RUNNER ", 1)[1].split()[:3])
    # The runner held the kernel's connection file in a folder named after it; killed, it
    # could not remove it: the executor did. And no process is left, the kernel's children
    # included (they are in the kernel's process group, as with jupyter_client's kernels).
    assert gone(runner) and gone(kernel) and gone(child)
    assert list(Path(tempfile.gettempdir()).glob(f"dataops-kernel-{runner}-*")) == []
    # Nor the copy of the input that papermill read (its cells marked).
    assert sorted(p.name for p in (jp_root_dir / ".dataops" / "runs" / run["id"]).iterdir()) == [
        "input.ipynb",
        "output.ipynb",
        "run.log",
    ]


# A forked kernel is what a fresh one is -----------------------------------------------------
# One notebook reports what a notebook could notice of its process; the same run in a forked
# kernel and in one that jupyter_client starts from the kernelspec must report the same.
REPORT = r"""
import atexit, json, logging, os, signal, sys, threading

def handler(h):
    if h in (signal.SIG_DFL, signal.SIG_IGN):
        return signal.Handlers(h).name
    return 'None' if h is None else f'{h.__module__}.{h.__qualname__}'

def fd_kind(fd):
    target = os.readlink(f'/proc/self/fd/{fd}')
    return target.split(':')[0] if ':' in target else os.path.basename(target)

fds = {}
for fd in os.listdir('/proc/self/fd'):
    try:
        fds[int(fd)] = fd_kind(fd)
    except OSError:  # the listing's own fd
        pass
mask = os.umask(0)
os.umask(mask)
print('REPORT ' + json.dumps({
    'signals': {signal.Signals(s).name: handler(signal.getsignal(s))
                for s in signal.valid_signals() if s < signal.SIGRTMIN
                and s not in (signal.SIGKILL, signal.SIGSTOP)},
    'blocked': sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
    'session_leader': os.getsid(0) == os.getpid(),
    'group_leader': os.getpgrp() == os.getpid(),
    'parent_pid_env': os.environ.get('JPY_PARENT_PID') == str(os.getppid()),
    'env': dict(os.environ),
    'path': sys.path, 'cwd': os.getcwd(), 'umask': mask,
    'stdio': [fds.get(fd) for fd in (0, 1, 2)],
    # Sockets are the clients' connections; a journal is open only while history is written.
    'fds': sorted(k for fd, k in fds.items()
                  if fd > 2 and k != 'socket' and not k.endswith('-journal')),
    'threads': sorted(t.name for t in threading.enumerate()),
    'daemon_threads': sorted(t.name for t in threading.enumerate() if t.daemon),
    'argv': [os.path.basename(sys.argv[0]), *sys.argv[1:2]],
    'orig_argv': [os.path.basename(a) for a in sys.orig_argv[1:4]],
    'main': sys.modules['__main__'].__name__,
    'logging': [type(h).__name__ for h in logging.getLogger().handlers],
}))
"""
# Set per run, or (pytest's) changed in the server between the warm runners' starts.
# What each run has of its own (its id, token, MLflow run and spool): not a difference.
PER_RUN = {
    "DATAOPS_RUN_ID",
    "JUPYTER_DATAOPS_TOKEN",
    "JPY_PARENT_PID",
    "PYTEST_CURRENT_TEST",
    "MLFLOW_RUN_ID",
    "DATAOPS_MLFLOW_RUN_ID",
    "MLFLOW_TRACKING_TOKEN",
    "DATAOPS_SPOOL_DIR",
}


@asynccontextmanager
async def fresh_kernels(server):  # type: ignore[no-untyped-def]
    """The server's executor replaced by one that starts every kernel from its kernelspec."""
    settings = server.web_app.settings
    forked = settings["dataops_executor"]
    await forked.stop()
    fresh = settings["dataops"].executor(forked.server_url)
    fresh.fork_kernels = False
    settings["dataops_executor"] = fresh
    await fresh.start()
    try:
        assert fresh._forks is None
        yield fresh
    finally:
        await fresh.stop()


async def report_of(api, jp_fetch, path: str) -> dict:
    code, run = await api("POST", "runs", {"notebook_path": path})
    assert code == 201, run
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded", done
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
    return json.loads(resp.body.decode().split("REPORT ", 1)[1].splitlines()[0])


async def test_a_forked_kernel_is_what_a_fresh_kernel_is(server, api, jp_fetch, jp_root_dir):
    notebook(jp_root_dir / "nb" / "report.ipynb", "x = 0", REPORT)
    assert server.web_app.settings["dataops_executor"]._forks is not None
    forked = await report_of(api, jp_fetch, "nb/report.ipynb")
    async with fresh_kernels(server):
        fresh = await report_of(api, jp_fetch, "nb/report.ipynb")
    assert sorted(forked) == sorted(fresh)
    for field in forked:
        if field == "env":
            assert set(forked["env"]) == set(fresh["env"]), "environment variables"
            same = {k: v for k, v in forked["env"].items() if k not in PER_RUN}
            assert same == {k: fresh["env"][k] for k in same}, "environment values"
        else:
            assert forked[field] == fresh[field], field
    # And what that is, in particular: default signal handling (SIGTERM kills), a session of
    # its own, the runner as parent, a pipe nobody writes as stdin.
    assert forked["signals"]["SIGTERM"] == "SIG_DFL"
    assert forked["signals"]["SIGCHLD"] == "SIG_DFL"
    assert forked["session_leader"] and forked["group_leader"] and forked["parent_pid_env"]
    assert forked["stdio"][0] == "pipe"
    assert forked["argv"] == ["ipykernel_launcher.py", "-f"]
    assert forked["orig_argv"] == ["-m", "ipykernel_launcher", "-f"]


VERDICTS = {
    # notebook: its cells after the parameters cell, and what papermill makes of it
    "sigterm": (["import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", "print('AFTER')"],
                "failed", "kernel_died"),
    "os_exit": (["import os\nos._exit(3)", "print('AFTER')"], "failed", "kernel_died"),
    "sys_exit": (["import sys\nsys.exit(3)", "print('AFTER')"], "failed", "cell_error"),
    "sys_exit_0": (["import sys\nsys.exit(0)", "print('AFTER')"], "succeeded", None),
    "atexit": (["import atexit\natexit.register(lambda: open('atexit.ran', 'w').write('yes'))",
                "print('registered')"], "succeeded", None),
}  # fmt: skip


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "fresh"])
async def test_signals_exits_and_atexit_hooks_end_runs_as_in_papermill(
    server, api, jp_fetch, jp_root_dir, fork
):
    for name, (cells, _, _) in VERDICTS.items():
        notebook(jp_root_dir / "nb" / name / f"{name}.ipynb", "x = 0", *cells)
    async with AsyncExitStack() as stack:
        if not fork:
            await stack.enter_async_context(fresh_kernels(server))
        for name, (_, status, reason) in VERDICTS.items():
            code, run = await api("POST", "runs", {"notebook_path": f"nb/{name}/{name}.ipynb"})
            assert code == 201, run
            done = await wait_for(api, run["id"])
            assert (done["status"], (done["error"] or {}).get("reason")) == (status, reason), (
                name,
                done["error"],
            )
            resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
            assert "AFTER" not in resp.body.decode(), name
            if name == "sys_exit":
                assert done["error"]["message"] == "SystemExit: 3"
        # The kernel shut down as papermill shuts it down, so it ran its atexit hooks.
        marker = jp_root_dir / "nb" / "atexit" / "atexit.ran"
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert marker.exists() and marker.read_text() == "yes"
