"""SQL sources: who may register them, what of the server's environment their URLs may use,
and what their queries may do on the source database.

A real server (two users and an admin, as in test_governance), real SQLite and PostgreSQL
databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jupyter_dataops.config import InvalidConfig, parse_config
from tests.server.conftest import server_config
from tests.server.test_governance import POLICY, TokenUsers, as_user, workspace  # noqa: F401

# bob is in support, which may register SQL sources; alice may not; root is an admin.
REGISTRARS = (
    POLICY
    + """
sql_source_registrars:
  groups: [support]
"""
)


@pytest.fixture
def store_url(tmp_path: Path) -> str:  # the store on SQLite; the sources vary
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jp_server_config(store_url: str) -> dict[str, Any]:
    return server_config(
        store_url,
        ServerApp={"identity_provider_class": TokenUsers},
        IdentityProvider={"token": "tok-root"},
        DataOps={"source_url_env": ["DOPS_TEST_ORDERS_DB"]},
    )


@pytest.fixture
def orders_db(tmp_path: Path) -> Path:
    db = tmp_path / "orders.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE orders (id INTEGER, amount REAL)")
        c.executemany("INSERT INTO orders VALUES (?, ?)", [(1, 10.5), (2, 99.0)])
    return db


def sql_dataset(name: str, url: str, **source: Any) -> dict[str, Any]:
    return {"name": name, "source": {"type": "sql", "url": url, "table": "orders", **source}}


async def test_only_admins_and_named_registrars_register_sql_sources(
    as_user,  # noqa: F811
    workspace: Path,  # noqa: F811
    orders_db: Path,
    tmp_path: Path,
):
    (workspace / "dataops.yaml").write_text(REGISTRARS)
    untouched = tmp_path / "never-opened.db"  # SQLite creates the file when it connects
    code, body = await as_user(
        "alice", "POST", "datasets", sql_dataset("a", f"sqlite:///{untouched}")
    )
    assert code == 403, body
    assert "sql_source_registrars" in body["error"]["message"], body
    assert not untouched.exists()  # refused before anything connected
    code, body = await as_user(
        "bob", "POST", "datasets", sql_dataset("b", f"sqlite:///{orders_db}")
    )
    assert code == 201 and body["owner"] == "bob", body
    code, body = await as_user(
        "root", "POST", "datasets", sql_dataset("r", f"sqlite:///{orders_db}")
    )
    assert code == 201, body
    # File datasets in the workspace stay open to everyone.
    (workspace / "data" / "mine.csv").write_text("k,v\na,1\n")
    req = {"name": "mine", "source": {"type": "csv", "path": "data/mine.csv"}}
    assert (await as_user("alice", "POST", "datasets", req))[0] == 201
    code, body = await as_user("root", "GET", "datasets")
    assert sorted(d["name"] for d in body["datasets"]) == ["b", "customers", "mine", "r"]


async def test_source_urls_use_only_the_environment_the_server_allows(
    as_user,  # noqa: F811
    workspace: Path,  # noqa: F811
    orders_db: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("DOPS_TEST_ORDERS_DB", str(orders_db))
    monkeypatch.setenv("DOPS_TEST_SECRET", str(orders_db))  # a valid path, but not allowed
    code, body = await as_user(
        "root", "POST", "datasets", sql_dataset("leak", "sqlite:///${DOPS_TEST_SECRET}")
    )
    assert code == 400, body
    assert body["error"]["details"] == {"field": "source.url", "variable": "DOPS_TEST_SECRET"}
    assert "c.DataOps.source_url_env" in body["error"]["message"]
    code, body = await as_user(
        "root", "POST", "datasets", sql_dataset("orders", "sqlite:///${DOPS_TEST_ORDERS_DB}")
    )
    assert code == 201 and body["versions"][0]["row_count"] == 2, body
    # dataops.yaml is held to the same list.
    (workspace / "dataops.yaml").write_text(
        POLICY.replace(
            "source: {type: parquet, path: data/customers.parquet}",
            "source: {type: sql, url: 'sqlite:///${DOPS_TEST_SECRET}', table: orders}",
        )
    )
    code, body = await as_user("bob", "GET", "datasets/customers/preview")
    assert code == 400 and body["error"]["details"]["variable"] == "DOPS_TEST_SECRET", body


@pytest.mark.postgres
async def test_source_queries_are_one_read_only_select_of_allowed_functions(
    as_user,  # noqa: F811
    pg_url: str,
):
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(sa.text("CREATE TABLE orders (id bigint, amount double precision)"))
        c.execute(sa.text("INSERT INTO orders VALUES (1, 10.5), (2, 99.0)"))
        c.execute(sa.text("CREATE SEQUENCE probe_seq"))  # nextval() is not undone by rollback
    url = sa.make_url(pg_url).render_as_string(hide_password=False)
    bad = [
        ({"version_query": "SELECT nextval('probe_seq')"}, "source.version_query", "nextval()"),
        ({"version_query": "SELECT pg_sleep(30)"}, "source.version_query", "pg_sleep()"),
        ({"version_query": "SELECT 1; SELECT 2"}, "source.version_query", "one SELECT"),
        ({"version_query": "DELETE FROM orders"}, "source.version_query", "not DELETE"),
        ({"version_query": "WITH d AS (DELETE FROM orders RETURNING id) SELECT max(id) FROM d"},
         "source.version_query", "DELETE FROM orders"),
        ({"version_query": "SELECT max(id) FROM orders FOR UPDATE"}, "source.version_query",
         "FOR UPDATE"),
        ({"table": None, "query": "SELECT id, pg_read_file('/etc/passwd') AS f FROM orders"},
         "source.query", "pg_read_file()"),
        ({"table": None, "query": "SELECT * INTO stolen FROM orders"}, "source.query", "INTO"),
    ]  # fmt: skip
    for source, field, named in bad:
        code, body = await as_user("root", "POST", "datasets", sql_dataset("o", url, **source))
        assert code == 400, (source, body)
        assert body["error"]["details"]["field"] == field, body
        assert named in body["error"]["message"], body
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT is_called FROM probe_seq")).scalar() is False
        assert c.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 2
        assert c.execute(sa.text("SELECT to_regclass('stolen')")).scalar() is None
    engine.dispose()
    good = {
        "version_query": "SELECT max(id), count(*), now() FROM orders",
    }
    code, body = await as_user("root", "POST", "datasets", sql_dataset("o", url, **good))
    assert code == 201 and body["versions"][0]["row_count"] == 2, body
    code, body = await as_user("root", "POST", "datasets", {
        "name": "big", "source": {"type": "sql", "url": url,
                                  "query": "SELECT id, round(amount) AS a FROM orders "
                                           "WHERE amount > 50"},
    })  # fmt: skip
    assert code == 201 and body["versions"][0]["row_count"] == 1, body


def test_dataops_yaml_names_a_bad_source_query():
    text = """
admins: [root]
datasets:
  orders:
    owner: root
    source: {type: sql, url: 'postgresql://db/x', table: orders,
             version_query: "SELECT pg_sleep(10)"}
"""
    with pytest.raises(InvalidConfig) as e:
        parse_config(text, "dataops.yaml")
    [problem] = e.value.problems
    assert problem.field == "datasets.orders.source.version_query" and problem.line == 7
    assert "pg_sleep()" in problem.message
