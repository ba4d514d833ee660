"""ORM tables. Every table is prefixed ``dops_`` so the store can share a database with
other tools (MLflow, for one, has its own ``runs`` and ``alembic_version`` tables).

Changing a table needs a new Alembic revision in ``alembic/versions``; a test compares these
models with the migrated schema and fails on any difference.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime}


class Dataset(Base):
    __tablename__ = "dops_datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    title: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(128))
    # "config": declared in dataops.yaml (the file wins); "api": registered by its owner.
    origin: Mapped[str] = mapped_column(String(16), default="api")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    columns: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DatasetVersion(Base):
    """One observed state of a dataset's data, identified by its content fingerprint."""

    __tablename__ = "dops_dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("dops_datasets.id", ondelete="CASCADE"), index=True
    )
    fingerprint: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    schema: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(Base):
    """Append-only: every read, preview and denial. Never updated, never deleted by the app."""

    __tablename__ = "dops_audit_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    scope: Mapped[str] = mapped_column(String(64), default="user")
    # read | preview | denied reads; job.create | job.update | job.delete | run.submit | ...
    action: Mapped[str] = mapped_column(String(32))
    # The person who acted when ``user`` is not one: the member behind a group's job run.
    actor: Mapped[str | None] = mapped_column(String(128))
    target: Mapped[str | None] = mapped_column(String(256))  # job:<name>, run:<id>
    dataset: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str | None] = mapped_column(String(64))
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    filter: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    decision: Mapped[str] = mapped_column(String(16))  # allowed | denied | error
    reason: Mapped[str] = mapped_column(Text, default="")
    masked: Mapped[list[str]] = mapped_column(JSON, default=list)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)


