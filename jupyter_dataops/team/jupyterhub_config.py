# JupyterHub with the DataOps service: the configuration `make team` runs, and the one to copy.
#
# Loopback only, processes only (no containers): the Hub and configurable-http-proxy run as
# root, the DataOps service as its own OS user (`dataops`), each user's server and kernels as
# that user (LocalProcessSpawner), job kernels as their owner. Everything below that is not a
# literal comes from the environment `make team` sets (see docs/team.md):
#
#   DATAOPS_TEAM_DIR       a folder the users can read (the venv, the proxy, the Hub's state)
#   DATAOPS_TEAM_PORT      the public port (default 18000; the Hub's own ports follow it)
#   DATAOPS_TEAM_USERS     "alice:analysts,bob:ops": users and their group
#   DATAOPS_TEAM_PASSWORD  the shared login password (>= 8 characters)
#   DATAOPS_TEAM_DB_URL    the service's metadata store (PostgreSQL)
#   DATAOPS_TEAM_WORKSPACE the service's workspace (dataops.yaml, data), owned by `dataops`
#   DATAOPS_TEAM_DASK      optional: a Dask scheduler address for runs with executor dask
#   DATAOPS_TEAM_SERVICE_USER / DATAOPS_TEAM_JOBS_USER  the service's OS user (default
#                          dataops) and the one a team's job kernels run as (dataops-jobs)
import os
import shlex
import signal

from jupyterhub.spawner import LocalProcessSpawner

c = get_config()  # type: ignore[name-defined]  # noqa: F821

TEAM = os.environ["DATAOPS_TEAM_DIR"]
VENV = os.environ.get("DATAOPS_TEAM_VENV", f"{TEAM}/venv")
PORT = int(os.environ.get("DATAOPS_TEAM_PORT", "18000"))
HOST = "127.0.0.1"
SERVICE_PORT = PORT + 90
PUBLIC = f"http://{HOST}:{PORT}"
# What users' servers and kernels call: the service's own address, as they call the Hub's API
# at its own (JUPYTERHUB_API_URL), not through the proxy, which costs a tenth of a pull's
# throughput (bench/team.py). Browsers reach the service through the proxy, at
# {PUBLIC}/services/dataops/.
SERVICE_URL = f"http://{HOST}:{SERVICE_PORT}/services/dataops/"

# Network: loopback only.
c.JupyterHub.ip, c.JupyterHub.port = HOST, PORT
c.JupyterHub.hub_ip, c.JupyterHub.hub_port = HOST, PORT + 81
c.ConfigurableHTTPProxy.api_url = f"http://{HOST}:{PORT + 1}"
NODE = os.environ.get("DATAOPS_TEAM_NODE", f"{TEAM}/node")
c.ConfigurableHTTPProxy.command = [f"{NODE}/node_modules/.bin/configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = f"{TEAM}/hub/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{TEAM}/hub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{TEAM}/hub/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{TEAM}/hub/jupyterhub.pid"

# Users and groups: a shared password (a demo; use your authenticator), groups from the env.
users = dict(u.split(":", 1) for u in os.environ["DATAOPS_TEAM_USERS"].split(","))
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ["DATAOPS_TEAM_PASSWORD"]
c.Authenticator.allowed_users = set(users)
groups: dict[str, list[str]] = {}
for name, group in users.items():
    for g in filter(None, group.split("+")):
        groups.setdefault(g, []).append(name)
c.JupyterHub.load_groups = {g: {"users": members} for g, members in groups.items()}


class TermFirstSpawner(LocalProcessSpawner):
    """Stop servers with SIGTERM (jupyter_server shuts its kernels down on it; on the default
    SIGINT it does so only with a terminal attached)."""

    async def stop(self, now=False):
        await super().stop(now=True)


c.JupyterHub.spawner_class = TermFirstSpawner
c.Spawner.cmd = [f"{VENV}/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = c.Spawner.http_timeout = 90
# Client mode: each user's server and its kernels use the DataOps service, as the user.
c.Spawner.args = [f"--DataOps.service_url={SERVICE_URL}"]
# The scopes of $JUPYTERHUB_API_TOKEN in each server and its kernels: the default lacks the
# service, which would then answer 403.
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=dataops",
]

service_cmd = [
    f"{VENV}/bin/jupyter", "dataops", "serve",
    "--root", os.environ["DATAOPS_TEAM_WORKSPACE"],
    # Started as root, it forks the launcher of job kernels and drops to its own user at once.
    "--user", os.environ.get("DATAOPS_TEAM_SERVICE_USER", "dataops"),
    f"--DataOps.db_url={os.environ['DATAOPS_TEAM_DB_URL']}",
    "--DataOps.run_as={owner}",  # a run's kernel runs as its owner's OS user
    f"--DataOps.group_run_as={os.environ.get('DATAOPS_TEAM_JOBS_USER', 'dataops-jobs')}",
]  # fmt: skip
if os.environ.get("DATAOPS_TEAM_DASK"):
    service_cmd.append(f"--DataOps.dask_scheduler_address={os.environ['DATAOPS_TEAM_DASK']}")
service_cmd += shlex.split(os.environ.get("DATAOPS_TEAM_SERVICE_ARGS", ""))
c.JupyterHub.services = [
    {
        "name": "dataops",
        "url": f"http://{HOST}:{SERVICE_PORT}",
        "command": service_cmd,
        "cwd": os.environ["DATAOPS_TEAM_WORKSPACE"],
        "oauth_no_confirm": True,
        "timeout": 60,
        "environment": {"PATH": f"{VENV}/bin:/usr/bin:/bin"},
    },
]
c.JupyterHub.load_roles = [
    # Users (their browsers, servers and kernels) may reach the service.
    {"name": "dataops-users", "scopes": ["access:services!service=dataops"],
     "users": sorted(users)},
    # The service's own token: the names and groups of job owners who are not asking.
    {"name": "dataops-service", "scopes": ["read:users:name", "read:users:groups", "list:users"],
     "services": ["dataops"]},
]  # fmt: skip
if os.environ.get("DATAOPS_TEAM_DRIVER_TOKEN"):  # tests: a token to start and stop servers
    c.JupyterHub.services.append(
        {"name": "driver", "api_token": os.environ["DATAOPS_TEAM_DRIVER_TOKEN"], "display": False}
    )
    c.JupyterHub.load_roles.append(
        {"name": "driver", "scopes": ["users", "servers", "tokens", "read:services"],
         "services": ["driver"]}
    )  # fmt: skip

# A Hub started in the background inherits SIGINT ignored and would hand it on to the
# service: the service re-arms its own handlers; this keeps the Hub's own stop quick too.
signal.signal(signal.SIGINT, signal.default_int_handler)
