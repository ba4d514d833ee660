"""Tracking: every job run, and every ``dops.run`` of a notebook, is one MLflow run.

The server creates and ends the MLflow runs of jobs itself (never the kernel, whose process
may die or lie): the run is created when the job run is claimed, so the kernel gets its id,
and ended when the executor records the job run's end, with a status that tells the truth
(FAILED for failed and timed-out runs, KILLED for cancelled ones). Kernels log into their
run through the MLflow endpoint of the DataOps API (handlers/mlflow.py), which checks whose
run it is: they never hold the store's URI.

Blocking (MLflow's store is SQL or HTTP): call through the platform's pools.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..exceptions import Conflict, Forbidden, InvalidRequest, NotFound
from ..identity import Principal
from ..models import StartTrackedRunRequest, TrackedRunInfo
from ..paths import STATE_DIR
from ..store import Store
from ..store import tables as t
from .openlineage import LineageEvents

log = logging.getLogger(__name__)

# What a job run's end says in MLflow (issue #3932: a run ended any other way shows FINISHED).
MLFLOW_STATUS = {
    "succeeded": "FINISHED",
    "failed": "FAILED",
    "timed_out": "FAILED",
    "cancelled": "KILLED",
}
ENDED = ("FINISHED", "FAILED", "KILLED")
# Tags only the platform writes: a kernel cannot forge its run's owner, job or notebook.
RESERVED = "dataops."
ARTIFACTS = {  # the run's file -> its artifact directory in MLflow
    "input.ipynb": "notebook",
    "output.ipynb": "notebook",
    "output.html": "notebook",
    "output.pdf": "notebook",
    "run.log": "",
}
PARAM_MAX = 6000  # MLflow's limit on a parameter's value
# MLflow 3 sends usage telemetry to its vendor unless told not to: the platform's processes and
# kernels never call anywhere but their own servers (a user may still set it to false).
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true"}


def millis(at: datetime | None) -> int:
    return int((at.timestamp() if at else time.time()) * 1000)


def param_value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text[:PARAM_MAX]


def mlflow_endpoint(server_url: str) -> str:
    """The MLflow tracking URI of the DataOps API at ``server_url``."""
    return server_url.rstrip("/") + "/dataops/api/v1/mlflow"


def proxied_artifact_uri(mlflow_run_id: str) -> str:
    """Where a kernel's MLflow client sends its run's artifacts: the DataOps endpoint."""
    return f"mlflow-artifacts:/runs/{mlflow_run_id}/artifacts"


class Tracking:
    """The platform's MLflow: one tracking URI, and who owns which of its runs."""

    def __init__(
        self,
        store: Store,
        root: Path,
        tracking_uri: str = "",
        admins: Callable[[], list[str]] = list,
        ui_url: str = "",
    ) -> None:
        for k, v in NO_TELEMETRY.items():  # before anything imports MLflow in this process
            os.environ.setdefault(k, v)
        self.store = store
        self.root = root
        self.state_dir = root / STATE_DIR / "mlflow"
        self.embedded = not tracking_uri  # the platform's own store: it places the artifacts
        self.uri = tracking_uri or self._default_uri()
        self.artifact_root = self.state_dir / "artifacts"
        self.ui_url = ui_url
        self._admins = admins
        self._client: Any = None
        self._lock = threading.Lock()
        self._experiments: dict[str, str] = {}
        self._artifact_uris: dict[str, str] = {}
        self._runs_lock = threading.Lock()
        self._started: set[str] = set()  # job runs' MLflow runs whose start is recorded
        self.events: LineageEvents | None = None  # OpenLineage run events of job runs

    def _default_uri(self) -> str:
        """The metadata store's own database when it is PostgreSQL (servers sharing it then
        share one MLflow store: its tables sit beside the ``dops_`` ones), else SQLite in
        ``.dataops/mlflow/``."""
        if self.store.dialect == "postgresql":
            url = self.store.url.set(drivername="postgresql+psycopg")
            return url.render_as_string(hide_password=False)
        # Absolute SQLite paths (four slashes): MLflow resolves relative ones against the cwd.
        return f"sqlite:///{(self.state_dir / 'mlflow.db').as_posix()}"

    # MLflow --------------------------------------------------------------------------------
    def client(self) -> Any:
        """MLflow's client on the tracking URI; the first call imports MLflow and, on a new
        embedded store, creates its tables (about 2 s: the server does it at start)."""
        with self._lock:
            if self._client is None:
                if self.embedded:
                    self.artifact_root.mkdir(parents=True, exist_ok=True)
                from mlflow.tracking import MlflowClient

                from ..store.migrate import ALEMBIC_LOCK

                with ALEMBIC_LOCK:  # MLflow migrates its store with Alembic, as we do ours
                    client = MlflowClient(tracking_uri=self.uri)
                    client.search_experiments(max_results=1)  # opens (and migrates) it
                if self.uri.startswith("sqlite:"):
                    _fast_sqlite(client)
                self._client = client
            return self._client

    def close(self) -> None:
        if self.events is not None:
            self.events.close()

    def warm(self) -> None:
        """Open the store ahead of the first run (the server calls this in a thread)."""
        try:
            self.client()
        except Exception:
            log.warning("DataOps: the MLflow store %s cannot be opened", self.redacted_uri,
                        exc_info=True)  # fmt: skip

    @property
    def redacted_uri(self) -> str:
        if "://" in self.uri and "@" in self.uri:
            from ..store import redact_url

            try:
                return redact_url(self.uri)
            except Exception:
                return self.uri.split("://")[0] + "://***"
        return self.uri

    def _is_admin(self, user: Principal) -> bool:
        return user.name in self._admins()

    def experiment(self, name: str) -> str:
        """The id of experiment ``name``, created (or restored) when needed."""
        if name in self._experiments:
            return self._experiments[name]
        from mlflow.exceptions import MlflowException

        c = self.client()
        exp = c.get_experiment_by_name(name)
        if exp is None:
            location = (self.artifact_root / uuid.uuid4().hex).as_uri() if self.embedded else None
            try:
                eid = c.create_experiment(name, artifact_location=location)
            except MlflowException as e:
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                exp = c.get_experiment_by_name(name)  # another server created it first
                eid = exp.experiment_id
        else:
            eid = exp.experiment_id
            if exp.lifecycle_stage == "deleted":
                c.restore_experiment(eid)
        self._experiments[name] = eid
        return eid

    # job runs --------------------------------------------------------------------------------
    def start_job_run(self, s: Any, r: t.Run, job_name: str | None) -> str:
        """Create the MLflow run of job run ``r`` (being claimed, in session ``s``)."""

        experiment = job_name or r.notebook_path
        eid = self.experiment(experiment)
        tags = {
            "mlflow.source.name": r.notebook_path,
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.user": r.owner,
            "dataops.run_id": r.id,
            "dataops.owner": r.owner,
            "dataops.kind": "job",
            "dataops.job": job_name or "",
            "dataops.attempt": str(r.attempt),
            "dataops.retry_of": r.retry_of or "",
            "dataops.trigger": r.trigger,
            "dataops.triggered_by": r.triggered_by,
            "dataops.executor": r.executor,
            "dataops.notebook_path": r.notebook_path,
            "dataops.notebook_hash": r.notebook_hash,
        }
        c = self.client()
        name = f"{job_name or Path(r.notebook_path).stem} #{r.id[:8]}"
        # Only what the kernel needs before it starts (the run's id): one transaction. The
        # parameters follow while it works (job_run_started).
        mr = c.create_run(eid, start_time=millis(r.started_at), tags=tags, run_name=name)
        mid = mr.info.run_id
        self._artifact_uris[mid] = mr.info.artifact_uri
        s.add(t.TrackedRun(
            mlflow_run_id=mid, experiment_id=eid, experiment_name=experiment, owner=r.owner,
            kind="job", run_id=r.id, notebook_path=r.notebook_path,
            notebook_hash=r.notebook_hash, status="RUNNING"))  # fmt: skip
        return str(mid)

    def job_run_started(self, run_id: str) -> None:
        """The parameters of a started job run into its MLflow run; the START event."""
        from mlflow.entities import Param

        with self._runs_lock:  # never after, nor beside, the run's end
            with self.store.session() as s:
                r = s.get(t.Run, run_id)
                tr = s.scalar(select(t.TrackedRun).where(t.TrackedRun.run_id == run_id))
            if r is None or tr is None or tr.status in ENDED or tr.mlflow_run_id in self._started:
                return
            params = [Param(k, param_value(v)) for k, v in sorted(r.parameters.items())]
            if params:
                self.client().log_batch(tr.mlflow_run_id, params=params[:100])
            self._started.add(tr.mlflow_run_id)
            if self.events is not None:
                self.events.emit("running", r.id, tr.experiment_name, at=r.started_at)

    def kernel_env(
        self, mlflow_run_id: str, server_url: str, token: str, spool_dir: Path
    ) -> dict[str, str]:
        """What a job's kernel needs so that plain ``mlflow.log_*`` lands in its run.

        With a server to call, MLflow's client talks to the DataOps API's MLflow endpoint
        with the run's own token (``MLFLOW_TRACKING_TOKEN``, sent as a Bearer token), which
        lets it write this run only. Without one (``jupyter dataops run --wait``, a personal
        workspace), the kernel is the owner's own process and gets the store itself.
        """
        env = {
            **{k: os.environ.get(k, v) for k, v in NO_TELEMETRY.items()},
            "MLFLOW_RUN_ID": mlflow_run_id,
            "DATAOPS_MLFLOW_RUN_ID": mlflow_run_id,
            "DATAOPS_SPOOL_DIR": str(spool_dir),
        }
        if server_url:
            env["MLFLOW_TRACKING_URI"] = mlflow_endpoint(server_url)
            env["MLFLOW_TRACKING_TOKEN"] = token
        else:
            env["MLFLOW_TRACKING_URI"] = self.uri
        return env

    def end_job_run(self, run_id: str, status: str, run_dir: Path) -> None:
        """End the MLflow run of job run ``run_id`` with the truth: its files, its duration
        and its status (its own record is committed already)."""
        with self._runs_lock, self.store.session() as s:
            r = s.get(t.Run, run_id)
            tr = s.scalar(select(t.TrackedRun).where(t.TrackedRun.run_id == run_id))
            if r is None or tr is None or tr.status in ENDED:
                return
            self._end(s, r, tr, status, run_dir)

    def _end(self, s: Any, r: t.Run, tr: t.TrackedRun, status: str, run_dir: Path) -> None:
        from mlflow.entities import Metric, Param

        c = self.client()
        mid = tr.mlflow_run_id
        from .spool import replay

        replay(self, mid, run_dir / "spool")  # what the kernel logged but had not sent
        for name, directory in ARTIFACTS.items():
            path = run_dir / name
            if path.exists():
                self._log_artifact(mid, path, directory)
        end = millis(r.finished_at)
        metrics = []
        if r.started_at is not None and r.finished_at is not None:
            duration = (r.finished_at - r.started_at).total_seconds()
            metrics.append(Metric("dataops.duration_s", duration, end, 0))
        mstatus = MLFLOW_STATUS[status]
        tags = _tags({"dataops.status": status})
        defaults = self._defaults(r, run_dir / "input.ipynb")
        if mid not in self._started:  # it ended before its start was recorded
            defaults += [Param(k, param_value(v)) for k, v in sorted(r.parameters.items())]
            if self.events is not None:
                self.events.emit("running", r.id, tr.experiment_name, at=r.started_at)
        self._started.discard(mid)
        try:  # one transaction for the end's values
            c.log_batch(mid, metrics=metrics, params=defaults, tags=tags)
        except Exception:  # the notebook logged one of those parameter names itself
            c.log_batch(mid, metrics=metrics, tags=tags)
        c.set_terminated(mid, mstatus, end_time=end)
        tr.status, tr.ended_at = mstatus, r.finished_at
        self._artifact_uris.pop(mid, None)
        if self.events is not None:
            error = (r.error or {}).get("message") if status != "succeeded" else None
            self.events.emit(
                status, r.id, tr.experiment_name, at=r.finished_at, reads=self.reads_of(mid),
                output=f"runs/{r.id}/output.ipynb" if (run_dir / "output.ipynb").exists() else None,
                error=error,
            )  # fmt: skip

    @staticmethod
    def _defaults(r: t.Run, notebook: Path) -> list[Any]:
        """The notebook's defaults of the parameters the run did not set: what it ran with
        (known at the end, off the run's start)."""
        from mlflow.entities import Param

        from ..jobs.parameters import infer_parameters

        try:
            declared = infer_parameters(notebook)
        except Exception:
            return []
        return [
            Param(k, param_value(v.get("default")))
            for k, v in declared.items()
            if k not in r.parameters
        ][:100]

    def _log_artifact(self, mid: str, path: Path, directory: str) -> None:
        uri = self._artifact_uris.get(mid)
        if uri is None:
            self.client().log_artifact(mid, str(path), directory or None)
            return
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        # The repository of a known artifact URI: no round-trip to look the run up again.
        get_artifact_repository(uri, tracking_uri=self.uri).log_artifact(
            str(path), directory or None
        )

    # users' runs (dops.run, plain mlflow.start_run in a notebook) ----------------------------
    def create_user_run(
        self,
        user: Principal,
        experiment: str,
        *,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        start_time: int | None = None,
        notebook_path: str = "",
        notebook_hash: str = "",
        kernel_id: str | None = None,
    ) -> Any:
        """A new MLflow run of ``user``'s, in ``experiment``; returns MLflow's Run."""
        from mlflow.entities import Param

        if user.kind == "run":
            raise Forbidden("a job run's token may only log into its own MLflow run")
        if not experiment.strip():
            raise InvalidRequest("an experiment name is required", details={"field": "experiment"})
        check_user_tags(list(tags or {}))
        eid = self.experiment(experiment)
        all_tags = {
            **(tags or {}),
            "mlflow.user": user.name,
            "dataops.owner": user.name,
            "dataops.kind": "interactive",
        }
        if notebook_path:
            # MLflow records ipykernel_launcher.py as a notebook run's source (#2945, #3695).
            all_tags.update({
                "mlflow.source.name": notebook_path,
                "mlflow.source.type": "NOTEBOOK",
                "dataops.notebook_path": notebook_path,
            })  # fmt: skip
        if notebook_hash:
            all_tags["dataops.notebook_hash"] = notebook_hash
        c = self.client()
        run = c.create_run(eid, start_time=start_time, tags=all_tags, run_name=run_name)
        mid = run.info.run_id
        if params:
            c.log_batch(mid, params=[Param(k, param_value(v)) for k, v in params.items()])
        with self.store.session() as s:
            s.add(t.TrackedRun(
                mlflow_run_id=mid, experiment_id=eid, experiment_name=experiment,
                owner=user.name, kind="interactive", notebook_path=notebook_path,
                notebook_hash=notebook_hash, status="RUNNING", kernel_id=kernel_id))  # fmt: skip
        return c.get_run(mid) if params else run

    @staticmethod
    def info(tr: t.TrackedRun) -> TrackedRunInfo:
        return TrackedRunInfo(
            mlflow_run_id=tr.mlflow_run_id, experiment_id=tr.experiment_id,
            experiment=tr.experiment_name, owner=tr.owner, kind=tr.kind, run_id=tr.run_id,
            notebook_path=tr.notebook_path, status=tr.status,  # type: ignore[arg-type]
            created_at=tr.created_at, ended_at=tr.ended_at)  # fmt: skip

    def start(
        self, user: Principal, req: StartTrackedRunRequest, kernel_id: str | None = None
    ) -> TrackedRunInfo:
        """``dops.run(...)``: a new run of the caller's (``kernel_id``: the kernel's whose
        token asked, so the notebook's toolbar can show it is tracked)."""
        run = self.create_user_run(
            user,
            req.experiment,
            run_name=req.run_name,
            tags=req.tags,
            params=req.params,
            notebook_path=req.notebook_path,
            notebook_hash=req.notebook_hash,
            kernel_id=kernel_id,
        )
        with self.store.session() as s:
            return self.info(self.tracked(s, run.info.run_id))

    def active_in_kernel(self, user: Principal, kernel_id: str) -> TrackedRunInfo | None:
        """The running run a kernel of the user's started last, if any."""
        with self.store.session() as s:
            tr = s.scalar(
                select(t.TrackedRun)
                .where(
                    t.TrackedRun.kernel_id == kernel_id,
                    t.TrackedRun.owner == user.name,
                    t.TrackedRun.status == "RUNNING",
                )
                .order_by(t.TrackedRun.created_at.desc())
                .limit(1)
            )
            return self.info(tr) if tr is not None else None

    def get(self, user: Principal, mlflow_run_id: str) -> TrackedRunInfo:
        return self.info(self.readable(user, mlflow_run_id))

    def mark_ended(self, mlflow_run_id: str, status: str) -> None:
        with self.store.session() as s:
            tr = s.get(t.TrackedRun, mlflow_run_id)
            if tr is not None and tr.status not in ENDED:
                tr.status, tr.ended_at = status, t.utcnow()

    def end_user_run(self, user: Principal, mlflow_run_id: str, status: str) -> TrackedRunInfo:
        if status not in ENDED:
            raise InvalidRequest(f"status must be one of {', '.join(ENDED)}, not {status!r}")
        tr = self.writable(user, mlflow_run_id)
        if tr.kind == "job":
            raise Forbidden("a job's MLflow run is ended by the server when the job run ends")
        self.client().set_terminated(mlflow_run_id, status)
        self.mark_ended(mlflow_run_id, status)
        with self.store.session() as s:
            return self.info(self.tracked(s, mlflow_run_id))

    def log_batch(self, user: Principal, mlflow_run_id: str, records: list[dict[str, Any]]) -> None:
        """Records of the kernel's spool format (see spool.py) into a run the caller writes."""
        from .spool import log_records

        self.writable(user, mlflow_run_id)
        check_user_tags([str(r.get("k")) for r in records if r.get("t") == "g"])
        from .rest import mlflow_errors

        with mlflow_errors():
            log_records(self.client(), mlflow_run_id, records)

    def search_runs(
        self,
        user: Principal,
        experiment_ids: list[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int = 1000,
    ) -> list[Any]:
        """MLflow's search, narrowed to the caller's own runs (admins: all)."""
        if user.kind == "run":
            raise Forbidden("a job run's token may only read its own MLflow run")
        text = filter_string.strip()
        if not self._is_admin(user):
            who = user.name.replace("'", "''")
            own = f"tags.`dataops.owner` = '{who}'"
            # MLflow's filters are conjunctions only (no OR, no parentheses): this one holds.
            text = f"{own} AND {text}" if text else own
        from .rest import mlflow_errors

        with mlflow_errors():
            return list(
                self.client().search_runs(
                    experiment_ids, text, max_results=max_results, order_by=order_by or None
                )
            )

    # lineage ---------------------------------------------------------------------------------
    def record_read(
        self, user: Principal, plan: Any, rows: int, asked_run: str | None = None
    ) -> None:
        """A governed read made inside a tracked run: a row of lineage, and an MLflow dataset
        input of the run (name, version digest, source, columns, filter, row count; never a
        value). A job run's read belongs to its run whatever the kernel says; a notebook's to
        the run it names, if the user may write it. Never fails the read."""
        try:
            with self.store.session() as s:
                if user.kind == "run":
                    tr = s.scalar(select(t.TrackedRun).where(t.TrackedRun.run_id == user.run_id))
                elif asked_run:
                    tr = s.get(t.TrackedRun, asked_run)
                    if tr is not None:
                        try:
                            self.check_write(user, tr)
                        except Exception:
                            tr = None
                else:
                    tr = None
                if tr is None or tr.status in ENDED:
                    return
                s.add(t.LineageRead(
                    mlflow_run_id=tr.mlflow_run_id, run_id=tr.run_id, owner=tr.owner,
                    dataset=plan.dataset, version=plan.version, columns=list(plan.columns),
                    filter=plan.filter, row_count=rows))  # fmt: skip
                mid = tr.mlflow_run_id
            self._log_input(mid, plan, rows)
        except Exception:
            log.warning("DataOps: lineage of a read of %s not recorded", plan.dataset,
                        exc_info=True)  # fmt: skip

    def _log_input(self, mid: str, plan: Any, rows: int) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        types = {"string": "string", "integer": "long", "float": "double", "boolean": "boolean"}
        schema = {
            "mlflow_colspec": [
                {"name": c, "type": types.get(plan.kinds.get(c, ""), "string")}
                for c in plan.columns
            ]
        }
        profile = {
            "num_rows": rows,
            "columns": list(plan.columns),
            "filter": plan.filter,
            "masked_columns": list(plan.masked),
        }
        dataset = Dataset(
            name=plan.dataset,
            digest=plan.version[:36],
            source_type="dataops",
            source=json.dumps({"uri": f"dataops://{plan.dataset}@{plan.version}"}),
            schema=json.dumps(schema),
            profile=json.dumps(profile),
        )
        self.client().log_inputs(
            mid, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "pull")])]
        )

    def reads_of(self, mlflow_run_id: str) -> list[t.LineageRead]:
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(t.LineageRead)
                    .where(t.LineageRead.mlflow_run_id == mlflow_run_id)
                    .order_by(t.LineageRead.id)
                )
            )

    # access ----------------------------------------------------------------------------------
    def tracked(self, s: Any, mlflow_run_id: str) -> t.TrackedRun:
        tr = s.get(t.TrackedRun, mlflow_run_id) if mlflow_run_id else None
        if tr is None:
            raise NotFound(
                f"unknown MLflow run {mlflow_run_id!r}", details={"mlflow_run_id": mlflow_run_id}
            )
        return tr

    def check_read(self, user: Principal, tr: t.TrackedRun) -> None:
        if user.kind == "run":
            if tr.run_id != user.run_id:
                raise Forbidden("a job run's token may only read its own MLflow run")
            return
        if tr.owner != user.name and not self._is_admin(user):
            raise NotFound(f"unknown MLflow run {tr.mlflow_run_id!r}")  # not revealed

    def check_write(self, user: Principal, tr: t.TrackedRun) -> None:
        """Only the run itself (a job's token) or its owner writes; admins read only."""
        if user.kind == "run":
            if tr.run_id != user.run_id:
                raise Forbidden("a job run's token may only write its own MLflow run")
        elif tr.owner != user.name:
            self.check_read(user, tr)
            raise Forbidden(f"only {tr.owner}, the owner, may write MLflow run {tr.mlflow_run_id}")
        if tr.status in ENDED:
            raise Conflict(
                f"MLflow run {tr.mlflow_run_id} has ended ({tr.status}): nothing more can be "
                "logged to it; start a new run",
                details={"mlflow_run_id": tr.mlflow_run_id, "status": tr.status},
            )

    def readable(self, user: Principal, mlflow_run_id: str) -> t.TrackedRun:
        with self.store.session() as s:
            tr = self.tracked(s, mlflow_run_id)
        self.check_read(user, tr)
        return tr

    def writable(self, user: Principal, mlflow_run_id: str) -> t.TrackedRun:
        with self.store.session() as s:
            tr = self.tracked(s, mlflow_run_id)
        self.check_write(user, tr)
        return tr

    def job_run_of(self, run_id: str) -> str | None:
        """The MLflow run id of DataOps job run ``run_id``."""
        with self.store.session() as s:
            return s.scalar(select(t.TrackedRun.mlflow_run_id).where(t.TrackedRun.run_id == run_id))


