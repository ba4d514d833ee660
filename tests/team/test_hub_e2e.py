"""Team mode end to end: a real JupyterHub on 127.0.0.1, real single-user servers and kernels as
real OS users, the DataOps service as its own user on the real PostgreSQL, a real Dask worker.

The stack is jupyter_dataops/team/stack.py and jupyter_dataops/team/jupyterhub_config.py: what
`make team` runs, with users made for the test.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from jupyter_dataops.team import stack
from tests import postgres

from .conftest import TEAM_TEST_DIR, free_port_block

pytestmark = [pytest.mark.team, pytest.mark.postgres, pytest.mark.kernel]


def http(method: str, url: str, token: str, body: Any = None, timeout: float = 60) -> Any:
    """(status, JSON) of one request with a Hub or service token; never raises on 4xx."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"token {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, code = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, code = e.read(), e.code
    try:
        return code, json.loads(raw) if raw else None
    except ValueError:
        return code, raw.decode(errors="replace")


class Hub:
    def __init__(self, team: stack.Team, running: stack.Running) -> None:
        self.team, self.running = team, running
        self.url = team.url
        self.driver = team.driver_token
        roles = ("alice", "erin", "bob", "carol", "dave")
        self.names = {role: name for role, name in zip(roles, team.users, strict=True)}
        self._tokens: dict[tuple[str, str], str] = {}

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return http(method, f"{self.url}/hub/api/{path}", self.driver, body)

    def token(self, role: str, scope: str) -> str:
        """A Hub API token of the user, with one scope (as their server or kernel holds)."""
        key = (role, scope)
        if key not in self._tokens:
            name = self.names[role]
            code, body = self.api("POST", f"users/{name}/tokens",
                                  {"scopes": [scope], "expires_in": 3600})  # fmt: skip
            assert code in (200, 201), body
            self._tokens[key] = body["token"]
        return self._tokens[key]

    def service(self, role: str, method: str, path: str, body: Any = None) -> Any:
        token = self.token(role, "access:services!service=dataops")
        return http(method, f"{self.url}/services/dataops/dataops/api/v1/{path}", token, body)

    def server(self, role: str, method: str, path: str, body: Any = None) -> Any:
        name = self.names[role]
        token = self.token(role, f"access:servers!server={name}/")
        return http(method, f"{self.url}/user/{name}/{path}", token, body)

    def start_server(self, role: str) -> None:
        name = self.names[role]
        code, body = self.api("POST", f"users/{name}/server")
        assert code in (201, 202, 400), body  # 400: already running
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            code, user = self.api("GET", f"users/{name}")
            server = (user.get("servers") or {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        raise AssertionError(
            f"{name}'s server did not start: {self.running.log.read_text()[-3000:]}"
        )

    def stop_server(self, role: str) -> None:
        name = self.names[role]
        self.api("DELETE", f"users/{name}/server")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            code, user = self.api("GET", f"users/{name}")
            if not user.get("servers"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{name}'s server did not stop")

    def execute(self, role: str, code: str, marker: str = "RESULT") -> Any:
        """Run ``code`` in a new kernel of the user's server; the JSON it printed after
        ``marker``."""
        status, kernel = self.server(role, "POST", "api/kernels", {"name": "python3"})
        assert status == 201, kernel
        name = self.names[role]
        token = self.token(role, f"access:servers!server={name}/")
        ws_url = f"ws://127.0.0.1:{self.team.port}/user/{name}/api/kernels/{kernel['id']}/channels"
        try:
            text = asyncio.run(_execute(ws_url, token, code))
        finally:
            self.server(role, "DELETE", f"api/kernels/{kernel['id']}")
        assert f"{marker} " in text, text
        return json.loads(text.split(f"{marker} ", 1)[1].splitlines()[0])

    def save_notebook(self, role: str, path: str, params: str, *cells: str) -> None:
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
        p = nbformat.v4.new_code_cell(params)
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, *(nbformat.v4.new_code_cell(c) for c in cells)]
        content = json.loads(nbformat.writes(nb))
        model = {"type": "notebook", "format": "json", "content": content}
        code, body = self.server(role, "PUT", f"api/contents/{path}", model)
        assert code in (200, 201), body

    def browser(self, role: str) -> Any:
        """A browser's session of the user, logged in to the Hub with the login form (and
        not sent on to their server, which the Hub would start)."""
        import requests

        s = requests.Session()
        form = s.get(f"{self.url}/hub/login", timeout=30)
        found = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
        xsrf = found.group(1) if found else s.cookies.get("_xsrf", "")
        r = s.post(
            f"{self.url}/hub/login?next=/hub/home",
            data={"username": self.names[role], "password": self.team.password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 302 and r.headers["Location"].endswith("/hub/home"), r.text
        return s

    def wait_run(self, role: str, run_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, run = self.service(role, "GET", f"runs/{run_id}")
            assert code == 200, run
            if run["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
                return run
            time.sleep(0.3)
        raise AssertionError(f"run {run_id} is still {run['status']}")


async def _execute(url: str, token: str, code: str) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    msg_id = uuid.uuid4().hex
    conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))  # fmt: skip
    out: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(conn.read_message(), 120)
        if raw is None:
            break
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "stream":
            out.append(msg["content"]["text"])
        elif kind == "error":
            out.append("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    conn.close()
    return "".join(out)


@pytest.fixture(scope="module")
def hub(team_venv: Path, pg_admin_url: str) -> Iterator[Hub]:
    tag = secrets.token_hex(2)
    users = {f"dt{tag}-alice": "analysts", f"dt{tag}-erin": "analysts",
             f"dt{tag}-bob": "ops", f"dt{tag}-carol": "", f"dt{tag}-dave": ""}  # fmt: skip
    db = postgres.create_database(pg_admin_url)
    team = stack.Team(
        TEAM_TEST_DIR / f"run-{tag}", port=free_port_block(), users=users,
        password=secrets.token_hex(8), service_user=f"dt{tag}-svc", jobs_user=f"dt{tag}-jobs",
        db_url=db, driver_token=secrets.token_hex(16), admin=f"dt{tag}-carol",
        venv_dir=team_venv, node_dir=TEAM_TEST_DIR / "node",
    )  # fmt: skip
    running = None
    try:
        stack.prepare(team)
        running = stack.start(team)
        yield Hub(team, running)
    finally:
        if running is not None:
            running.stop()
            # Kept for whoever reads a failure: the Hub's, the proxy's and the service's log.
            subprocess.run(["cp", str(running.log), "/tmp/dataops-team-e2e.log"], check=False)
        for name in [*users, team.service_user, team.jobs_user]:
            stack.remove_user(name)
        subprocess.run(["rm", "-rf", str(team.dir)], check=False)
        postgres.drop_database(pg_admin_url, db)


def _service_pid(hub: Hub) -> int:
    for p in psutil.process_iter(["username", "cmdline"]):
        if p.info["username"] == hub.team.service_user and "serve" in (p.info["cmdline"] or []):
            return int(p.pid)
    raise AssertionError("the service is not running as its own user")


PROBES = """
import json, os
import jupyter_dataops as dops
res = {}
try:
    df = dops.pull("flights", columns=["origin", "tailnum"])
    res["origins"] = sorted(df["origin"].unique().tolist())
    res["masked"] = bool(df["tailnum"].dropna().str.startswith("*").all())
except dops.DataOpsClientError as e:
    res["pull"] = [e.status, e.args[0]]
def probe(path):
    try:
        open(path, "rb").read(1)
        return "READ"
    except PermissionError:
        return "denied"
    except FileNotFoundError:
        return "missing"
for name, path in PATHS.items():
    res[name] = probe(path)
res["user"] = __import__("pwd").getpwuid(os.getuid()).pw_name
print("RESULT", json.dumps(res))
"""


def test_two_users_one_hub_governed_scheduled_and_shared(hub: Hub) -> None:
    ws = hub.team.workspace
    paths = {"parquet": f"{ws}/data/nycflights13/flights.parquet",
             "key": f"{ws}/.dataops/keys/signing", "store_dir": f"{ws}/.dataops/dataops.db",
             "service_env": f"/proc/{_service_pid(hub)}/environ"}  # fmt: skip
    hub.start_server("alice")
    hub.start_server("bob")

    # Bob's kernel: the full view; he runs a job, whose files stay the service's.
    code = f"PATHS = {paths!r}\n" + PROBES
    bob = hub.execute("bob", code)
    assert "origins" in bob, bob
    assert "EWR" in bob["origins"] and bob["masked"] is False, bob
    hub.save_notebook("bob", "report.ipynb", "n = 1", "print('REPORT', n)")
    code, run = hub.server("bob", "POST", "dataops/api/v1/runs", {"notebook_path": "report.ipynb"})
    assert code == 201, run
    bob_run = hub.wait_run("bob", run["id"])
    assert bob_run["status"] == "succeeded", bob_run

    # Alice's kernel: filtered and masked, and nothing of the service's files is hers to read.
    bob_files = ws / ".dataops" / "runs" / run["id"] / "output.ipynb"
    alice = hub.execute("alice", f"PATHS = {dict(paths, bob_run=str(bob_files))!r}\n" + PROBES)
    assert alice["origins"] == ["JFK", "LGA"] and alice["masked"] is True, alice
    assert alice["user"] == hub.names["alice"]
    for name in ("parquet", "key", "store_dir", "service_env", "bob_run"):
        assert alice[name] == "denied", (name, alice)

    # The token in alice's kernel (her server's) is alice: not bob, not ops.
    taken = hub.execute(
        "alice", "import os, json\nprint('RESULT', json.dumps(os.environ['JUPYTERHUB_API_TOKEN']))"
    )
    svc = f"{hub.url}/services/dataops/dataops/api/v1/"
    assert http("GET", svc + f"runs/{run['id']}", taken)[0] == 404
    steal = {"name": "steal", "notebook_path": "x.ipynb", "owner_group": "ops", "notebook": _nb()}
    code, body = http("POST", svc + "jobs", taken, steal)
    assert code == 403, body

    # On the Dask worker too, a job kernel holds nothing of the service's.
    probe = f"PATHS = {paths!r}\n" + PROBES
    dask_job = {"name": "on-dask", "notebook_path": "probe.ipynb", "executor": "dask",
                "notebook": _nb(probe)}  # fmt: skip
    assert hub.service("alice", "POST", "jobs", dask_job)[0] == 201
    code, run = hub.service("alice", "POST", "runs", {"job": "on-dask"})
    assert code == 201, run
    done = hub.wait_run("alice", run["id"])
    assert done["status"] == "succeeded" and done["progress"].get("worker"), done
    code, log = hub.service("alice", "GET", f"runs/{run['id']}/outputs/log")
    on_dask = json.loads(str(log).split("RESULT ", 1)[1].splitlines()[0])
    assert on_dask["origins"] == ["JFK", "LGA"] and on_dask["user"] == hub.team.jobs_user
    for name in ("parquet", "key", "store_dir", "service_env"):
        assert on_dask[name] == "denied", (name, on_dask)

    # A Hub user in no group: a 403 that says why.
    code, body = hub.service("carol", "POST", "datasets/flights/pull", {})
    assert code == 403 and "grant" in body["error"]["message"], body

    # Alice schedules a job and logs out: it fires on the service while nobody is logged in.
    hub.save_notebook(
        "alice",
        "nightly.ipynb",
        "x = 1",
        "import jupyter_dataops as dops\nprint('ROWS', len(dops.pull('flights')))",
    )
    code, job = hub.server("alice", "POST", "dataops/api/v1/jobs",
                           {"name": "nightly", "notebook_path": "nightly.ipynb",
                            "schedule": "* * * * *"})  # fmt: skip
    assert code == 201, job
    hub.stop_server("alice")
    deadline = time.monotonic() + 150
    fired = []
    while not fired and time.monotonic() < deadline:
        code, body = hub.service("alice", "GET", "runs?job=nightly")
        fired = [r for r in body["runs"] if r["trigger"] == "schedule"]
        time.sleep(1)
    assert fired, "the schedule did not fire while alice was logged out"
    scheduled = hub.wait_run("alice", fired[0]["id"])
    assert scheduled["status"] == "succeeded", scheduled
    hub.start_server("alice")
    code, body = hub.server("alice", "GET", "dataops/api/v1/runs?job=nightly")
    assert code == 200 and any(r["id"] == scheduled["id"] for r in body["runs"])
    hub.server("alice", "PATCH", "dataops/api/v1/jobs/nightly", {"paused": True})

    # A team's job: alice makes it, erin changes and runs it, it reads with the team's grant.
    hub.save_notebook(
        "alice",
        "team.ipynb",
        "x = 1",
        "import jupyter_dataops as dops\n"
        "print('ORIGINS', sorted(dops.pull('flights')['origin'].unique()))",
    )
    code, job = hub.server("alice", "POST", "dataops/api/v1/jobs",
                           {"name": "team-report", "notebook_path": "team.ipynb",
                            "owner_group": "analysts"})  # fmt: skip
    assert code == 201 and job["owner"] == "group:analysts", job
    assert hub.service("erin", "PATCH", "jobs/team-report", {"description": "erin's"})[0] == 200
    assert hub.service("bob", "PATCH", "jobs/team-report", {"description": "bob's"})[0] == 404
    code, run = hub.service("erin", "POST", "runs", {"job": "team-report"})
    assert code == 201, run
    done = hub.wait_run("erin", run["id"])
    assert done["status"] == "succeeded", done
    code, log = hub.service("erin", "GET", f"runs/{run['id']}/outputs/log")
    assert "ORIGINS ['JFK', 'LGA']" in str(log)

    # One audit log names each member who acted, and the team's run as erin's doing.
    code, page = hub.service("carol", "GET", "audit?limit=200")
    assert code == 200, page
    seen = {(e["action"], e["user"], e["actor"]) for e in page["events"]}
    names = hub.names
    assert ("job.create", names["alice"], None) in seen
    assert ("job.update", names["erin"], None) in seen
    assert ("run.submit", names["erin"], None) in seen
    assert ("read", "group:analysts", names["erin"]) in seen
    assert ("read", names["bob"], None) in seen


def test_the_service_answers_hub_and_run_tokens_as_the_matrix_says(hub: Hub) -> None:
    """A slice of the authorization matrix, with the Hub's own credentials: users' Hub
    tokens, a run token minted by the service, the service's own Hub token, nobody."""
    import jwt

    svc_pid = _service_pid(hub)
    environ = Path(f"/proc/{svc_pid}/environ").read_bytes().split(b"\0")
    own = dict(e.decode().split("=", 1) for e in environ if b"=" in e)["JUPYTERHUB_API_TOKEN"]
    key = (hub.team.workspace / ".dataops" / "keys" / "signing").read_bytes()  # we are root
    # The service learns the groups of users who are not asking (job owners) from the Hub,
    # with its own token (its role: read:users:groups).
    from jupyter_dataops.team.hub import HubDirectory

    directory = HubDirectory(f"{hub.url}/hub/api", own)
    assert directory.groups_of(hub.names["alice"]) == ("analysts",)
    assert directory.groups_of(hub.names["carol"]) == ()
    sleeper = {"notebook_path": "x.ipynb", "notebook": _nb("import time\ntime.sleep(120)")}
    code, run = hub.service("alice", "POST", "runs", sleeper)
    assert code == 201, run
    deadline = time.monotonic() + 60  # a run token is good while its run is running
    while hub.service("alice", "GET", f"runs/{run['id']}")[1]["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    now = int(time.time())
    claims = {"iss": "jupyter-dataops", "sub": hub.names["alice"], "scope": f"run:{run['id']}",
              "iat": now, "exp": now + 600, "jti": "t"}  # fmt: skip
    run_token = jwt.encode(claims, key, algorithm="HS256")
    svc = f"{hub.url}/services/dataops/dataops/api/v1/"

    def call(who: str, method: str, path: str, body: Any = None) -> int:
        if who == "anon":
            req = urllib.request.Request(svc + path, method=method)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return int(r.status)
            except urllib.error.HTTPError as e:
                return int(e.code)
        if who == "run":
            data = None if body is None else json.dumps(body).encode()
            headers = {"Authorization": f"DataOps {run_token}", "Content-Type": "application/json"}
            req = urllib.request.Request(svc + path, method=method, data=data, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return int(r.status)
            except urllib.error.HTTPError as e:
                return int(e.code)
        if who == "service":
            return int(http(method, svc + path, own, body)[0])
        return int(hub.service(who, method, path, body)[0])

    rows = {
        ("GET", "status"): {"anon": 401, "service": 401, "alice": 200, "bob": 200, "carol": 200},
        ("GET", "audit"): {"anon": 401, "service": 401, "alice": 403, "bob": 403, "carol": 200},
        ("GET", f"runs/{run['id']}"): {"anon": 401, "service": 401, "alice": 200, "bob": 404,
                                       "carol": 200},
        ("POST", "jobs"): {"anon": 401, "service": 401, "run": 403},
        ("GET", "runs"): {"run": 403},
    }  # fmt: skip
    got = {}
    for (method, path), want in rows.items():
        body = (
            {"name": "x", "notebook_path": "x.ipynb", "notebook": _nb()}
            if method == "POST"
            else None
        )
        for who, code in want.items():
            got[(method, path, who)] = (call(who, method, path, body), code)
    hub.service("alice", "POST", f"runs/{run['id']}/cancel")
    wrong = {k: v for k, v in got.items() if v[0] != v[1]}
    assert not wrong, wrong


def test_a_hub_user_without_a_server_opens_the_dashboard_shared_with_them(hub: Hub) -> None:
    """Stakeholders need a Hub login and the dashboard, not a Jupyter server or a grant: dave
    (no group, no server) opens alice's dashboard through the Hub's OAuth; bob, who is not
    its viewer, gets a 403 that does not even say its title."""
    dave, slug = hub.names["dave"], "for-dave"
    source = (
        "import jupyter_dataops as dops\nprint('ORIGINS', sorted(set(dops.pull('flights').origin)))"
    )
    report = {"name": "for-dave", "notebook_path": "for-dave.ipynb", "notebook": _nb(source)}
    assert hub.service("alice", "POST", "jobs", report)[0] == 201
    code, run = hub.service("alice", "POST", "runs", {"job": "for-dave"})
    assert code == 201, run
    assert hub.wait_run("alice", run["id"])["status"] == "succeeded"
    publish = {"slug": slug, "job": "for-dave", "title": "Carrier report for the board",
               "viewers": {"users": [dave]}}  # fmt: skip
    code, board = hub.service("alice", "POST", "dashboards", publish)
    assert code == 201, board
    deadline = time.monotonic() + 60
    while not (board.get("last_render") or {}).get("run_id"):
        assert time.monotonic() < deadline, board
        time.sleep(0.5)
        board = hub.service("alice", "GET", f"dashboards/{slug}")[1]

    page_url = f"{hub.url}/services/dataops/dataops/dashboards/{slug}"
    browser = hub.browser("dave")
    page = browser.get(page_url, timeout=60)  # the service's login: the Hub's OAuth, no consent
    assert page.status_code == 200, page.text[-2000:]
    assert page.url == page_url
    # What alice may see (her grant: JFK and LGA), not what dave may (nothing).
    assert "ORIGINS ['JFK', 'LGA']" in html.unescape(page.text)
    assert "Carrier report for the board" in page.text
    index = browser.get(f"{hub.url}/services/dataops/dataops/dashboards/", timeout=60)
    assert index.status_code == 200 and slug in index.text
    code, user = hub.api("GET", f"users/{dave}")
    assert code == 200 and not user.get("servers"), user  # nothing was started for him

    other = hub.browser("bob").get(page_url, timeout=60)
    assert other.status_code == 403
    assert "Carrier report" not in other.text


def _nb(*code: str) -> dict[str, Any]:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in code]
    return dict(json.loads(nbformat.writes(nb)))
