"""The metadata store: SQLAlchemy 2 models, engine set-up and Alembic migrations."""

from .db import Store, conflict_insert, redact_url

__all__ = ["Store", "conflict_insert", "redact_url"]
