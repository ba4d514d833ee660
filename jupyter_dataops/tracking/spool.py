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
    for i in range(0, len(metrics), BATCH):
        client.log_batch(mlflow_run_id, metrics=metrics[i : i + BATCH])


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
