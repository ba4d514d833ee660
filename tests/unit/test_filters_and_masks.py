"""Filters, row-filter templates and mask functions, executed by DuckDB."""

from __future__ import annotations

import duckdb
import pytest
from sqlglot import exp

from jupyter_dataops.config import Mask, parse_config
from jupyter_dataops.governance.compiler import Column, compile_select, mask_expression
from jupyter_dataops.governance.filters import (
    FilterError,
    check_row_filter,
    parse_user_filter,
    render_row_filter,
)
from jupyter_dataops.governance.policy import Decision

KINDS = {"id": "integer", "name": "string", "x": "float", "ok": "boolean", "t": "temporal"}


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("name", "is not a condition"),
        ("name > 1", "cannot compare name (string) with 1 (number)"),
        ("id IN ('a', 2)", "cannot compare id (number) with 'a' (string)"),
        ("id LIKE '1%'", "LIKE needs text"),
        ("name + 1 > 2", "arithmetic on name (string)"),
        ("x BETWEEN 'a' AND 2", "cannot compare x (number) with 'a' (string)"),
        ("nmae = 'x'", "unknown column 'nmae'; did you mean name?"),
        ("read_parquet('/etc/passwd') IS NULL", "is not allowed"),
        ("id = 1 UNION SELECT 1", "unexpected 'UNION'"),
    ],
)
def test_type_and_shape_errors_are_clear(where, message):
    with pytest.raises(FilterError) as e:
        parse_user_filter(where, KINDS)
    assert message in e.value.message
    assert e.value.status == 400


@pytest.mark.parametrize(
    "where",
    ["id > 1 AND name = 'a'", "ok", "NOT ok OR x >= 2.5", "t > '2013-01-01'",
     "lower(name) LIKE 'a%'", "coalesce(x, 0) BETWEEN 1 AND 2", "id IN (1, 2, 3)",
     "CAST(id AS VARCHAR) = '1'", "length(name) > 3 AND name IS NOT NULL"],
)  # fmt: skip
def test_valid_filters_pass(where):
    parse_user_filter(where, KINDS)


def test_row_filter_templates():
    attrs = {"airports": ["JFK", "LGA"], "name": "ada", "level": 3}
    sql = render_row_filter(
        "origin IN ({user.airports}) AND lvl <= {user.level}", attrs, ["origin", "lvl"]
    ).sql("duckdb")
    assert sql == "origin IN ('JFK', 'LGA') AND lvl <= 3"
    # Missing attributes match nothing (deny by default).
    assert render_row_filter("origin IN ({user.gone})", attrs, ["origin"]).sql() == "FALSE"
    assert "NULL" in render_row_filter("o = {user.gone}", attrs, ["o"]).sql()
    # A value with a quote stays a literal.
    sql = render_row_filter("o = {user.name}", {"name": "o'neil"}, ["o"]).sql("duckdb")
    assert sql == "o = 'o''neil'"
    assert check_row_filter("origin IN ({user.airports}") is not None
    assert check_row_filter("origin IN ({user.airports})") is None


def test_config_rejects_bad_row_filters_with_their_line():
    from jupyter_dataops.config import InvalidConfig

    text = (
        "groups: {a: {members: [x]}}\ndatasets:\n  d: {owner: x, source: {type: csv, path: "
        "d.csv}}\ngrants:\n  - groups: [a]\n    datasets: [d]\n    row_filter: a IN (SELECT 1)\n"
    )
    with pytest.raises(InvalidConfig) as e:
        parse_config(text, "f.yaml")
    p = e.value.problems[0]
    assert (p.line, p.field) == (7, "grants.0.row_filter")


def _run_mask(fn: str, kind: str, values: list, **kw) -> list:
    mask = Mask(columns=["v"], function=fn, **kw)
    expr = mask_expression(Column("v", kind), mask, "salt-1", "duckdb").sql("duckdb")
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (i INT, v "
        + {"string": "VARCHAR", "float": "DOUBLE", "integer": "BIGINT"}[kind]
        + ")"
    )
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    return [r[0] for r in con.execute(f"SELECT {expr} FROM t ORDER BY i").fetchall()]


def test_mask_functions():
    assert _run_mask("redact", "string", ["secret", None]) == ["[REDACTED]", None]
    assert _run_mask("null", "string", ["secret"]) == [None]
    assert _run_mask("redact", "float", [1.5]) == [None]
    assert _run_mask("partial", "string", ["4111111111111234", "12", None]) == [
        "****1234",
        "****",
        None,
    ]
    assert _run_mask("partial", "integer", [123456789], keep=3) == ["****789"]
    assert _run_mask("round", "float", [1234.567, None], digits=-2) == [1200.0, None]
    assert _run_mask("round", "string", ["x"]) == [None]  # nothing to round: hidden
    h = _run_mask("hash", "string", ["a@x", "a@x", "b@x", None])
    assert h[0] == h[1] != h[2] and h[3] is None and len(h[0]) == 32
    assert "a@x" not in h[0]


def test_hash_depends_on_the_workspace_salt():
    mask = Mask(columns=["v"], function="hash")
    a = mask_expression(Column("v", "string"), mask, "salt-1", "duckdb").sql("duckdb")
    b = mask_expression(Column("v", "string"), mask, "salt-2", "duckdb").sql("duckdb")
    con = duckdb.connect()
    assert (
        con.execute(f"SELECT {a} FROM (SELECT 'x' AS v)").fetchone()
        != con.execute(f"SELECT {b} FROM (SELECT 'x' AS v)").fetchone()
    )


def test_compiled_statement_quotes_identifiers_and_limits():
    schema = [Column("weird name", "string"), Column("id", "integer")]
    decision = Decision(True, "", row_filter=exp.condition("id > 0"))
    sql = compile_select(
        exp.to_table("t"), schema, decision, ["weird name"], None, 5, "duckdb", "s"
    )
    con = duckdb.connect()
    con.execute('CREATE TABLE t ("weird name" VARCHAR, id INT)')
    con.execute("INSERT INTO t VALUES ('a', 1), ('b', 0), ('c', 2)")
    assert sorted(con.execute(sql).fetchall()) == [("a",), ("c",)]
    assert sql.endswith("LIMIT 5")


def test_parse_errors_speak_the_users_language():
    with pytest.raises(FilterError) as e:
        parse_user_filter("region = = 'x'", KINDS)
    assert "sqlglot" not in e.value.message and "class" not in e.value.message
    assert e.value.details == {"line": 1, "column": 10}
