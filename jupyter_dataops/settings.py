"""``c.DataOps.*``: the settings shared by the server extension and the CLI.

A plain traitlets ``Configurable`` (not the ExtensionApp) so ``jupyter dataops ...`` reads the
same ``jupyter_server_config`` files as the server without starting one.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

from traitlets import Bool, Float, Int, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable


class DataOps(LoggingConfigurable):
    """Settings of jupyter-dataops."""

    root_dir = Unicode(
        "",
        help="Workspace root. Defaults to the Jupyter server's root_dir (the CLI: the current "
        "directory). dataops.yaml and .dataops/ live here.",
    ).tag(config=True)

    mode = Unicode(
        "personal",
        help="'personal': everything runs in this Jupyter server (the default). 'service': "
        "this process is the team's DataOps service (`jupyter dataops serve` sets it). When "
        "service_url is set, the extension is a client of that service instead.",
    ).tag(config=True)

    service_url = Unicode(
        "",
        help="URL of the team's DataOps service, e.g. http://127.0.0.1:8000/services/dataops/ "
        "(team mode). The sidebar and kernels then use the service, as this server's user "
        "(with its JupyterHub API token); nothing governed is stored in or readable from "
        "this server.",
    ).tag(config=True)

    run_as = Unicode(
        "",
        help="The service (started as root with `jupyter dataops serve --user`): the OS user a "
        "run's kernel runs as. '{owner}': the run's owner (as JupyterHub's LocalProcessSpawner "
        "runs their servers), the default there; a name: that user for every run. Runs of a "
        "team's jobs (owner group:<name>) run as group_run_as. Empty elsewhere: kernels run as "
        "this process's user (personal mode).",
    ).tag(config=True)

    group_run_as = Unicode(
        "dataops-jobs",
        help="The OS user the kernels of a team's jobs run as (the service, with run_as).",
    ).tag(config=True)

    unsandboxed_kernels = Bool(
        False,
        help="The service: run job kernels as the service's own OS user when it was not "
        "started as root with --user. They can then read its keys and data: for a throwaway "
        "test only.",
    ).tag(config=True)

    sandbox_min_uid = Int(
        1000, help="Job kernels never run as an OS user with a smaller uid (system users)."
    ).tag(config=True)

    sandbox_users = List(
        Unicode(),
        default_value=[],
        help="When not empty: the only OS users job kernels may run as.",
    ).tag(config=True)

    db_url = Unicode(
        "",
        help="SQLAlchemy URL of the metadata store. Default: "
        "sqlite:///<root_dir>/.dataops/dataops.db. Use a postgresql:// URL to share one store "
        "between several servers.",
    ).tag(config=True)

    workspace_config = Unicode(
        "",
        help="Path of the policy-as-code file. Default: <root_dir>/dataops.yaml.",
    ).tag(config=True)

    local_user = Unicode(
        help="DataOps user of a personal server. Jupyter's default identity provider only knows "
        "anonymous token users, so on a server that is not behind JupyterHub every request is "
        "this user. Ignored when a real identity provider (JupyterHub, custom) names the user.",
    ).tag(config=True)

    token_ttl = Float(
        3600.0,
        help="Seconds a kernel's or a job run's DataOps token is valid. The kernel client "
        "renews it before it expires, and the server renews only while the token's kernel or "
        "run lives: a token is useless once its kernel is gone or its run has ended.",
    ).tag(config=True)

    db_threads = Int(
        4,
        help="Threads that run metadata-store calls off the Tornado event loop.",
    ).tag(config=True)

    query_threads = Int(
        2,
        help="Threads that run governed reads (DuckDB, source databases); each read may "
        "itself use several cores inside DuckDB.",
    ).tag(config=True)

    pull_batch_rows = Int(256 * 1024, help="Rows per Arrow record batch streamed to kernels.").tag(
        config=True
    )

    job_workers = Int(
        2, help="Runs executed at once by the local executor (each in its own kernel)."
    ).tag(config=True)

    warm_kernels = Int(
        2,
        help="Runner processes kept started ahead of time, kernel ready, so a run does not "
        "wait for kernel start-up. 0 starts each run's kernel on demand.",
    ).tag(config=True)

    outputs_url = Unicode(
        "",
        help="fsspec URL of shared storage for run files (s3://bucket/dataops/runs, "
        "file:///mnt/shared/runs, ...). Inputs are written there on submission and outputs "
        "when a run ends, so servers sharing one store can run and serve each other's runs. "
        "Default: each server's <root>/.dataops/runs only.",
    ).tag(config=True)

    fork_kernels = Bool(
        True,
        help="Fork runners and their kernels from one pre-imported process (a fork server) "
        "instead of starting two interpreters per run: several times less CPU per run. Each "
        "run still gets a fresh, never-used kernel. Applies to ipykernel kernelspecs of the "
        "server's own Python without an env of their own; others always start the plain way.",
    ).tag(config=True)

    kernel_preload = List(
        Unicode(),
        default_value=[],
        help="Modules the fork server imports once for every forked kernel, e.g. ['pandas']: "
        "a run's `import pandas` is then free (it is already in sys.modules; numpy's global "
        "random state is re-seeded in each kernel). Only modules whose import starts no "
        "threads, opens no connections and reads no per-run state. Default: none.",
    ).tag(config=True)

    run_scheduler = Bool(
        True,
        help="Fire the cron schedules of this server's user's job definitions, and execute the "
        "runs here. Safe next to other schedulers (each fire time runs exactly once); set it "
        "False when `jupyter dataops scheduler` runs, so scheduled jobs never depend on a "
        "user's server.",
    ).tag(config=True)

    executor = Unicode(
        "local",
        help="Executor of runs submitted without a job definition (a definition names its "
        "own): 'local' (kernels on this machine) or 'dask' (a distributed cluster at "
        "dask_scheduler_address).",
    ).tag(config=True)

    dask_scheduler_address = Unicode(
        "",
        help="Address of the Dask scheduler that runs with executor 'dask' are submitted to, "
        "e.g. tcp://127.0.0.1:8786. Needs the 'dask' extra (distributed).",
    ).tag(config=True)

    track_runs = Bool(
        True,
        help="Make every job run an MLflow run (params, tags, notebooks, status), and give "
        "job kernels MLFLOW_TRACKING_URI / MLFLOW_RUN_ID. dops.run in notebooks works either "
        "way.",
    ).tag(config=True)

    mlflow_tracking_uri = Unicode(
        "",
        help="MLflow tracking URI that every tracked run is written to: a real MLflow server "
        "(http://mlflow.internal:5000) or database (postgresql://...), e.g. in team mode. "
        "Default: the metadata store's database when db_url is PostgreSQL (MLflow's tables "
        "beside the dops_ ones, so servers sharing it share tracking), else an embedded store, "
        "sqlite:///<root>/.dataops/mlflow/mlflow.db; the artifacts go to "
        ".dataops/mlflow/artifacts either way. Kernels never get this URI: they "
        "log through the DataOps API's MLflow endpoint, which checks whose run it is.",
    ).tag(config=True)

    mlflow_ui_url = Unicode(
        "",
        help="URL of an MLflow UI showing mlflow_tracking_uri (e.g. http://127.0.0.1:5000/), "
        "for links from the Experiments panel. Empty: no links.",
    ).tag(config=True)

    openlineage_url = Unicode(
        "",
        help="OpenLineage HTTP endpoint (Marquez-compatible, e.g. http://marquez:5000) that job "
        "runs' lineage events are sent to. Empty (the default): they are appended to "
        "openlineage_file.",
    ).tag(config=True)

    openlineage_file = Unicode(
        "",
        help="File that OpenLineage run events are appended to, one JSON object a line, when "
        "openlineage_url is not set. Default: <root>/.dataops/openlineage/events.jsonl.",
    ).tag(config=True)

    openlineage_namespace = Unicode(
        "jupyter-dataops",
        help="OpenLineage namespace of job runs' jobs.",
    ).tag(config=True)

    observe_interval = Float(
        30.0,
        help="Seconds between two looks at the file datasets' files: a file that changed is "
        "hashed then (its content is its version), in the background, not by the next pull. "
        "0 turns the background look off (pulls then hash changed files themselves).",
    ).tag(config=True)

    smtp_host = Unicode(
        "",
        help="SMTP server that sends job notification e-mails. Empty (the default): e-mail "
        "is off, and a job definition that asks for e-mails is refused (400).",
    ).tag(config=True)

    smtp_port = Int(25, help="Port of smtp_host (587 with smtp_starttls, usually).").tag(
        config=True
    )

    smtp_from = Unicode(
        help="From: address of notification e-mails. Default: dataops@<hostname>."
    ).tag(config=True)

    smtp_username = Unicode("", help="SMTP login user; empty: no login.").tag(config=True)

    smtp_password = Unicode("", help="SMTP login password.").tag(config=True)

    smtp_starttls = Bool(
        False, help="Upgrade the SMTP connection with STARTTLS before logging in and sending."
    ).tag(config=True)

    live_kernels = Int(
        8,
        help="Dashboards' live views: at most this many kernels at once (those ready and those "
        "viewers use). Past it a live view answers 503 with Retry-After, never exhausting "
        "the machine.",
    ).tag(config=True)

    live_pool = Int(
        2,
        help="Live views: kernels kept started ahead of time (imports warm, nothing of any "
        "notebook executed), so a viewer does not wait for a kernel start. 0: none.",
    ).tag(config=True)

    live_idle_timeout = Float(
        300.0,
        help="Live views: seconds a viewer's kernel may stay idle (the page left open "
        "untouched, or closed) before it is shut down and its place freed.",
    ).tag(config=True)

    live_preload = List(
        Unicode(),
        default_value=["ipywidgets", "pandas", "pyarrow", "jupyter_dataops.client"],
        help="Modules imported in the live views' ready kernels before any viewer comes.",
    ).tag(config=True)

    source_url_env = List(
        Unicode(),
        default_value=[],
        help="Environment variables SQL source URLs may use as ${NAME}, e.g. ['WAREHOUSE_PASSWORD']"
        " (in dataops.yaml and in registered datasets alike). Default: none, so no source URL "
        "can read the server's environment.",
    ).tag(config=True)

    webhook_allowed_hosts = List(
        Unicode(),
        default_value=[],
        help="Hosts job webhooks may call. Empty (the default): any host whose addresses are "
        "public. Otherwise only these: names (hooks.example.com), wildcards (*.example.com) "
        "or networks the host's addresses are in (203.0.113.0/24). Checked when a job is "
        "defined (400) and at every delivery.",
    ).tag(config=True)

    webhook_allowed_networks = List(
        Unicode(),
        default_value=[],
        help="Networks of non-public addresses job webhooks may reach anyway, e.g. "
        "['10.20.0.0/16']. Loopback, link-local (cloud metadata), private, reserved and "
        "multicast addresses are refused unless listed here, after DNS resolution.",
    ).tag(config=True)

    @validate("webhook_allowed_networks")
    def _validate_networks(self, proposal: dict) -> list[str]:
        import ipaddress

        for entry in proposal["value"]:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise TraitError(
                    f"DataOps.webhook_allowed_networks: {entry!r} is not a network "
                    "(e.g. 10.0.0.0/8 or 127.0.0.1)"
                ) from None
        return list(proposal["value"])

    @validate("live_preload", "kernel_preload")
    def _validate_modules(self, proposal: dict) -> list[str]:
        import re

        for name in proposal["value"]:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", str(name)):
                raise TraitError(
                    f"DataOps.{proposal['trait'].name}: {name!r} is not a module name "
                    "(e.g. pandas or matplotlib.pyplot)"
                )
        return list(proposal["value"])

    @default("smtp_from")
    def _default_smtp_from(self) -> str:
        return f"dataops@{socket.gethostname() or 'localhost'}"

    @validate("mode")
    def _validate_mode(self, proposal: dict) -> str:
        value = str(proposal["value"])
        if value not in ("personal", "service"):
            raise TraitError(f"DataOps.mode must be 'personal' or 'service', not {value!r}")
        return value

    @validate("executor")
    def _validate_executor(self, proposal: dict) -> str:
        value = str(proposal["value"])
        if value not in ("local", "dask"):
            raise TraitError(f"DataOps.executor must be 'local' or 'dask', not {value!r}")
        return value

    @default("local_user")
    def _default_local_user(self) -> str:
        try:
            return getpass.getuser()
        except Exception:  # no login name (some containers)
            return "jovyan"

    def resolved_root(self, fallback: str | Path) -> Path:
        return Path(self.root_dir or fallback).expanduser().resolve()

    def resolved_db_url(self, root: Path) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(root / '.dataops' / 'dataops.db').as_posix()}"

    def resolved_config_path(self, root: Path) -> Path:
        if self.workspace_config:
            p = Path(self.workspace_config).expanduser()
            return p if p.is_absolute() else (root / p).resolve()
        return root / "dataops.yaml"
