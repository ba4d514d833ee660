"""The audit log: one append-only row per read, preview and denial, and per change to a job
or run (who did it, and on whose behalf)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..identity import Principal
from ..models import AuditEventInfo, AuditPage
from ..store import Store
from ..store.tables import AuditEvent

MAX_PAGE = 1000


@dataclass
class AuditEntry:
    user: Principal
    action: str  # read | preview | job.* | run.*
    decision: str  # allowed | denied | error
    dataset: str = ""
    reason: str = ""
    version: str | None = None
    columns: Sequence[str] = ()
    filter: str | None = None
    row_count: int | None = None
    masked: Sequence[str] = field(default_factory=list)
    duration_ms: float = 0.0
    target: str | None = None


def record(store: Store, e: AuditEntry, session: Any = None) -> None:
    """Append one event (in ``session``'s transaction when given: written with the change)."""
    if session is None:
        with store.session() as s:
            record(store, e, s)
        return
    session.add(AuditEvent(
        user=e.user.name, actor=e.user.actor, scope=e.user.scope, action=e.action,
        target=e.target, dataset=e.dataset, version=e.version, columns=list(e.columns),
        filter=e.filter, row_count=e.row_count, decision=e.decision, reason=e.reason[:2000],
        masked=list(e.masked), duration_ms=round(e.duration_ms, 3),
    ))  # fmt: skip


@dataclass
class AuditQuery:
    user: str | None = None
    dataset: str | None = None
    decision: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None  # id cursor: events older than this
    limit: int = 100


def query(store: Store, q: AuditQuery) -> AuditPage:
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(min(q.limit, MAX_PAGE) + 1)
    for col, value in (
        (AuditEvent.user, q.user),
        (AuditEvent.dataset, q.dataset),
        (AuditEvent.decision, q.decision),
        (AuditEvent.action, q.action),
    ):
        if value:
            stmt = stmt.where(col == value)
    if q.since:
        stmt = stmt.where(AuditEvent.at >= q.since)
    if q.until:
        stmt = stmt.where(AuditEvent.at < q.until)
    if q.before:
        stmt = stmt.where(AuditEvent.id < q.before)
    with store.session() as s:
        rows = list(s.scalars(stmt))
    limit = min(q.limit, MAX_PAGE)
    more = len(rows) > limit
    rows = rows[:limit]
    events = [AuditEventInfo.model_validate(r, from_attributes=True) for r in rows]
    return AuditPage(events=events, next_before=rows[-1].id if more and rows else None)


CSV_FIELDS = list(AuditEventInfo.model_fields)


def to_csv(events: Sequence[AuditEventInfo]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    w.writeheader()
    for e in events:
        row = e.model_dump(mode="json")
        row["columns"] = " ".join(row["columns"])
        row["masked"] = " ".join(row["masked"])
        w.writerow(row)
    return out.getvalue()
