"""Production jobs end to end: real papermill runs in real kernels, on the local executor."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.kernel


def notebook(path: Path, params: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, *(nbformat.v4.new_code_cell(c) for c in cells)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def store_url(tmp_path: Path) -> str:  # jobs tests run on SQLite; one test below on PG
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jobs(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop):  # type: ignore[no-untyped-def]
    """The server with its extension started (as `jupyter server` does after start-up)."""
    notebook(
        jp_root_dir / "nb" / "hello.ipynb",
        "alpha = 0.1  # the learning rate\nname = 'world'\nn: int = 2",
        "print(f'hello {name} {alpha * n}')",
        "import os\nprint('cwd', os.getcwd())",
    )
    notebook(jp_root_dir / "nb" / "fail.ipynb", "x = 1", "y = 2", "1 / (x - 1)")
    notebook(jp_root_dir / "nb" / "sleep.ipynb", "seconds = 60", "import time\ntime.sleep(seconds)")
    notebook(
        jp_root_dir / "nb" / "whoami.ipynb",
        "",
        "import json, os, jupyter_dataops as dops\n"
        "c = dops.connect()\n"
        "who = {'user': dops.status()['user']['name'], 'run': os.environ['DATAOPS_RUN_ID'],\n"
        "       'token': c.token}\n"
        "for name, call in [('submit', lambda: dops.run_notebook('nb/hello.ipynb', wait=False)),\n"
        "                   ('jobs', lambda: c.request('GET', 'jobs')),\n"
        "                   ('runs', lambda: c.request('GET', 'runs'))]:\n"
        "    try:\n"
        "        call(); who[name] = 'allowed'\n"
        "    except dops.DataOpsClientError as e:\n"
        "        who[name] = e.status\n"
        "print('WHO', json.dumps(who))",
    )
    notebook(jp_root_dir / "nb" / "crash.ipynb", "", "import os\nos._exit(1)")
    jp_asyncio_loop.run_until_complete(
        jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    )
    return jp_serverapp


async def wait_for(api, run_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, run = await api("GET", f"runs/{run_id}")
        assert code == 200, run
        if run["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")


async def test_parameters_are_inferred(jobs, api):
    code, body = await api("GET", "notebooks/parameters?path=nb/hello.ipynb")
    assert code == 200
    assert body["parameters"] == [
        {"name": "alpha", "type": "float", "default": 0.1, "help": "the learning rate"},
        {"name": "name", "type": "str", "default": "world", "help": ""},
        {"name": "n", "type": "int", "default": 2, "help": ""},
    ]


async def test_a_run_succeeds_with_its_parameters(jobs, api, jp_fetch, jp_root_dir):
    code, run = await api(
        "POST",
        "runs",
        {"notebook_path": "nb/hello.ipynb", "parameters": {"alpha": 2, "name": "ada"}},
    )
    assert code == 201, run
    assert run["status"] == "queued" and run["parameters"] == {"alpha": 2.0, "name": "ada"}
    expected_hash = hashlib.sha256((jp_root_dir / "nb" / "hello.ipynb").read_bytes())
    assert run["notebook_hash"] == expected_hash.hexdigest()
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded", done
    assert done["progress"]["cell"] == done["progress"]["of"] == 3  # not papermill's own cell
    assert done["started_at"] and done["finished_at"] and done["error"] is None
    assert set(done["outputs"]) >= {"notebook", "log", "input"}
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "notebook")
    out = nbformat.reads(resp.body.decode(), as_version=4)
    injected = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "alpha = 2.0" in injected[0].source and 'name = "ada"' in injected[0].source
    assert "hello ada 4.0" in json.dumps(out.cells[2].outputs)
    # The kernel ran in the notebook's own directory.
    assert f"cwd {jp_root_dir / 'nb'}" in json.dumps(out.cells[3].outputs)
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
    assert "hello ada 4.0" in resp.body.decode()


async def test_a_failing_cell_fails_the_run_with_its_traceback(jobs, api):
    code, run = await api("POST", "runs", {"notebook_path": "nb/fail.ipynb"})
    done = await wait_for(api, run["id"])
    assert done["status"] == "failed"
    err = done["error"]
    assert err["ename"] == "ZeroDivisionError" and err["reason"] == "cell_error"
    assert err["source"] == "1 / (x - 1)" and "ZeroDivisionError" in err["traceback"]
    assert "notebook" in done["outputs"]  # the partial output notebook is kept


async def test_bad_parameters_are_rejected_naming_the_parameter(jobs, api, jp_root_dir):
    code, body = await api(
        "POST", "runs", {"notebook_path": "nb/hello.ipynb", "parameters": {"alpah": 1}}
    )
    assert code == 400 and body["error"]["details"]["parameter"] == "alpah"
    assert "alpha" in body["error"]["message"]  # lists what the notebook declares
    code, body = await api(
        "POST", "runs", {"notebook_path": "nb/hello.ipynb", "parameters": {"n": "two"}}
    )
    assert code == 400 and "'n' must be int" in body["error"]["message"]
    code, body = await api("POST", "runs", {"notebook_path": "nb/missing.ipynb"})
    assert code == 400 and "not found" in body["error"]["message"]
    code, body = await api("POST", "runs", {"notebook_path": "../outside.ipynb"})
    assert code == 403
    code, body = await api(
        "POST", "runs", {"notebook_path": "nb/hello.ipynb", "kernel_name": "nope"}
    )
    assert code == 400 and "unknown kernel" in body["error"]["message"]
    code, body = await api("GET", "runs")
    assert body["runs"] == []  # nothing was queued by the bad requests
    assert not (jp_root_dir / ".dataops" / "runs").exists() or not any(
        (jp_root_dir / ".dataops" / "runs").iterdir()
    )


async def test_timeout_kills_the_run(jobs, api):
    t0 = time.monotonic()
    code, run = await api("POST", "runs", {"notebook_path": "nb/sleep.ipynb", "timeout_s": 3})
    done = await wait_for(api, run["id"], timeout=60)
    assert done["status"] == "timed_out"
    assert "timeout of 3 s" in done["error"]["message"]
    assert time.monotonic() - t0 < 30


async def test_cancel_running_and_queued(jobs, api):
    code, run = await api("POST", "runs", {"notebook_path": "nb/sleep.ipynb"})
    for _ in range(300):
        code, cur = await api("GET", f"runs/{run['id']}")
        if cur["progress"].get("cell", 0) >= 2:
            break
        await asyncio.sleep(0.1)
    code, cancelled = await api("POST", f"runs/{run['id']}/cancel")
    assert code == 200 and cancelled["status"] == "cancelled", cancelled
    code, body = await api("POST", f"runs/{run['id']}/cancel")
    assert code == 409  # already over


async def test_retries_follow_the_policy(jobs, api):
    code, job = await api(
        "POST",
        "jobs",
        {"name": "flaky", "notebook_path": "nb/fail.ipynb", "max_retries": 1, "retry_backoff_s": 0},
    )
    assert code == 201, job
    code, run = await api("POST", "runs", {"job": "flaky"})
    first = await wait_for(api, run["id"])
    assert first["status"] == "failed" and first["job_name"] == "flaky"
    for _ in range(100):
        code, body = await api("GET", "runs?job=flaky")
        if len(body["runs"]) == 2 and body["runs"][0]["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.2)
    retry = body["runs"][0]
    assert (retry["trigger"], retry["retry_of"], retry["attempt"]) == ("retry", run["id"], 2)
    assert retry["status"] == "failed"
    await asyncio.sleep(0.5)
    code, body = await api("GET", "runs?job=flaky")
    assert len(body["runs"]) == 2  # max_retries=1: no third attempt


async def test_idempotent_submission(jobs, api):
    req = {"notebook_path": "nb/hello.ipynb", "idempotency_key": "nightly-2026-11-22"}
    code1, a = await api("POST", "runs", req)
    code2, b = await api("POST", "runs", req)
    assert (code1, code2) == (201, 200) and a["id"] == b["id"]
    await wait_for(api, a["id"])


async def test_runs_act_as_their_owner_with_a_run_scoped_token(jobs, api, jp_fetch):
    code, run = await api("POST", "runs", {"notebook_path": "nb/whoami.ipynb"})
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded", done
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
    who = json.loads(resp.body.decode().split("WHO ", 1)[1].splitlines()[0])
    token = who.pop("token")
    # It acts as its owner, and may do only what a run needs: no new runs, no jobs, no
    # reading the owner's other runs.
    assert who == {"user": "ada", "run": run["id"], "submit": 403, "jobs": 403, "runs": 403}
    platform = jobs.web_app.settings["dataops"]
    assert platform.tokens.verify(token)["scope"] == f"run:{run['id']}"
    # Once the run has ended its token is refused, and cannot be renewed.
    auth = {"Authorization": f"DataOps {token}"}
    code, body = await api("GET", "status", headers=auth)
    assert code == 401 and body["error"]["details"]["reason"] == "gone"
    code, body = await api("POST", "token/renew", {}, headers=auth)
    assert code == 401


async def test_a_crashing_kernel_fails_the_run_with_a_reason(jobs, api):
    code, run = await api("POST", "runs", {"notebook_path": "nb/crash.ipynb"})
    done = await wait_for(api, run["id"])
    assert done["status"] == "failed"
    assert done["error"]["reason"] in ("kernel_died", "runner_died")
    assert "died" in done["error"]["message"] or "ended unexpectedly" in done["error"]["message"]


async def test_rerun_with_changed_parameters_and_immutable_inputs(jobs, api, jp_root_dir, jp_fetch):
    code, run = await api(
        "POST", "runs", {"notebook_path": "nb/hello.ipynb", "parameters": {"name": "v1"}}
    )
    # Editing the notebook after submission changes nothing for the queued run.
    notebook(
        jp_root_dir / "nb" / "hello.ipynb",
        "alpha = 0.1\nname = 'world'\nn: int = 2",
        "print('EDITED', name)",
    )
    first = await wait_for(api, run["id"])
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
    assert "hello v1" in resp.body.decode() and "EDITED" not in resp.body.decode()
    code, again = await api("POST", f"runs/{run['id']}/rerun", {"parameters": {"name": "v2"}})
    assert code == 201 and again["parameters"]["name"] == "v2"
    assert again["notebook_hash"] != first["notebook_hash"]  # the re-run reads today's notebook
    done = await wait_for(api, again["id"])
    resp = await jp_fetch("dataops", "api", "v1", "runs", again["id"], "outputs", "log")
    assert "EDITED v2" in resp.body.decode() and done["status"] == "succeeded"


async def test_log_streams_as_server_sent_events(jobs, api, jp_fetch):
    code, run = await api("POST", "runs", {"notebook_path": "nb/hello.ipynb"})
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "log", request_timeout=90)
    text = resp.body.decode()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert "data: hello world 0.2" in text and text.rstrip().endswith("data: succeeded")


async def test_job_definitions_validate_and_crud(jobs, api):
    bad = [
        ({"name": "j", "notebook_path": "nb/hello.ipynb", "schedule": "every day"}, "invalid cron"),
        ({"name": "j", "notebook_path": "nb/hello.ipynb", "timezone": "Mars/Base"}, "time zone"),
        (
            {"name": "j", "notebook_path": "nb/hello.ipynb", "parameters": {"zz": 1}},
            "unknown parameter",
        ),
        ({"name": "j", "notebook_path": "nb/hello.ipynb", "max_retries": -1}, "max_retries"),
    ]
    for req, msg in bad:
        code, body = await api("POST", "jobs", req)
        assert code == 400 and msg in body["error"]["message"], body
        if "schedule" in req or "timezone" in req:  # the form can mark the field
            assert body["error"]["details"]["field"] in req, body
    code, job = await api(
        "POST",
        "jobs",
        {
            "name": "daily",
            "notebook_path": "nb/hello.ipynb",
            "schedule": "0 6 * * *",
            "timezone": "Europe/Paris",
            "parameters": {"name": "cron"},
        },
    )
    assert code == 201 and job["owner"] == "ada" and job["kernel_name"] == "python3"
    assert (await api("POST", "jobs", {"name": "daily", "notebook_path": "nb/hello.ipynb"}))[
        0
    ] == 409
    code, job = await api("PATCH", "jobs/daily", {"parameters": {"n": 5}, "paused": True})
    assert code == 200 and job["parameters"] == {"n": 5} and job["paused"] is True
    code, run = await api("POST", "runs", {"job": "daily", "parameters": {"alpha": 1}})
    assert run["parameters"] == {"n": 5, "alpha": 1.0}
    await wait_for(api, run["id"])
    code, _ = await api("DELETE", "jobs/daily")
    assert code == 204
    code, body = await api("GET", f"runs/{run['id']}")
    assert body["job_id"] is None  # history stays


async def test_restart_marks_lost_runs_and_retries_them(jobs, api):
    platform = jobs.web_app.settings["dataops"]
    executor = jobs.web_app.settings["dataops_executor"]
    code, job = await api(
        "POST",
        "jobs",
        {
            "name": "resilient",
            "max_retries": 1,
            "retry_backoff_s": 0,
            "notebook_path": "nb/hello.ipynb",
        },
    )
    code, run = await api("POST", "runs", {"job": "resilient"})
    await wait_for(api, run["id"])
    from jupyter_dataops.store import tables as t

    with platform.store.session() as s:  # as if the server died while it ran
        s.get(t.Run, run["id"]).status = "running"
    retries = await platform.store.run(platform.jobs.recover)
    executor.wake()
    code, lost = await api("GET", f"runs/{run['id']}")
    assert lost["status"] == "failed" and lost["error"]["reason"] == "lost"
    assert len(retries) == 1
    done = await wait_for(api, retries[0])
    assert done["status"] == "succeeded" and done["retry_of"] == run["id"]


async def test_kernel_api_runs_a_notebook_and_waits(jobs, api):
    from tests.server.test_kernel import kernel_result

    code = (
        "import json, jupyter_dataops as dops\n"
        "run = dops.run_notebook('nb/hello.ipynb', {'name': 'from-kernel'})\n"
        "print('RUN ' + json.dumps({k: run[k] for k in ('status', 'parameters', 'owner', "
        "'output_url')}))\n"
    )
    run, _ = await kernel_result(jobs, code, marker="RUN")
    assert run["status"] == "succeeded" and run["owner"] == "ada"
    assert run["parameters"] == {"name": "from-kernel"}
    assert run["output_url"].endswith("/outputs/notebook")


def _with_kernelspec(path: Path, name: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": name, "language": "python", "display_name": name}
    nbformat.write(nb, path)


async def test_kernel_names_resolve_as_jupyter_client_does(jobs, api, jp_root_dir, jp_fetch):
    # papermill runs these: `python` is jupyter_client's native kernel, and kernel names are
    # matched whatever their case. So do runs, job definitions and the parameters endpoint.
    for name, kernelspec in (("python", "python"), ("upper", "Python3")):
        nb = notebook(jp_root_dir / "nb" / f"{name}.ipynb", "x = 1", "print('ran', x)")
        _with_kernelspec(nb, kernelspec)
        code, params = await api("GET", f"notebooks/parameters?path=nb/{name}.ipynb")
        assert code == 200, params
        assert (params["notebook_kernel"], params["kernel_name"]) == (kernelspec, "python3")
        code, run = await api("POST", "runs", {"notebook_path": f"nb/{name}.ipynb"})
        assert code == 201, run
        assert run["kernel_name"] == "python3"
        done = await wait_for(api, run["id"])
        assert done["status"] == "succeeded", done
    code, job = await api("POST", "jobs", {"name": "py", "notebook_path": "nb/python.ipynb"})
    assert code == 201 and job["kernel_name"] == "python3", job
    code, job = await api("PATCH", "jobs/py", {"kernel_name": "PYTHON3"})
    assert code == 200 and job["kernel_name"] == "python3", job


async def test_a_notebook_whose_kernel_is_missing_runs_in_the_kernel_asked_for(
    jobs, api, jp_root_dir, jp_fetch
):
    nb = notebook(jp_root_dir / "nb" / "julia.ipynb", "x = 1", "print('ran', x)")
    _with_kernelspec(nb, "julia-1.10")
    code, params = await api("GET", "notebooks/parameters?path=nb/julia.ipynb")
    assert code == 200 and params["notebook_kernel"] == "julia-1.10"
    assert params["kernel_name"] is None  # the dialog then asks for one
    code, body = await api("POST", "runs", {"notebook_path": "nb/julia.ipynb"})
    assert code == 400, body
    err = body["error"]
    assert "'julia-1.10' is not installed" in err["message"] and "python3" in err["message"]
    assert err["details"]["field"] == "kernel_name" and "python3" in err["details"]["installed"]
    code, body = await api("POST", "runs", {"notebook_path": "nb/julia.ipynb", "kernel_name": "ir"})
    assert code == 400 and "unknown kernel 'ir'" in body["error"]["message"], body
    code, run = await api(
        "POST", "runs", {"notebook_path": "nb/julia.ipynb", "kernel_name": "python"}
    )
    assert code == 201 and run["kernel_name"] == "python3", run
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded", done
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
    assert "ran 1" in resp.body.decode()


async def test_the_failing_cell_is_named_in_the_submitted_notebooks_numbering(
    jobs, api, jp_root_dir
):
    # Two cells; papermill runs three (its injected-parameters cell after the first).
    nb = notebook(jp_root_dir / "nb" / "two.ipynb", "x = 1", "1 / (x - 1)")
    failing = nbformat.read(nb, as_version=4).cells[1]
    code, run = await api("POST", "runs", {"notebook_path": "nb/two.ipynb", "parameters": {"x": 1}})
    assert code == 201, run
    done = await wait_for(api, run["id"])
    err = done["error"]
    assert (err["reason"], err["cell_index"]) == ("cell_error", 1)  # papermill's is 2
    assert err["cell_id"] == failing.id
    assert (
        err["source"] == "1 / (x - 1)" and err["message"] == "ZeroDivisionError: division by zero"
    )
    # "cell i of n" counts the notebook's own code cells too.
    assert (done["progress"]["cell"], done["progress"]["of"], done["progress"]["index"]) == (
        2,
        2,
        1,
    )


async def test_old_papermill_markers_do_not_shift_the_failing_cell(jobs, api, jp_root_dir):
    # The output of an earlier failed papermill run, submitted again: papermill drops its error
    # markers and replaces its injected cell, so its indices are not the notebook's. No cell
    # ids either (nbformat 4.4): none is reported.
    def md(text: str, *tags: str) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_markdown_cell(text)
        cell.metadata["tags"] = list(tags)
        return cell

    def code(text: str, *tags: str) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["tags"] = list(tags)
        return cell

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.cells = [
        md('<span style="color:red">An Exception was encountered at "In [3]".</span>',
           "papermill-error-cell-tag"),
        md("Counts differ from indices here."),
        code("x = 1", "parameters"),
        code("# Parameters\nx = 5\n", "injected-parameters"),
        md('<span id="papermill-error-cell">Execution stopped here</span>',
           "papermill-error-cell-tag"),
        code("y = x + 1"),
        md("Another markdown cell"),
        code("assert y == 0, f'y is {y}'"),
        code("print('never')"),
    ]  # fmt: skip
    nb.nbformat_minor = 4
    for cell in nb.cells:
        cell.pop("id", None)
    (jp_root_dir / "nb" / "again.ipynb").write_text(nbformat.writes(nb, version=4))
    code_, run = await api(
        "POST", "runs", {"notebook_path": "nb/again.ipynb", "parameters": {"x": 2}}
    )
    assert code_ == 201, run
    done = await wait_for(api, run["id"])
    err = done["error"]
    assert err["message"] == "AssertionError: y is 3", err
    assert err["cell_index"] == 7, err  # papermill's is 5
    assert err["cell_id"] is None  # papermill gave its cells ids; the notebook has none
    assert done["progress"]["of"] == 4  # x = 1, y = x + 1, the assert, the print


async def test_a_failure_without_a_message_shows_the_cells_last_output(jobs, api, jp_root_dir):
    cases = {
        # A failing line magic: IPython prints the reason, papermill has no error message.
        "magic": ("%undefined-line-magic", "cell 2 failed, with no error message; its last "
                  "output: UsageError: Line magic function `%undefined-line-magic` not found."),
        "bare": ("print('loading')\nprint('half way')\nraise RuntimeError()",
                 "RuntimeError in cell 2, with no error message; its last output: half way"),
        "silent": ("raise RuntimeError()", "RuntimeError in cell 2, with no error message and "
                   "no output: raise RuntimeError()"),
    }  # fmt: skip
    for name, (source, _) in cases.items():
        notebook(jp_root_dir / "nb" / f"{name}.ipynb", "x = 1", source, "print('never')")
    for name, (source, message) in cases.items():
        code, run = await api("POST", "runs", {"notebook_path": f"nb/{name}.ipynb"})
        assert code == 201, run
        err = (await wait_for(api, run["id"]))["error"]
        assert err["message"] == message, err
        assert (err["cell_index"], err["source"]) == (1, source)
        if name == "magic":
            assert "UsageError: Line magic function" in err["output"]
        elif name == "bare":
            assert err["output"] == "loading\nhalf way"
        else:
            assert err["output"] is None


async def test_a_kernel_that_dies_names_the_cell_it_died_in(jobs, api):
    code, run = await api("POST", "runs", {"notebook_path": "nb/crash.ipynb", "parameters": {}})
    done = await wait_for(api, run["id"])
    err = done["error"]
    assert err["reason"] == "kernel_died" and err["cell_index"] == 1, err
    assert err["message"] == "the kernel died in cell 2" and "os._exit(1)" in err["source"]


@pytest.mark.parametrize("field", ["paused", "timezone", "notebook_path", "description", "name"])
async def test_a_null_for_a_field_that_cannot_be_empty_is_a_400_naming_it(jobs, api, field):
    code, job = await api("POST", "jobs", {"name": "nightly", "notebook_path": "nb/hello.ipynb"})
    assert code == 201
    code, body = await api("PATCH", "jobs/nightly", {field: None})
    assert code == 400, body
    assert body["error"]["details"]["errors"][0]["field"] == field
    assert field in body["error"]["message"]
    code, after = await api("GET", "jobs/nightly")
    assert after == job  # nothing was written
    # Nulls that mean "none" still clear: no schedule, no timeout, no notifications.
    code, body = await api("PATCH", "jobs/nightly", {"schedule": None, "timeout_s": None})
    assert code == 200 and body["schedule"] is None


def _content(*cells: str) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    p = nbformat.v4.new_code_cell("who = 'nobody'")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, *(nbformat.v4.new_code_cell(c) for c in cells)]
    return json.loads(nbformat.writes(nb))


async def test_notebooks_sent_in_the_request_run_and_jobs_keep_their_copy(jobs, api, jp_fetch):
    # What a user's server sends the team's service: the notebook itself, not a path.
    nb = _content("print('SENT', who)")
    code, run = await api(
        "POST", "runs", {"notebook_path": "home/ann/x.ipynb", "notebook": nb,
                         "parameters": {"who": "ann"}},
    )  # fmt: skip
    assert code == 201, run
    assert (await wait_for(api, run["id"]))["status"] == "succeeded"
    log = (await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")).body
    assert b"SENT ann" in log
    code, again = await api("POST", f"runs/{run['id']}/rerun", {"parameters": {"who": "bo"}})
    assert code == 201, again
    assert (await wait_for(api, again["id"]))["status"] == "succeeded"
    log = (await jp_fetch("dataops", "api", "v1", "runs", again["id"], "outputs", "log")).body
    assert b"SENT bo" in log

    code, job = await api("POST", "jobs", {"name": "kept", "notebook_path": "nb/hello.ipynb",
                                           "notebook": nb})  # fmt: skip
    assert code == 201, job
    code, patched = await api("PATCH", "jobs/kept", {"notebook": _content("print('V2', who)")})
    assert code == 200
    code, run = await api("POST", "runs", {"job": "kept"})
    assert (await wait_for(api, run["id"]))["status"] == "succeeded"
    log = (await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")).body
    assert b"V2 nobody" in log and b"hello world" not in log  # its copy, not the file

    bad = {**nb, "cells": [{"cell_type": "code", "source": 5}]}
    code, body = await api("POST", "runs", {"notebook_path": "x.ipynb", "notebook": bad})
    assert code == 400 and body["error"]["details"]["field"] == "notebook"
    code, body = await api("POST", "runs", {"job": "kept", "notebook": nb})
    assert code == 400