def _fast_sqlite(client: Any) -> None:
    """WAL and ``synchronous=NORMAL`` for the embedded store, as for the metadata store:
    a commit no longer waits for the disk (a dozen commits make one job run's record), and
    readers (the UI, the CLI) do not block writers. A crash loses at most the last commits,
    never the database."""
    from sqlalchemy import event

    engine = getattr(getattr(client._tracking_client, "store", None), "engine", None)
    if engine is None:
        return

    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # connections opened before the listener get the pragmas too


def _tags(d: dict[str, str]) -> list[Any]:
    from mlflow.entities import RunTag

    return [RunTag(k, v) for k, v in d.items()]


def check_user_tags(keys: list[str]) -> None:
    reserved = sorted(k for k in keys if k.startswith(RESERVED))
    if reserved:
        raise Forbidden(
            f"tags starting with {RESERVED!r} are the platform's: {', '.join(reserved)}",
            details={"tags": reserved},
        )


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def temp_copy(data: bytes, name: str) -> Path:
    """``data`` in a fresh temporary directory, as a file called ``name`` (MLflow logs a
    file under its own name)."""
    d = Path(tempfile.mkdtemp(prefix="dataops-artifact-"))
    safe = os.path.basename(name) or "artifact"
    if safe in (".", ".."):
        raise InvalidRequest(f"invalid artifact name {name!r}")
    p = d / safe
    p.write_bytes(data)
    return p
