"""Dashboards: their source job, viewers and template; renders, share links, subscribers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dops_dashboards") as b:
        b.add_column(sa.Column("title", sa.String(256), nullable=False, server_default=""))
        b.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        b.add_column(sa.Column("template", sa.String(64), nullable=False, server_default="lab"))
        b.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="job"))
        b.add_column(sa.Column("job_id", sa.String(32), nullable=True))
        b.add_column(sa.Column("viewers", sa.JSON(), nullable=False, server_default="{}"))
        b.add_column(sa.Column("live", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("published_by", sa.String(128), nullable=False, server_default=""))
        b.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
        b.create_foreign_key(
            "fk_dops_dashboards_job_id_dops_job_definitions",
            "dops_job_definitions",
            ["job_id"],
            ["id"],
            ondelete="SET NULL",
        )
        b.create_index("ix_dops_dashboards_job_id", ["job_id"])

    op.create_table(
        "dops_dashboard_renders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dashboard_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("thumbnail", sa.Boolean(), nullable=False),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dops_dashboards.id"],
            name="fk_dops_dashboard_renders_dashboard_id_dops_dashboards",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dops_dashboard_renders"),
        sa.UniqueConstraint(
            "dashboard_id", "run_id", name="uq_dops_dashboard_renders_dashboard_id"
        ),
    )
    op.create_index(
        "ix_dops_dashboard_renders_dashboard_id", "dops_dashboard_renders", ["dashboard_id"]
    )
    op.create_table(
        "dops_share_links",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("dashboard_id", sa.String(32), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dops_dashboards.id"],
            name="fk_dops_share_links_dashboard_id_dops_dashboards",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dops_share_links"),
        sa.UniqueConstraint("token_sha256", name="uq_dops_share_links_token_sha256"),
    )
    op.create_index("ix_dops_share_links_dashboard_id", "dops_share_links", ["dashboard_id"])
    op.create_table(
        "dops_dashboard_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dashboard_id", sa.String(32), nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("pdf", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dops_dashboards.id"],
            name="fk_dops_dashboard_subscriptions_dashboard_id_dops_dashboards",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dops_dashboard_subscriptions"),
        sa.UniqueConstraint(
            "dashboard_id", "user", name="uq_dops_dashboard_subscriptions_dashboard_id"
        ),
    )
    op.create_index(
        "ix_dops_dashboard_subscriptions_dashboard_id",
        "dops_dashboard_subscriptions",
        ["dashboard_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_dops_dashboard_subscriptions_dashboard_id", table_name="dops_dashboard_subscriptions"
    )
    op.drop_table("dops_dashboard_subscriptions")
    op.drop_index("ix_dops_share_links_dashboard_id", table_name="dops_share_links")
    op.drop_table("dops_share_links")
    op.drop_index("ix_dops_dashboard_renders_dashboard_id", table_name="dops_dashboard_renders")
    op.drop_table("dops_dashboard_renders")
    with op.batch_alter_table("dops_dashboards") as b:
        b.drop_index("ix_dops_dashboards_job_id")
        b.drop_constraint("fk_dops_dashboards_job_id_dops_job_definitions", type_="foreignkey")
        for col in ("updated_at", "published_by", "live", "viewers", "job_id", "source",
                    "template", "description", "title"):  # fmt: skip
            b.drop_column(col)
