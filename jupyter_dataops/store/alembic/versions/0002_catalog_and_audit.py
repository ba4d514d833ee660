"""Catalog metadata, dataset versions and the audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dops_datasets") as b:
        b.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="api"))
        b.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        b.add_column(sa.Column("source", sa.JSON(), nullable=False, server_default="{}"))
        b.add_column(sa.Column("columns", sa.JSON(), nullable=False, server_default="{}"))
        b.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    # The defaults only filled existing rows; the app always writes these columns.
    with op.batch_alter_table("dops_datasets") as b:
        for name in ("origin", "tags", "source", "columns"):
            b.alter_column(name, server_default=None)

    op.create_table(
        "dops_dataset_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("schema", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dops_datasets.id"],
            name="fk_dops_dataset_versions_dataset_id_dops_datasets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dops_dataset_versions"),
        sa.UniqueConstraint(
            "dataset_id", "fingerprint", name="uq_dops_dataset_versions_dataset_id"
        ),
    )
    op.create_index("ix_dops_dataset_versions_dataset_id", "dops_dataset_versions", ["dataset_id"])

    op.create_table(
        "dops_audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("filter", sa.Text(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("masked", sa.JSON(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dops_audit_events"),
    )
    op.create_index("ix_dops_audit_events_at", "dops_audit_events", ["at"])
    op.create_index("ix_dops_audit_events_user", "dops_audit_events", ["user"])
    op.create_index("ix_dops_audit_events_dataset", "dops_audit_events", ["dataset"])


def downgrade() -> None:
    op.drop_table("dops_audit_events")
    op.drop_table("dops_dataset_versions")
    with op.batch_alter_table("dops_datasets") as b:
        for name in ("retired_at", "columns", "source", "tags", "origin"):
            b.drop_column(name)
