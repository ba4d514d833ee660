"""Team mode: the audit log names who acted (a team's member behind a group's job) and on what;
job definitions may keep their own copy of their notebook.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dops_audit_events") as b:
        b.add_column(sa.Column("actor", sa.String(128), nullable=True))
        b.add_column(sa.Column("target", sa.String(256), nullable=True))
        b.alter_column("action", type_=sa.String(32), existing_type=sa.String(16))
    with op.batch_alter_table("dops_job_definitions") as b:
        b.add_column(
            sa.Column("stored_notebook", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("dops_job_definitions") as b:
        b.drop_column("stored_notebook")
    with op.batch_alter_table("dops_audit_events") as b:
        b.alter_column("action", type_=sa.String(16), existing_type=sa.String(32))
        b.drop_column("target")
        b.drop_column("actor")
