"""Tracking from a notebook: ``dops.run``, ``dops.log_metric`` and friends (stdlib only).

Fast and lossless: a logged value is appended to a spool file (one JSON line, written to the
operating system before the call returns, so it survives the kernel's death) and to a batch
that a background thread sends at least every second, when it holds 1,000 values, when the
run ends and when the kernel exits. ``<spool>.sent`` records how far the sending got; what a
dead kernel had not sent is sent by the next kernel of yours that tracks anything (or, for a
job run, by the server when the run ends). A training loop pays microseconds per value, not
an HTTP and SQL round-trip.

In a job run, the job's MLflow run is the current run from the start: ``dops.log_metric``
(and plain ``mlflow.log_metric``) log into it, and ``dops.run(...)`` returns it.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

FLUSH_EVERY_S = 1.0
BATCH = 1000
JOB_RUN_ENV = "DATAOPS_MLFLOW_RUN_ID"
SPOOL_ENV = "DATAOPS_SPOOL_DIR"
ENDED = ("FINISHED", "FAILED", "KILLED")


def _client() -> Any:
    from . import connect

    return connect()


def _error(message: str, code: str = "run_ended") -> Exception:
    from . import DataOpsClientError

    return DataOpsClientError(message, code=code)


def spool_dir() -> Path:
    given = os.environ.get(SPOOL_ENV)
    if given:
        d = Path(given)
    else:
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        d = Path(tempfile.gettempdir()) / f"jupyter-dataops-spool-{uid}"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Spool:
    """One run's spool file of this process."""

    def __init__(self, run_id: str) -> None:
        self.path = spool_dir() / f"{run_id}.{os.getpid()}.jsonl"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.written = os.fstat(self.fd).st_size
        self.sent = self.written

    def append(self, data: bytes) -> int:
        os.write(self.fd, data)  # in the OS's hands when this returns: a kernel crash keeps it
        self.written += len(data)
        return self.written

    def mark_sent(self, offset: int) -> None:
        if offset > self.sent:
            self.sent = offset
            tmp = self.path.with_name(self.path.name + ".sent.tmp")
            tmp.write_text(str(offset))
            os.replace(tmp, self.path.with_name(self.path.name + ".sent"))

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        if self.sent >= self.written:  # everything is in MLflow: nothing to keep
            for p in (self.path, self.path.with_name(self.path.name + ".sent")):
                p.unlink(missing_ok=True)


