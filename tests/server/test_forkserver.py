"""The local executor's forked kernels: fresh per run, never shared, with fallbacks.

Real server, real fork server process, real forked ipykernels, real papermill runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
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
        "import os, time\nprint('RUNNER', os.getppid(), os.getpid(), flush=True)\n"
        "time.sleep(seconds)",
    )
    code, run = await api("POST", "runs", {"notebook_path": "nb/hang.ipynb", "timeout_s": 3})
    assert code == 201, run
    done = await wait_for(api, run["id"])
    assert done["status"] == "timed_out", done
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
    runner, kernel = map(int, resp.body.decode().split("RUNNER ", 1)[1].split()[:2])
    # The runner held the kernel's connection file in a folder named after it; killed, it
    # could not remove it: the executor did. And neither process is left.
    assert gone(runner) and gone(kernel)
    assert list(Path(tempfile.gettempdir()).glob(f"dataops-kernel-{runner}-*")) == []
