"""A user's filter on a PostgreSQL source runs only on the rows the user may see.

PostgreSQL's planner pushes the user's filter into the governed subquery and may evaluate it
before the row filter: a filter that fails on some value (a division by zero) would then answer
502 when a hidden row has that value and 200 when none has, one bit at a time. The governed
relation is read through a ``security_barrier`` view instead (an OFFSET 0 fence where the source
is read-only), and comparisons still reach the source's indexes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.server.test_governance import (  # noqa: F401
    CUSTOMERS,
    POLICY,
    as_user,
    jp_server_config,
    pull,
    workspace,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("store_url", ["sqlite"], indirect=True),  # the source is PostgreSQL
]

# alice may see eight regions; of the customers, the EU ones (ids 1, 2 and 6). The row filter
# that lists them costs the planner more than the probe, so it evaluates the probe first.
REGIONS = "[EU, UK, CH, 'NO', IS, LI, AD, MC]"
VISIBLE = [1, 2, 6]
# Fails on a row whose id is the probed one: ids 3, 4 and 5 are hidden from alice, 7 is no one's.
PROBE = "1 % (id - {}) = 0"


def probe_answer(probed: int) -> list[int]:
    """What the probe selects among alice's own rows (1 % n = 0 for n = 1 or -1)."""
    return [i for i in VISIBLE if abs(i - probed) == 1]


def seed(pg_url: str, extra_rows: int = 0) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(sa.text("CREATE TABLE customers (id bigint, email text, region text, "
                          "balance double precision, plan text)"))  # fmt: skip
        for row in CUSTOMERS:
            c.execute(
                sa.text("INSERT INTO customers VALUES (:a, :b, :c, :d, :e)"),
                dict(zip("abcde", row, strict=True)),
            )
        if extra_rows:
            c.execute(sa.text(
                "INSERT INTO customers SELECT 100 + g, 'x' || g || '@example.us', 'US', g, "
                "'free' FROM generate_series(1, :n) AS g"), {"n": extra_rows})  # fmt: skip
            c.execute(sa.text("CREATE INDEX customers_id ON customers (id)"))
            c.execute(sa.text("ANALYZE customers"))
    engine.dispose()


def use_postgres(workspace: Path, url: str) -> None:  # noqa: F811
    policy = POLICY.replace(
        "source: {type: parquet, path: data/customers.parquet}",
        f"source: {{type: sql, url: '{url}', table: public.customers}}",
    ).replace(
        "alice: {attributes: {regions: [EU]}}", f"alice: {{attributes: {{regions: {REGIONS}}}}}"
    )
    (workspace / "dataops.yaml").write_text(policy)


def run_on(pg_url: str, sql: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as c:
            c.execute(sa.text(sql))
    finally:
        engine.dispose()


async def test_a_filter_cannot_probe_rows_the_row_filter_hides(
    jp_serverapp,
    pull,  # noqa: F811
    workspace,  # noqa: F811
    pg_url,
):
    from jupyter_dataops.models import ReadRequest

    seed(pg_url)
    use_postgres(workspace, sa.make_url(pg_url).render_as_string(hide_password=False))
    for probed in (3, 4, 5, 7):  # hidden US and APAC customers, and an id no one has
        code, t, _ = await pull("alice", "customers", where=PROBE.format(probed))
        # 200 whether a hidden row has the id or no row has: nothing to tell them apart by.
        assert code == 200, (probed, t)
        assert sorted(t.column("id").to_pylist()) == probe_answer(probed), probed
    code, t, _ = await pull("alice", "customers", where="id > 1")
    assert code == 200 and sorted(t.column("id").to_pylist()) == [2, 6]
    # The same read as one statement with a plain subquery (how it was sent before): this
    # PostgreSQL evaluates the probe on the hidden row, so the pulls above would have been
    # 502, 502, 502 and 200.
    platform = jp_serverapp.web_app.settings["dataops"]
    plan = platform.catalog.plan(
        platform.principal("alice"), "customers", ReadRequest(where=PROBE.format(3)), "read"
    )
    with pytest.raises(sa.exc.DataError, match="division by zero"):
        run_on(pg_url, str(plan.sql))


async def test_a_read_only_source_is_fenced_and_still_cannot_be_probed(pull, workspace, pg_url):  # noqa: F811
    seed(pg_url)
    url = sa.make_url(pg_url).update_query_dict(
        {"options": "-c default_transaction_read_only=on"}
    )  # a standby, say: no temporary view can be made there
    use_postgres(workspace, url.render_as_string(hide_password=False))
    for probed in (3, 4, 5, 7):
        code, t, _ = await pull("alice", "customers", where=PROBE.format(probed))
        assert code == 200, t
        assert sorted(t.column("id").to_pylist()) == probe_answer(probed), probed


def test_comparisons_still_use_the_sources_indexes(jp_serverapp, workspace, pg_url):  # noqa: F811
    """The barrier lets leakproof conditions (comparisons) through to the index; the fence of
    a read-only source does not."""
    from jupyter_dataops.catalog.sources import BARRIER_VIEW
    from jupyter_dataops.models import ReadRequest

    seed(pg_url, extra_rows=50_000)
    use_postgres(workspace, sa.make_url(pg_url).render_as_string(hide_password=False))
    platform = jp_serverapp.web_app.settings["dataops"]
    plan = platform.catalog.plan(
        platform.principal("bob"), "customers", ReadRequest(where="id = 25000"), "read"
    )
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as c:
            c.execute(sa.text(f"CREATE TEMPORARY VIEW {BARRIER_VIEW.sql('postgres')} "
                              f"WITH (security_barrier) AS {plan.sql.governed_sql()}"))  # fmt: skip
            barrier = "\n".join(
                r[0] for r in c.execute(sa.text(f"EXPLAIN {plan.sql.read_sql(BARRIER_VIEW)}"))
            )
            fenced = "\n".join(r[0] for r in c.execute(sa.text(f"EXPLAIN {plan.sql.fenced_sql()}")))
            rows = c.execute(sa.text(plan.sql.read_sql(BARRIER_VIEW))).all()
    finally:
        engine.dispose()
    assert "Index" in barrier and "customers_id" in barrier, barrier
    assert "Index" not in fenced, fenced
    assert [r[0] for r in rows] == [25000]


async def test_duckdb_also_runs_the_filter_on_visible_rows_only(pull, workspace):  # noqa: F811
    """Files (DuckDB) get the one-statement form: DuckDB evaluates the row filter first."""
    for probed in (3, 4, 5, 7):
        code, t, _ = await pull("alice", "customers", where=PROBE.format(probed))
        assert code == 200, (probed, t)
        assert sorted(t.column("id").to_pylist()) == probe_answer(probed), probed
