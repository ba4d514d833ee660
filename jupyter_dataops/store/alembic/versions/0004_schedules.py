"""Schedules: a definition's catch-up policy and the fire times claimed so far.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dops_job_definitions") as b:
        b.add_column(
            sa.Column("catchup", sa.String(8), nullable=False, server_default=sa.text("'once'"))
        )
    with op.batch_alter_table("dops_job_definitions") as b:
        b.alter_column("catchup", server_default=None)

    op.create_table(
        "dops_schedule_fires",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("fire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("host", sa.String(512), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["dops_job_definitions.id"],
            name="fk_dops_schedule_fires_job_id_dops_job_definitions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dops_schedule_fires"),
        # Inserting the row is the claim: one process wins each (job, fire time).
        sa.UniqueConstraint("job_id", "fire_time", name="uq_dops_schedule_fires_job_id"),
    )


def downgrade() -> None:
    op.drop_table("dops_schedule_fires")
    with op.batch_alter_table("dops_job_definitions") as b:
        b.drop_column("catchup")
