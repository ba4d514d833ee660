"""Engine set-up and the thread pool that keeps store calls off the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..exceptions import InvalidRequest, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


def parse_url(url: str) -> URL:
    """Parse a store URL; plain ``postgresql://`` means the psycopg 3 driver."""
    try:
        u = make_url(url)
    except ArgumentError as e:
        raise InvalidRequest(f"invalid db_url {url!r}: {e}") from None
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidRequest(
            f"unsupported metadata store {u.get_backend_name()!r}: use sqlite:// or postgresql://"
        )
    return u


def conflict_insert(dialect: str) -> Any:
    """The ``insert`` of SQLite or PostgreSQL, whose statements take ``ON CONFLICT`` clauses
    (``on_conflict_do_nothing``, ``on_conflict_do_update``); NotImplementedError for others."""
    from sqlalchemy.dialects import postgresql, sqlite

    inserts: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    if dialect not in inserts:
        raise NotImplementedError(dialect)
    return inserts[dialect]


def redact_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``."""
    u = url if isinstance(url, URL) else make_url(url)
    return u.render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (the UI, the CLI) run while a job writes; the busy timeout makes
    # concurrent writers wait instead of failing with "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def create_store_engine(url: str) -> Engine:
    u = parse_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            u, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(u, pool_pre_ping=True, pool_size=5, max_overflow=5)
    return engine


class Store:
    """One metadata store: an engine, a session factory and a small thread pool."""

    def __init__(self, url: str, *, threads: int = 4) -> None:
        self.url = parse_url(url)
        self.engine = create_store_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dataops-store")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error (no partial writes)."""
        try:
            with self.sessions.begin() as s:
                yield s
        except OperationalError as e:
            raise Unavailable(f"metadata store {self.redacted_url} is unavailable: {e.orig}") from e

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking store work in the pool, so the Tornado loop never waits on the DB."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def migrate(self) -> str:
        from .migrate import upgrade

        return upgrade(self.engine)

    def revision(self) -> str | None:
        from .migrate import current_revision

        return current_revision(self.engine)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()
