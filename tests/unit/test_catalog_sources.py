"""Sources end to end through the catalog service (no HTTP): partitions, CSV, SQL queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyter_dataops.exceptions import BadGateway, InvalidRequest
from jupyter_dataops.models import ReadRequest, RegisterDatasetRequest
from jupyter_dataops.platform import Platform
from jupyter_dataops.settings import DataOps


def _platform(root: Path, policy: str) -> Platform:
    (root / "dataops.yaml").write_text(policy)
    return Platform(DataOps(), root)


def _read(p: Platform, user: str, name: str, **req) -> list[dict]:
    plan = p.catalog.plan(p.principal(user), name, ReadRequest(**req), "read")
    return plan.open().read_all().to_pylist()


def test_hive_partitioned_parquet_directory(tmp_path):
    for year, month, vals in [(2013, 1, [1, 2]), (2013, 2, [3]), (2014, 1, [4, 5])]:
        d = tmp_path / "data" / "events" / f"year={year}" / f"month={month}"
        d.mkdir(parents=True)
        pq.write_table(pa.table({"v": vals}), d / "part-0.parquet")
    p = _platform(
        tmp_path,
        """
groups: {g: {members: [ada]}}
datasets:
  events: {owner: ada, source: {type: parquet, path: data/events}}
grants: [{groups: [g], datasets: [events], row_filter: year = 2013}]
""",
    )
    try:
        rows = _read(p, "ada", "events")
        assert sorted(r["v"] for r in rows) == [1, 2, 3]  # the partition column filters
        assert {r["month"] for r in rows} == {1, 2}
        assert _read(p, "ada", "events", where="month = 2") == [{"v": 3, "year": 2013, "month": 2}]
        v1 = p.catalog.describe(p.principal("ada"), "events").versions[0]
        assert v1.row_count == 5
        d = tmp_path / "data" / "events" / "year=2013" / "month=3"
        d.mkdir()
        pq.write_table(pa.table({"v": [6]}), d / "part-0.parquet")
        assert sorted(r["v"] for r in _read(p, "ada", "events")) == [1, 2, 3, 6]
        v2 = p.catalog.describe(p.principal("ada"), "events").versions[0]
        assert v2.fingerprint != v1.fingerprint and v2.row_count == 6  # a new file, a new version
    finally:
        p.close()


def test_sql_query_source_on_another_database(tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE orders (id INTEGER, customer TEXT, amount REAL)")
        c.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [(1, "ann@x.io", 10.5), (2, "bob@x.io", 99.0), (3, "ann@x.io", 5.25)],
        )
    p = _platform(
        tmp_path,
        f"""
groups: {{g: {{members: [ada]}}}}
datasets:
  big_orders:
    owner: ada
    source:
      type: sql
      url: "sqlite:///{db}"
      query: "SELECT id, customer, amount FROM orders WHERE amount > 6"
    columns: {{customer: {{classification: [pii]}}}}
grants: [{{groups: [g], datasets: [big_orders]}}]
masks: [{{classifications: [pii], function: hash}}]
""",
    )
    try:
        rows = _read(p, "ada", "big_orders", where="amount < 50")
        assert [r["id"] for r in rows] == [1]
        assert rows[0]["customer"] != "ann@x.io" and len(rows[0]["customer"]) == 32
    finally:
        p.close()


def test_register_through_the_catalog_writes_nothing_on_failure(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,x\n")
    p = _platform(tmp_path, "groups: {}\n")
    user = p.principal("ada")
    try:
        with pytest.raises(BadGateway):
            p.catalog.register(
                user,
                RegisterDatasetRequest(name="gone", source={"type": "csv", "path": "nope.csv"}),
            )
        with pytest.raises(InvalidRequest, match="not in the source"):
            p.catalog.register(
                user,
                RegisterDatasetRequest(
                    name="cols",
                    source={"type": "csv", "path": "d.csv"},
                    columns={"zzz": {"description": "?"}},
                ),
            )
        assert [d.name for d in p.catalog.list(user)] == []
        d = p.catalog.register(
            user, RegisterDatasetRequest(name="d", source={"type": "csv", "path": "d.csv"})
        )
        assert d.owner == "ada" and [c.name for c in d.columns] == ["a", "b"]
        assert d.access.allowed is False  # registering grants nothing: deny by default
    finally:
        p.close()
