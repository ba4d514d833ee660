"""Alembic environment: always handed a live connection by ``store.migrate``."""

from __future__ import annotations

from alembic import context

from jupyter_dataops.store.migrate import VERSION_TABLE
from jupyter_dataops.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through jupyter_dataops.store.migrate.upgrade")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
