"""Notifications: a definition's notify settings and the outcome of every delivery.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dops_job_definitions") as b:
        b.add_column(sa.Column("notify", sa.JSON(), nullable=True))

    op.create_table(
        "dops_notifications",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["dops_runs.id"],
            name="fk_dops_notifications_run_id_dops_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dops_notifications"),
    )
    op.create_index("ix_dops_notifications_run_id", "dops_notifications", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_dops_notifications_run_id", table_name="dops_notifications")
    op.drop_table("dops_notifications")
    with op.batch_alter_table("dops_job_definitions") as b:
        b.drop_column("notify")
