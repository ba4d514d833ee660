"""Initial store: datasets, job definitions, runs, dashboards.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "dops_datasets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        *_timestamps(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dops_datasets"),
        sa.UniqueConstraint("name", name="uq_dops_datasets_name"),
    )
    op.create_table(
        "dops_job_definitions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("notebook_path", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        *_timestamps(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dops_job_definitions"),
        sa.UniqueConstraint("name", name="uq_dops_job_definitions_name"),
    )
    op.create_table(
        "dops_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["dops_job_definitions.id"],
            name="fk_dops_runs_job_id_dops_job_definitions",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dops_runs"),
    )
    op.create_index("ix_dops_runs_job_id", "dops_runs", ["job_id"])
    op.create_table(
        "dops_dashboards",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_dops_dashboards"),
        sa.UniqueConstraint("name", name="uq_dops_dashboards_name"),
    )


def downgrade() -> None:
    op.drop_table("dops_dashboards")
    op.drop_index("ix_dops_runs_job_id", table_name="dops_runs")
    op.drop_table("dops_runs")
    op.drop_table("dops_job_definitions")
    op.drop_table("dops_datasets")
