"""Tracking: the MLflow runs of the platform, the reads made in them, file content digests.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dops_tracked_runs",
        sa.Column("mlflow_run_id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.String(64), nullable=False),
        sa.Column("experiment_name", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("kernel_id", sa.String(64), nullable=True),
        sa.Column("notebook_path", sa.Text(), nullable=False),
        sa.Column("notebook_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("mlflow_run_id", name="pk_dops_tracked_runs"),
    )
    for col in ("experiment_id", "owner", "run_id", "kernel_id"):
        op.create_index(f"ix_dops_tracked_runs_{col}", "dops_tracked_runs", [col])
    op.create_table(
        "dops_lineage_reads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("mlflow_run_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("filter", sa.Text(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dops_lineage_reads"),
    )
    for col in ("mlflow_run_id", "dataset"):
        op.create_index(f"ix_dops_lineage_reads_{col}", "dops_lineage_reads", [col])
    op.create_table(
        "dops_file_fingerprints",
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("identity", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("hashed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_dops_file_fingerprints"),
    )


def downgrade() -> None:
    op.drop_table("dops_file_fingerprints")
    for col in ("mlflow_run_id", "dataset"):
        op.drop_index(f"ix_dops_lineage_reads_{col}", table_name="dops_lineage_reads")
    op.drop_table("dops_lineage_reads")
    for col in ("experiment_id", "owner", "run_id", "kernel_id"):
        op.drop_index(f"ix_dops_tracked_runs_{col}", table_name="dops_tracked_runs")
    op.drop_table("dops_tracked_runs")
