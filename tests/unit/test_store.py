from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from jupyter_dataops.exceptions import InvalidRequest
from jupyter_dataops.store import Store
from jupyter_dataops.store.migrate import VERSION_TABLE, head_revision
from jupyter_dataops.store.tables import Base, Dataset


def _diff(store: Store) -> list:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    return [d for d in diff if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]


def test_empty_store_upgrades_to_head_and_matches_models(store_url):
    store = Store(store_url)
    try:
        assert store.revision() is None
        assert store.migrate() == head_revision()
        assert store.revision() == head_revision()
        assert _diff(store) == []  # migrations and ORM models agree
        assert store.migrate() == head_revision()  # idempotent
    finally:
        store.close()


def test_sqlite_store_uses_wal(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'd' / 'x.db'}")
    try:
        store.migrate()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()


def test_failed_transaction_writes_nothing(store_url):
    store = Store(store_url)
    try:
        store.migrate()
        with pytest.raises(sa.exc.IntegrityError), store.session() as s:
            s.add(Dataset(name="a", owner="ada"))
            s.flush()
            s.add(Dataset(name="a", owner="bob"))  # duplicate name
        with store.session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Dataset)) == 0
    finally:
        store.close()


@pytest.mark.postgres
def test_concurrent_migrations_on_postgres(pg_url):
    """Several servers starting at once on one PostgreSQL store migrate it exactly once."""
    stores = [Store(pg_url) for _ in range(3)]
    results: list[str] = []
    errors: list[BaseException] = []

    def go(s: Store) -> None:
        try:
            results.append(s.migrate())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert results == [head_revision()] * 3
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize("url", ["mysql://x@h/db", "not a url", "oracle://u@h/x"])
def test_unsupported_store_urls_get_clear_errors(url):
    with pytest.raises(InvalidRequest, match=r"db_url|unsupported"):
        Store(url)


def test_times_come_back_in_utc(store_url):
    """SQLite hands back naive datetimes; the store makes them aware UTC everywhere."""
    store = Store(store_url)
    try:
        store.migrate()
        with store.session() as s:
            s.add(Dataset(name="a", owner="ada"))
        with store.session() as s:
            row = s.scalar(sa.select(Dataset))
            assert row.created_at.utcoffset() is not None
            assert row.created_at.utcoffset().total_seconds() == 0
    finally:
        store.close()
