"""The metadata store: SQLAlchemy 2 models, engine set-up and Alembic migrations."""

from .db import Store, redact_url

__all__ = ["Store", "redact_url"]
