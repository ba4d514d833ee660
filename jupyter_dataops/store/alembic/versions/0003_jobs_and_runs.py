"""Job definitions and runs: parameters, schedule, limits, run inputs, state and outputs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_DEFINITION_COLUMNS: list[tuple[str, Any, str]] = [
    ("description", sa.Text(), "''"),
    ("parameters", sa.JSON(), "'{}'"),
    ("kernel_name", sa.String(128), "'python3'"),
    ("executor", sa.String(32), "'local'"),
    ("timezone", sa.String(64), "'UTC'"),
    ("max_retries", sa.Integer(), "0"),
    ("retry_backoff_s", sa.Float(), "30"),
    ("concurrency", sa.Integer(), "1"),
    ("tags", sa.JSON(), "'[]'"),
    ("output_formats", sa.JSON(), "'[]'"),
    ("paused", sa.Boolean(), "false"),
]
_RUN_COLUMNS: list[tuple[str, Any, str]] = [
    ("notebook_path", sa.Text(), "''"),
    ("notebook_hash", sa.String(64), "''"),
    ("parameters", sa.JSON(), "'{}'"),
    ("kernel_name", sa.String(128), "'python3'"),
    ("executor", sa.String(32), "'local'"),
    ("trigger", sa.String(16), "'api'"),
    ("triggered_by", sa.String(128), "''"),
    ("attempt", sa.Integer(), "1"),
    ("progress", sa.JSON(), "'{}'"),
    ("outputs", sa.JSON(), "'{}'"),
    ("host", sa.String(512), "''"),
]


def upgrade() -> None:
    with op.batch_alter_table("dops_job_definitions") as b:
        for name, type_, default in _DEFINITION_COLUMNS:
            b.add_column(sa.Column(name, type_, nullable=False, server_default=sa.text(default)))
        b.add_column(sa.Column("schedule", sa.String(128), nullable=True))
        b.add_column(sa.Column("timeout_s", sa.Float(), nullable=True))
    with op.batch_alter_table("dops_job_definitions") as b:
        for name, _, _ in _DEFINITION_COLUMNS:
            b.alter_column(name, server_default=None)

    with op.batch_alter_table("dops_runs") as b:
        for name, type_, default in _RUN_COLUMNS:
            b.add_column(sa.Column(name, type_, nullable=False, server_default=sa.text(default)))
        b.add_column(sa.Column("retry_of", sa.String(32), nullable=True))
        b.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        b.add_column(sa.Column("timeout_s", sa.Float(), nullable=True))
        b.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("error", sa.JSON(), nullable=True))
        b.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        b.create_index("ix_dops_runs_status", ["status"])
        b.create_unique_constraint("uq_dops_runs_owner", ["owner", "idempotency_key"])
    with op.batch_alter_table("dops_runs") as b:
        for name, _, _ in _RUN_COLUMNS:
            b.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("dops_runs") as b:
        b.drop_constraint("uq_dops_runs_owner", type_="unique")
        b.drop_index("ix_dops_runs_status")
        for name in (
            "error",
            "finished_at",
            "started_at",
            "timeout_s",
            "idempotency_key",
            "retry_of",
            *(c[0] for c in _RUN_COLUMNS),
        ):
            b.drop_column(name)
    with op.batch_alter_table("dops_job_definitions") as b:
        for name in ("timeout_s", "schedule", *(c[0] for c in _DEFINITION_COLUMNS)):
            b.drop_column(name)