class Logger:
    """This kernel's batches: records per run, sent by one background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the pending batches
        self._send_lock = threading.Lock()  # one send at a time, in order
        self._pending: dict[str, list[tuple[bytes, int]]] = {}
        self._count = 0
        self._spools: dict[str, _Spool] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors: dict[str, Exception] = {}
        self._pid = os.getpid()
        atexit.register(self.flush)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, daemon=True, name="dataops-log")
            self._thread.start()

    def log(self, run_id: str, records: list[dict[str, Any]]) -> None:
        err = self._errors.get(run_id)
        if err is not None:
            raise err
        with self._lock:
            spool = self._spools.get(run_id)
            if spool is None:
                spool = self._spools[run_id] = _Spool(run_id)
            batch = self._pending.setdefault(run_id, [])
            for rec in records:
                line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
                batch.append((line, spool.append(line)))
            self._count += len(records)
            full = self._count >= BATCH
        self._ensure_thread()
        if full:
            self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                pass  # kept in the spool; the next flush (or the server) sends it

    def flush(self, run_id: str | None = None) -> None:
        """Send what is pending now (of ``run_id``, or of every run); raises what the
        server said when it refused a batch."""
        with self._send_lock:
            with self._lock:
                if run_id is None:
                    taken, self._pending = self._pending, {}
                    self._count = 0
                else:
                    taken = {run_id: self._pending.pop(run_id, [])}
                    self._count -= len(taken[run_id])
            failed: Exception | None = None
            for rid, batch in taken.items():
                for i in range(0, len(batch), BATCH * 10):
                    part = batch[i : i + BATCH * 10]
                    if not part:
                        continue
                    body = b'{"records":[' + b",".join(line[:-1] for line, _ in part) + b"]}"
                    try:
                        _client().request_raw("POST", f"tracking/runs/{rid}/log", body)
                    except Exception as e:
                        if getattr(e, "status", None) in (403, 404, 409, 400):
                            self._errors[rid] = e  # it will never be accepted: say so
                            failed = failed or e
                            break
                        with self._lock:  # unreachable: retried with the next flush
                            self._pending[rid] = (
                                part + batch[i + BATCH * 10 :] + self._pending.get(rid, [])
                            )
                            self._count += len(batch) - i
                        failed = failed or e
                        break
                    self._spools[rid].mark_sent(part[-1][1])
            if failed is not None and run_id is not None:
                raise failed

    def close_run(self, run_id: str) -> None:
        self.flush(run_id)
        with self._lock:
            spool = self._spools.pop(run_id, None)
        if spool is not None:
            spool.close()


_logger: Logger | None = None
_logger_lock = threading.Lock()


def logger() -> Logger:
    global _logger
    with _logger_lock:
        if _logger is None:
            _logger = Logger()
            _recover_orphans()
        return _logger


def _recover_orphans() -> None:
    """Send what dead kernels of yours spooled and did not send, and end their runs FAILED
    (their kernel died inside them)."""
    try:
        files = sorted(spool_dir().glob("*.jsonl"))
    except OSError:
        return
    for path in files:
        run_id, _, rest = path.name.partition(".")
        pid_text = rest.split(".")[0]
        if not pid_text.isdigit() or _alive(int(pid_text)) or run_id == os.environ.get(JOB_RUN_ENV):
            continue
        threading.Thread(
            target=_send_orphan, args=(path, run_id), daemon=True, name="dataops-recover"
        ).start()


def _send_orphan(path: Path, run_id: str) -> None:
    sent_path = path.with_name(path.name + ".sent")
    try:
        offset = int(sent_path.read_text() or 0) if sent_path.exists() else 0
        data = path.read_bytes()[offset:]
        lines = [ln for ln in data.split(b"\n") if ln.strip()]
        good = []
        for ln in lines:
            try:
                json.loads(ln)
                good.append(ln)
            except ValueError:
                pass
        c = _client()
        if good:
            c.request_raw(
                "POST", f"tracking/runs/{run_id}/log", b'{"records":[' + b",".join(good) + b"]}"
            )
        try:
            c.request("POST", f"tracking/runs/{run_id}/end", {"status": "FAILED"})
        except Exception:
            pass  # a job's run (the server ends it), or ended already
    except Exception as e:
        if getattr(e, "status", None) not in (403, 404, 409):
            return  # the server is unreachable: try again from the next kernel
    for p in (path, sent_path):
        p.unlink(missing_ok=True)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _value(v: Any) -> Any:
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    try:
        return json.dumps(v, default=str)
    except Exception:
        return str(v)


def notebook() -> tuple[str, str]:
    """This kernel's notebook (JupyterLab gives kernels JPY_SESSION_NAME) and the sha256 of
    its saved file, when it can be read from here."""
    name = os.environ.get("JPY_SESSION_NAME", "")
    if not name:
        return "", ""
    candidates = [Path(name)] if os.path.isabs(name) else [Path.cwd() / Path(name).name]
    for p in candidates:
        try:
            return name, hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:
            continue
    return name, ""


class Run:
    """An MLflow run you log into; ``with dops.run(...) as run:`` ends it.

    Example::

        with dops.run("tuning", params={"alpha": 0.1}) as run:
            for step in range(100):
                run.log_metric("loss", 1 / (step + 1), step=step)
        run.id, run.status
    """

    def __init__(self, info: dict[str, Any], *, job: bool = False) -> None:
        self.info = info
        self.id: str = info["mlflow_run_id"]
        self.experiment: str = info.get("experiment", "")
        self.status: str = info.get("status", "RUNNING")
        self.job = job  # a job run's: the server ends it

    def __repr__(self) -> str:
        return f"<dops.Run {self.id} {self.experiment!r} {self.status}>"

    def _check(self) -> None:
        if self.status in ENDED:
            raise _error(
                f"run {self.id} of {self.experiment!r} has ended ({self.status}): nothing "
                "more can be logged to it; start a new one with dops.run(...)"
            )

    def _log(self, records: list[dict[str, Any]]) -> None:
        self._check()
        logger().log(self.id, records)

    def log_param(self, key: str, value: Any) -> None:
        self._log([{"t": "p", "k": key, "v": _value(value)}])

    def log_params(self, params: dict[str, Any]) -> None:
        self._log([{"t": "p", "k": k, "v": _value(v)} for k, v in params.items()])

    def set_tag(self, key: str, value: Any) -> None:
        self._log([{"t": "g", "k": key, "v": str(value)}])

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self._log([{"t": "m", "k": key, "v": float(value), "ts": _now_ms(), "s": step or 0}])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        ts = _now_ms()
        self._log(
            [
                {"t": "m", "k": k, "v": float(v), "ts": ts, "s": step or 0}
                for k, v in metrics.items()
            ]
        )

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Upload a file into the run's artifacts (sent at once, not batched)."""
        self._check()
        p = Path(path)
        rel = "/".join(x for x in (artifact_path or "").strip("/").split("/") if x)
        target = f"{rel}/{p.name}" if rel else p.name
        quoted = urllib.parse.quote(f"runs/{self.id}/artifacts/{target}")
        _client().request_raw(
            "PUT", f"mlflow/api/2.0/mlflow-artifacts/artifacts/{quoted}", p.read_bytes(),
            content_type="application/octet-stream",
        )  # fmt: skip

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """A matplotlib (``savefig``) or plotly (``write_html``/``write_image``) figure."""
        self._check()
        with tempfile.TemporaryDirectory(prefix="dataops-figure-") as d:
            path = Path(d) / Path(artifact_file).name
            if hasattr(figure, "savefig"):
                figure.savefig(path)
            elif path.suffix == ".html" and hasattr(figure, "write_html"):
                figure.write_html(str(path))
            elif hasattr(figure, "write_image"):
                figure.write_image(str(path))
            else:
                raise TypeError(f"cannot save a {type(figure).__name__} figure")
            self.log_artifact(path, str(Path(artifact_file).parent).strip("."))

    def flush(self) -> None:
        logger().flush(self.id)

    def end(self, status: str = "FINISHED") -> None:
        """Send what is pending and end the run (a job's run ends with its job run)."""
        if self.status in ENDED:
            return
        logger().close_run(self.id)
        if self.job:
            return
        self.info = _client().request("POST", f"tracking/runs/{self.id}/end", {"status": status})
        self.status = self.info["status"]
        # It stays the current run: logging into it now says that it has ended.

    def __enter__(self) -> Run:
        return self

    def __exit__(self, typ: Any, exc: Any, tb: Any) -> None:
        if self.job:
            self.flush()
            return
        status = "FINISHED"
        if typ is not None:
            status = "KILLED" if issubclass(typ, KeyboardInterrupt) else "FAILED"
        self.end(status)


