"""Alembic migrations shipped inside the package, run on every start."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).parent / "alembic"
VERSION_TABLE = "dops_alembic_version"
# Any constant works; it only has to be the same for every server sharing a PostgreSQL store.
PG_MIGRATION_LOCK = 7_104_221_903
# Alembic keeps the running migration in module-level proxies (alembic.op, alembic.context):
# two migrations at once in one process (ours, and MLflow's own when its store is created in
# a thread) would tear each other's state. Every migration in this process takes this lock.
ALEMBIC_LOCK = threading.RLock()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


def upgrade(engine: Engine, target: str = "head") -> str:
    """Bring the store to ``target``; safe when several servers start at once on PostgreSQL."""
    cfg = alembic_config()
    with ALEMBIC_LOCK, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Held until this transaction ends: a second server waits, then finds the
            # store already at head and does nothing.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        before = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
        command.upgrade(cfg, target)
        after = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    if before != after:
        log.info("Migrated metadata store from %s to %s", before or "empty", after)
    assert after is not None
    return after
