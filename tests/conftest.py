from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres

pytest_plugins = ["pytest_jupyter.jupyter_server"]

IN_CI = bool(os.environ.get("CI"))
# MLflow 3's usage telemetry would try to reach the internet: never from the tests (the
# server and kernels set it too; processes the tests start inherit it).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """An admin URL of a PostgreSQL server (local one when it answers, else throwaway)."""
    url = os.environ.get("DATAOPS_TEST_PG_URL", postgres.DEFAULT_URL)
    if os.environ.get("DATAOPS_TEST_PG") != "throwaway" and postgres.answers(url):
        yield url
        return
    try:
        server = postgres.Throwaway()
    except Exception as e:
        msg = f"PostgreSQL is not reachable at {url} and a throwaway server failed: {e}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    url = postgres.create_database(pg_admin_url)
    try:
        yield url
    finally:
        postgres.drop_database(pg_admin_url, url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test once on the embedded SQLite store and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"
    return str(request.getfixturevalue("pg_url"))