_active: Run | None = None


def _job_run() -> Run | None:
    mid = os.environ.get(JOB_RUN_ENV)
    if not mid:
        return None
    return Run({"mlflow_run_id": mid, "status": "RUNNING", "experiment": ""}, job=True)


def active_run() -> Run | None:
    """The run ``dops.log_*`` log into: the innermost ``dops.run``, or the job's run."""
    global _active
    if _active is None or _active.status in ENDED:
        if _active is not None and _active.status in ENDED and not _active.job:
            return _active  # so that logging says it has ended
        _active = _job_run()
    return _active


def run(
    experiment: str,
    params: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    tags: dict[str, str] | None = None,
) -> Run:
    """Start an MLflow run in ``experiment`` (created when new) and make it the current one.

    The notebook's path and content hash are recorded with it, and every governed
    ``dops.pull`` made while it is current is logged as one of its dataset inputs. In a job,
    it returns the job's own run (with ``params`` logged into it).

    Example::

        with dops.run("tuning", params={"alpha": 0.1}) as run:
            df = dops.pull("flights")
            dops.log_metric("rmse", 3.2)
    """
    global _active
    job = _job_run()
    if job is not None:
        if params:
            job.log_params(params)
        _active = job
        return job
    path, digest = notebook()
    info = _client().request(
        "POST",
        "tracking/runs",
        {
            "experiment": experiment,
            "run_name": name,
            "params": {k: _value(v) for k, v in (params or {}).items()},
            "tags": tags or {},
            "notebook_path": path,
            "notebook_hash": digest,
        },
    )
    _active = Run(info)
    logger()  # recovers what dead kernels left unsent
    return _active


