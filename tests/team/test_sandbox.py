"""The service's job kernels run as their owners' OS users and can read nothing of the service.

A real `jupyter dataops serve --user <service user>` (started as root, standalone tokens), real
OS users made for the test, real forked kernels. Governance holds only if a job kernel cannot
read around it: the keys, the store, the raw data, the service's environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest

from .conftest import free_port_block

pytestmark = [pytest.mark.team, pytest.mark.kernel]

PROBE = """
import json, os, pwd
import jupyter_dataops as dops
res = {"user": pwd.getpwuid(os.getuid()).pw_name}
res["rows"] = len(dops.pull("flights"))
def probe(path):
    try:
        open(path, "rb").read(1)
        return "READ"
    except PermissionError:
        return "denied"
    except FileNotFoundError:
        return "missing"
for name, path in [("key", ws + "/.dataops/keys/signing"), ("store", ws + "/.dataops/dataops.db"),
                   ("data", ws + "/data/flights.csv"), ("users", ws + "/users.json"),
                   ("service_env", f"/proc/{service_pid}/environ")]:
    res[name] = probe(path)
res["secret_in_env"] = any("s3cr3t" in v for v in os.environ.values())
res["in_workspace"] = os.getcwd().startswith(ws)
print("SANDBOX", json.dumps(res))
"""


def _notebook(path: Path, params: str, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)


class Service:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def call(self, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}dataops/api/v1/{path}", data=data, method=method)
        req.add_header("Authorization", f"token {token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                code = r.status
        except urllib.error.HTTPError as e:
            raw, code = e.read(), e.code
        try:
            return code, json.loads(raw)
        except ValueError:
            return code, raw.decode(errors="replace")

    def wait(self, token: str, run_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, run = self.call(token, "GET", f"runs/{run_id}")
            assert code == 200, run
            if run["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
                return run
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} still {run['status']}; log: {self.log.read_text()}")


@pytest.fixture
def service(team_venv: Path, os_users, tmp_path: Path):  # type: ignore[no-untyped-def]
    svc, alice = os_users("svc"), os_users("alice")
    ws = Path("/tmp") / f"dataops-sandbox-{os_users.tag}"
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "flights.csv").write_text("origin,dep_delay\nJFK,5\nLGA,70\nEWR,1\n")
    (ws / "dataops.yaml").write_text(
        "datasets:\n  flights:\n    owner: root\n"
        "    source: {type: csv, path: data/flights.csv}\n"
        f"grants:\n  - users: [{alice}]\n    datasets: [flights]\n"
        "    row_filter: \"origin = 'JFK'\"\n"
    )
    token = "alice-" + os_users.tag
    digest = hashlib.sha256(token.encode()).hexdigest()
    (ws / "users.json").write_text(json.dumps({alice: {"token_sha256": digest, "groups": []}}))
    _notebook(ws / "probe.ipynb", "ws = ''\nservice_pid = 0", PROBE)
    _notebook(ws / "sleep.ipynb", "seconds = 120", "import time\ntime.sleep(seconds)")
    _notebook(ws / "tracked.ipynb", "x = 1",
              "import jupyter_dataops as dops, mlflow\n"
              "for i in range(50):\n    dops.log_metric('loss', 1 / (i + 1), step=i)\n"
              "mlflow.log_metric('plain', 2.5)")  # fmt: skip
    pw = pwd.getpwnam(svc)
    for p in [ws, *ws.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(p, 0o700 if p.is_dir() else 0o600)
    port = free_port_block()
    log = tmp_path / "service.log"
    env = {**os.environ, "DATAOPS_PROBE": "s3cr3t", "PATH": f"{team_venv}/bin:/usr/bin:/bin"}
    proc = subprocess.Popen(
        [team_venv / "bin" / "jupyter", "dataops", "serve", "--user", svc, "--users-file",
         ws / "users.json", "--port", str(port), "--root", ws, "--DataOps.warm_kernels=1"],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd="/",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    s = Service(url, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if s.call(token, "GET", "status")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        raise AssertionError(log.read_text())
    s.token, s.alice, s.svc, s.ws = token, alice, svc, ws  # type: ignore[attr-defined]
    yield s
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    subprocess.run(["rm", "-rf", str(ws)], check=False)


def _service_pid(svc_user: str) -> int:
    for p in psutil.process_iter(["username", "cmdline"]):
        if p.info["username"] == svc_user and "serve" in (p.info["cmdline"] or []):
            return int(p.pid)
    raise AssertionError("no service process")


def test_job_kernels_run_as_their_owner_and_read_nothing_of_the_service(service):
    assert _service_pid(service.svc)  # the service itself dropped root for its own user
    assert psutil.Process(_service_pid(service.svc)).uids().real != 0
    params = {"ws": str(service.ws), "service_pid": _service_pid(service.svc)}
    code, run = service.call(
        service.token, "POST", "runs", {"notebook_path": "probe.ipynb", "parameters": params}
    )
    assert code == 201, run
    done = service.wait(service.token, run["id"])
    assert done["status"] == "succeeded", (done, service.log.read_text()[-3000:])
    code, log = service.call(service.token, "GET", f"runs/{run['id']}/outputs/log")
    assert code == 200
    result = json.loads(log.split("SANDBOX ", 1)[1].splitlines()[0])
    assert result == {
        "user": service.alice,  # the run's owner's OS user, not the service's
        "rows": 1,  # governed: alice's grant, through the run's token
        "key": "denied",
        "store": "denied",
        "data": "denied",
        "users": "denied",
        "service_env": "denied",
        "secret_in_env": False,
        "in_workspace": False,
    }
    # Its executed notebook came back to the service, which serves it.
    code, nb = service.call(service.token, "GET", f"runs/{run['id']}/outputs/notebook")
    assert code == 200 and "SANDBOX" in json.dumps(nb)


def test_a_sandboxed_run_is_cancelled_and_leaves_no_process(service):
    code, run = service.call(service.token, "POST", "runs", {"notebook_path": "sleep.ipynb"})
    assert code == 201
    deadline = time.monotonic() + 60
    while service.call(service.token, "GET", f"runs/{run['id']}")[1]["progress"].get("cell") != 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    mine = lambda: [p for p in psutil.process_iter(["username"])  # noqa: E731
                    if p.info["username"] == service.alice]  # fmt: skip
    during = len(mine())  # fork server, the run's runner and kernel, a warm runner and kernel
    code, cancelled = service.call(service.token, "POST", f"runs/{run['id']}/cancel")
    assert code == 200 and cancelled["status"] == "cancelled", cancelled
    deadline = time.monotonic() + 15
    while len(mine()) > during - 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(mine()) <= during - 2, [(p.pid, p.cmdline()) for p in mine()]


def test_a_sandboxed_job_logs_to_its_mlflow_run(service):
    # The kernel may write nothing of the service's: its spool comes back with the run and
    # plain MLflow calls go through the service's endpoint with its run token.
    code, run = service.call(service.token, "POST", "runs", {"notebook_path": "tracked.ipynb"})
    assert code == 201, run
    done = service.wait(service.token, run["id"])
    assert done["status"] == "succeeded", (done, service.log.read_text()[-3000:])
    code, exps = service.call(service.token, "GET", "experiments")
    assert code == 200, exps
    exp = next(e for e in exps["experiments"] if e["name"].startswith("tracked"))
    # The MLflow run ends just after the run's record (its end is not delayed by MLflow's).
    deadline = time.monotonic() + 30
    while True:
        code, found = service.call(service.token, "GET", f"experiments/{exp['id']}/runs")
        mine = [r for r in found["runs"] if r["run_id"] == run["id"]]
        assert len(mine) == 1, found
        if mine[0]["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert mine[0]["status"] == "FINISHED"
    assert mine[0]["metrics"]["plain"] == 2.5 and mine[0]["metrics"]["loss"] == 1 / 50
    mid = mine[0]["mlflow_run_id"]
    code, hist = service.call(service.token, "GET", f"tracking/runs/{mid}/metrics/loss")
    assert code == 200 and len(hist["points"]) == 50
