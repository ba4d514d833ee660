"""The server's side of the kernel's logging spool (see client/tracking.py).

A kernel appends every value it logs to a spool file before the call returns, and sends
batches from it; ``<file>.sent`` holds how far it got. When a job run ends, the server sends
what its kernel had not (the kernel may have died after the call returned): nothing logged is
lost. Re-sending is harmless: MLflow keeps one copy of a metric value with the same key,
step, timestamp and value, and parameters and tags are set to the same value again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
BATCH = 1000  # MLflow's limit of entities per log_batch


def pending(path: Path) -> list[dict[str, Any]]:
    """The records of spool file ``path`` after its sent offset (whole lines only)."""
    try:
        offset = int((path.with_name(path.name + ".sent")).read_text() or 0)
    except (FileNotFoundError, ValueError):
        offset = 0
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    records = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # the kernel died in the middle of this line: it never returned
    return records


def to_entities(records: list[dict[str, Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    from mlflow.entities import Metric, Param, RunTag

    metrics, params, tags = [], [], []
    for r in records:
        kind = r.get("t")
        if kind == "m":
            metrics.append(Metric(r["k"], float(r["v"]), int(r["ts"]), int(r.get("s") or 0)))
        elif kind == "p":
            params.append(Param(r["k"], str(r["v"])))
        elif kind == "g":
            tags.append(RunTag(r["k"], str(r["v"])))
    return metrics, params, tags


def log_records(client: Any, mlflow_run_id: str, records: list[dict[str, Any]]) -> None:
    """``records`` into the run, in batches MLflow accepts."""
    metrics, params, tags = to_entities(records)
    # Parameters first, and one parameter once per batch: MLflow refuses a batch that
    # repeats one.
    seen: dict[str, Any] = {}
    for p in params:
        seen[p.key] = p
    params = list(seen.values())
    for i in range(0, len(params), 100):
        client.log_batch(mlflow_run_id, params=params[i : i + 100])
    for i in range(0, len(tags), 100):
        client.log_batch(mlflow_run_id, tags=tags[i : i + 100])
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if metrics and type(store).__name__ == "SqlAlchemyStore":
        try:
            bulk_insert_metrics(store, mlflow_run_id, metrics)
            return
        except Exception as e:
            from mlflow.exceptions import MlflowException

            if isinstance(e, MlflowException):
                raise  # an invalid value, an ended run: what log_batch would say
            # Anything else (a store of another MLflow version): the API's way below.
            log.debug("DataOps: bulk metric insert failed; using log_batch", exc_info=True)
    for i in range(0, len(metrics), BATCH):
        client.log_batch(mlflow_run_id, metrics=metrics[i : i + BATCH])


def bulk_insert_metrics(store: Any, run_id: str, metrics: list[Any]) -> None:
    """Metric values into a SQL MLflow store in one transaction and two statements.

    MLflow's log_batch takes 1,000 values a call and builds an ORM object for each (about
    0.1 s per 1,000 here); this inserts the same rows into the same tables (MLflow's own
    table objects: its ``metrics`` and ``latest_metrics``), with the same checks (each value
    valid, the run active) and the same rules (a value logged twice is kept once; a key's
    latest is the one with the highest step, then timestamp, then value). 10,000 values take
    a few tens of milliseconds.
    """
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric
    from mlflow.utils.validation import _validate_metric

    from ..store import conflict_insert

    insert = conflict_insert(store.engine.dialect.name)
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for i, m in enumerate(metrics):
        _validate_metric(m.key, m.value, m.timestamp, m.step, path=f"metrics[{i}]")
        is_nan, value = store.sanitize_metric_value(m.value)
        row = {"run_uuid": run_id, "key": m.key, "value": value, "timestamp": m.timestamp,
               "step": m.step, "is_nan": is_nan}  # fmt: skip
        rows[(m.key, m.timestamp, m.step, value, is_nan)] = row
    latest: dict[str, dict[str, Any]] = {}
    for row in rows.values():
        cur = latest.get(row["key"])
        if cur is None or _newer(row, cur):
            latest[row["key"]] = row
    try:
        writing = store.ManagedSessionMaker(read_only=False)
    except TypeError:  # MLflow before read-only sessions
        writing = store.ManagedSessionMaker()
    with writing as session:
        run = store._get_run(run_uuid=run_id, session=session)
        store._check_run_is_active(run)
        session.execute(insert(SqlMetric.__table__).on_conflict_do_nothing(), list(rows.values()))
        keys = sorted(latest)
        for i in range(0, len(keys), 500):
            existing = {
                x.key: x
                for x in session.query(SqlLatestMetric).filter(
                    SqlLatestMetric.run_uuid == run_id, SqlLatestMetric.key.in_(keys[i : i + 500])
                )
            }
            for key in keys[i : i + 500]:
                new, old = latest[key], existing.get(key)
                if old is None:
                    session.add(SqlLatestMetric(**new))
                elif _newer(new, {"step": old.step, "timestamp": old.timestamp,
                                  "value": old.value}):  # fmt: skip
                    old.value, old.timestamp = new["value"], new["timestamp"]
                    old.step, old.is_nan = new["step"], new["is_nan"]


def _newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["step"], a["timestamp"], a["value"]) > (b["step"], b["timestamp"], b["value"])


def replay(tracking: Any, mlflow_run_id: str, spool_dir: Path) -> int:
    """Send what the run's kernel spooled and did not send; returns how many records."""
    if not spool_dir.is_dir():
        return 0
    sent = 0
    for path in sorted(spool_dir.glob(f"{mlflow_run_id}.*.jsonl")):
        try:
            records = pending(path)
            if records:
                log_records(tracking.client(), mlflow_run_id, records)
                sent += len(records)
            path.with_name(path.name + ".sent").write_text(str(path.stat().st_size))
        except Exception:
            log.warning("DataOps: could not replay the spool %s", path, exc_info=True)
    return sent