def _current() -> Run:
    r = active_run()
    if r is None:
        raise _error(
            "no current run: log inside `with dops.run('experiment'):` (in a job, the job's "
            "run is current)",
            code="no_run",
        )
    return r


def log_param(key: str, value: Any) -> None:
    """Log a parameter into the current run. Example: ``dops.log_param("alpha", 0.1)``."""
    _current().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    """Log several parameters. Example: ``dops.log_params({"alpha": 0.1, "depth": 3})``."""
    _current().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric value (batched: microseconds a call). Example::

    for step in range(100):
        dops.log_metric("loss", 1 / (step + 1), step=step)
    """
    _current().log_metric(key, value, step)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log several metrics at one step. Example: ``dops.log_metrics({"p": 0.9, "r": 0.8})``."""
    _current().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    """Tag the current run. Example: ``dops.set_tag("model", "ridge")``."""
    _current().set_tag(key, value)


def log_artifact(path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Upload a file into the current run. Example: ``dops.log_artifact("model.pkl")``."""
    _current().log_artifact(path, artifact_path)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Save a matplotlib or plotly figure into the current run.

    Example: ``dops.log_figure(fig, "plots/loss.png")``.
    """
    _current().log_figure(figure, artifact_file)


def flush() -> None:
    """Send every value logged so far now (it is sent within a second anyway)."""
    logger().flush()


def compare(experiment: str, filter: str | None = None, order_by: str | None = None) -> Any:
    """The runs of ``experiment`` you may see, as a DataFrame: one row a run, its params and
    metrics as ``params.*`` and ``metrics.*`` columns. ``filter`` and ``order_by`` use
    MLflow's search syntax.

    Example::

        >>> dops.compare("tuning", filter="metrics.rmse < 2", order_by="metrics.rmse ASC")
                                    run_id  ...  params.alpha  metrics.rmse
        0  5c1d...                          ...           0.2           1.5
    """
    import pandas as pd

    c = _client()
    found = c.request(
        "GET",
        f"experiments/{urllib.parse.quote(experiment, safe='')}/runs",
        params={"filter": filter, "order_by": order_by},
    )
    rows = []
    for r in found["runs"]:
        row: dict[str, Any] = {
            "run_id": r["mlflow_run_id"],
            "name": r["name"],
            "status": r["status"],
            "start_time": pd.Timestamp(r["start_time"]) if r["start_time"] else None,
            "owner": r["owner"],
            "job_run_id": r["run_id"],
        }
        row.update({f"params.{k}": v for k, v in r["params"].items()})
        row.update({f"metrics.{k}": v for k, v in r["metrics"].items()})
        rows.append(row)
    return pd.DataFrame(rows)