class JobDefinition(Base):
    """A notebook made into a production job: defaults, schedule, limits, owner."""

    __tablename__ = "dops_job_definitions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    notebook_path: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(128))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kernel_name: Mapped[str] = mapped_column(String(128), default="python3")
    executor: Mapped[str] = mapped_column(String(32), default="local")
    schedule: Mapped[str | None] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    timeout_s: Mapped[float | None] = mapped_column(Float)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_backoff_s: Mapped[float] = mapped_column(Float, default=30.0)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    output_formats: Mapped[list[str]] = mapped_column(JSON, default=list)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # Fire times missed while no scheduler ran: "once" runs the latest of them, "skip" none.
    catchup: Mapped[str] = mapped_column(String(8), default="once")
    # {"on": [...], "webhooks": [...], "emails": [...]} (models.NotifySettings), or None.
    notify: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The job keeps its own copy of the notebook (uploaded; team mode), not a workspace file.
    stored_notebook: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ScheduleFire(Base):
    """One fire time of a schedule, claimed by the scheduler that inserted it (exactly once:
    the unique constraint makes every other scheduler's insert fail)."""

    __tablename__ = "dops_schedule_fires"
    __table_args__ = (UniqueConstraint("job_id", "fire_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("dops_job_definitions.id", ondelete="CASCADE"))
    fire_time: Mapped[datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(512), default="")
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(Base):
    """One execution, with immutable inputs (notebook hash, parameters, kernel, trigger)."""

    __tablename__ = "dops_runs"
    __table_args__ = (UniqueConstraint("owner", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("dops_job_definitions.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    owner: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    notebook_path: Mapped[str] = mapped_column(Text, default="")
    notebook_hash: Mapped[str] = mapped_column(String(64), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kernel_name: Mapped[str] = mapped_column(String(128), default="python3")
    executor: Mapped[str] = mapped_column(String(32), default="local")
    trigger: Mapped[str] = mapped_column(String(16), default="api")  # user|api|schedule|retry
    triggered_by: Mapped[str] = mapped_column(String(128), default="")
    retry_of: Mapped[str | None] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    timeout_s: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Which server (host and workspace) queued it: the one that runs and recovers it.
    host: Mapped[str] = mapped_column(String(512), default="")
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())  # retry back-off


class Notification(Base):
    """One delivery of a run's notification (a webhook or an e-mail) and its outcome."""

    __tablename__ = "dops_notifications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(ForeignKey("dops_runs.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(String(32))  # kept when the job is deleted
    channel: Mapped[str] = mapped_column(String(16))  # webhook | email
    target: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(16))  # success | failure
    status: Mapped[str] = mapped_column(String(16))  # sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Dashboard(Base):
    """A published view of a job's results: ``name`` is its slug, stable in its URL.

    Its source is always a job definition (a notebook published directly gets one of its
    own), so a dashboard shows that job's latest successful run and is re-rendered when a
    new run succeeds: the schedule is the refresh.
    """

    __tablename__ = "dops_dashboards"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    owner: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    title: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str] = mapped_column(String(64), default="lab")
    source: Mapped[str] = mapped_column(String(16), default="job")  # job | notebook
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("dops_job_definitions.id", ondelete="SET NULL"), index=True
    )
    # {"users": [...], "groups": [...]}: who may view, besides its owner and admins.
    viewers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    live: Mapped[bool] = mapped_column(Boolean, default=False)  # the live view is offered
    published_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DashboardRender(Base):
    """One run of a dashboard's job rendered as its published view (or why it could not be)."""

    __tablename__ = "dops_dashboard_renders"
    __table_args__ = (UniqueConstraint("dashboard_id", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dashboard_id: Mapped[str] = mapped_column(
        ForeignKey("dops_dashboards.id", ondelete="CASCADE"), index=True
    )
    run_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # rendered | failed
    error: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer, default=0)
    thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    rendered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ShareLink(Base):
    """A revocable, expiring link to one dashboard for someone without an account.

    Only the SHA-256 of its secret is kept; the secret itself is shown once, to its owner.
    """

    __tablename__ = "dops_share_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dashboard_id: Mapped[str] = mapped_column(
        ForeignKey("dops_dashboards.id", ondelete="CASCADE"), index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(256), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DashboardSubscription(Base):
    """A viewer who gets an e-mail (with the PDF when available) for each new render."""

    __tablename__ = "dops_dashboard_subscriptions"
    __table_args__ = (UniqueConstraint("dashboard_id", "user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dashboard_id: Mapped[str] = mapped_column(
        ForeignKey("dops_dashboards.id", ondelete="CASCADE"), index=True
    )
    user: Mapped[str] = mapped_column(String(128))
    email: Mapped[str] = mapped_column(String(320))
    pdf: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrackedRun(Base):
    """An MLflow run this platform created: whose it is and what it tracks.

    MLflow keeps the run itself (params, metrics, artifacts); this row is what access checks
    and lineage need without asking MLflow: the owner, the job run it tracks (when a job's),
    and whether it is still running.
    """

    __tablename__ = "dops_tracked_runs"

    mlflow_run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(String(64), index=True)
    experiment_name: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="job")  # job | interactive
    run_id: Mapped[str | None] = mapped_column(String(32), index=True)  # the job run's id
    kernel_id: Mapped[str | None] = mapped_column(String(64), index=True)  # a notebook's kernel
    notebook_path: Mapped[str] = mapped_column(Text, default="")
    notebook_hash: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")  # MLflow's RunStatus
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LineageRead(Base):
    """One governed read made inside a tracked run: which dataset version it read, how."""

    __tablename__ = "dops_lineage_reads"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    mlflow_run_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(128))
    dataset: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(64))
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    filter: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FileFingerprint(Base):
    """The content digest of one file, valid while the file's identity is unchanged.

    The identity is what ``stat`` says (device, inode, size, mtime and ctime): ``touch``
    changes it, so the file is hashed again and keeps its digest; any write changes ctime,
    so a rewrite of the same size and mtime is hashed again too.
    """

    __tablename__ = "dops_file_fingerprints"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    identity: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(64))
    hashed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
