"""Property tests: no user filter escapes the policy, whatever text it is made of."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from jupyter_dataops.exceptions import DataOpsError
from jupyter_dataops.governance.filters import parse_user_filter
from jupyter_dataops.models import ReadRequest
from jupyter_dataops.platform import Platform
from jupyter_dataops.settings import DataOps
from tests.server.test_governance import CUSTOMERS, EMAILS, POLICY, write_customers

COLUMNS = ["id", "email", "region", "balance", "plan"]
FRAGMENTS = [
    *COLUMNS, "1", "0", "'EU'", "'US'", "NULL", "TRUE", "=", "<>", ">", "<", "AND", "OR",
    "NOT", "(", ")", ",", "IN", "LIKE", "'%'", "IS", ";", "--", "/*", "*/", "'", '"',
    "SELECT", "FROM", "UNION", "DROP TABLE x", "read_parquet('x')", "customers", "*",
    "region = 'US'", "1=1", "email", "CAST(id AS VARCHAR)", "pg_sleep(1)", "\\", "||",
    "OR 1=1 --", "') OR ('1'='1", "UNION ALL SELECT email FROM read_parquet('data/c.parquet')",
]  # fmt: skip


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root: Path = tmp_path_factory.mktemp("ws")
    write_customers(root / "data" / "customers.parquet")
    (root / "dataops.yaml").write_text(POLICY)
    p = Platform(DataOps(), root)
    yield p
    p.close()


filters = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8).map(" ".join),
    st.text(min_size=1, max_size=60),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=filters)
def test_no_filter_escapes_row_filter_or_masks(platform, where):
    alice = platform.principal("alice")
    try:
        plan = platform.catalog.plan(alice, "customers", ReadRequest(where=where), "read")
        statements = sqlglot.parse(plan.sql.sql(), read="duckdb")
        assert len(statements) == 1 and isinstance(statements[0], exp.Select)
        rows = plan.open().read_all().to_pylist()
    except DataOpsError as e:
        assert e.status == 400, e  # rejected as bad input, never a crash or a 5xx
        for email in EMAILS:
            assert email not in e.message
        return
    allowed_ids = {c[0] for c in CUSTOMERS if c[2] == "EU"}
    for r in rows:
        assert r["id"] in allowed_ids  # the row filter holds
        assert r["region"] == "EU"
        assert r["email"] not in EMAILS  # the mask holds


@given(where=filters)
@settings(max_examples=500, deadline=None)
def test_accepted_filters_only_reference_known_columns(where):
    try:
        tree = parse_user_filter(where, COLUMNS)
    except DataOpsError:
        return
    for node in tree.walk():
        assert not isinstance(node, exp.Query | exp.Command | exp.Table | exp.Anonymous)
        if isinstance(node, exp.Column):
            assert node.name in COLUMNS and not node.table
