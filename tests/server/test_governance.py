"""Governed reads end to end: two users, one dataset, different rows and columns.

Identity: a test-only Jupyter IdentityProvider maps tokens to users (a real Jupyter
mechanism, configured as a deployment would; JupyterHub's provider works the same way).
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from jupyter_server.auth import IdentityProvider, User

from tests.server.conftest import server_config

CUSTOMERS = [
    # id, email, region, balance, plan
    (1, "alice.secret@example.eu", "EU", 1234.56, "pro"),
    (2, "bruno.private@example.eu", "EU", 99.99, "free"),
    (3, "carla.hidden@example.us", "US", 5000.0, "pro"),
    (4, "dan.confidential@example.us", "US", 42.0, "free"),
    (5, "eve.nobody@example.apac", "APAC", 777.77, "pro"),
    (6, None, "EU", 10.0, "free"),
]
EMAILS = [c[1] for c in CUSTOMERS if c[1]]

POLICY = """
admins: [root]
groups:
  sales: {members: [alice]}
  support: {members: [bob]}
users:
  alice: {attributes: {regions: [EU]}}
datasets:
  customers:
    title: Customers
    description: Everyone who signed up
    owner: root
    tags: [crm]
    source: {type: parquet, path: data/customers.parquet}
    columns:
      email: {description: Contact address, classification: [pii]}
grants:
  - groups: [sales]
    datasets: [customers]
    row_filter: region IN ({user.regions})
  - groups: [support]
    tags: [crm]
masks:
  - classifications: [pii]
    function: partial
    exempt_groups: [support]
  - columns: [balance]
    function: round
    digits: -2
"""

TOKENS = {"tok-root": "root", "tok-alice": "alice", "tok-bob": "bob", "tok-carol": "carol"}


class TokenUsers(IdentityProvider):
    """Test-only identity: each token is one user."""

    def get_user(self, handler):  # type: ignore[no-untyped-def]
        token = handler.request.headers.get("Authorization", "").removeprefix("token ").strip()
        name = TOKENS.get(token)
        return User(username=name) if name else None

    def is_token_authenticated(self, handler):  # type: ignore[no-untyped-def]
        return True  # header tokens: no cookie, so no XSRF check (as JupyterHub's provider)


def write_customers(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    cols = list(zip(*CUSTOMERS, strict=True))
    table = pa.table(
        {
            "id": pa.array(cols[0], pa.int64()),
            "email": cols[1],
            "region": cols[2],
            "balance": cols[3],
            "plan": cols[4],
        }
    )
    pq.write_table(table, path)


@pytest.fixture
def jp_server_config(store_url: str) -> dict[str, Any]:
    return server_config(
        store_url,
        ServerApp={"identity_provider_class": TokenUsers},
        IdentityProvider={"token": "tok-root"},
    )


@pytest.fixture
def workspace(jp_root_dir: Path) -> Path:
    write_customers(jp_root_dir / "data" / "customers.parquet")
    (jp_root_dir / "dataops.yaml").write_text(POLICY)
    return jp_root_dir


@pytest.fixture
def as_user(api, workspace):  # type: ignore[no-untyped-def]
    async def call(user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await api(method, path, body=body, headers={"Authorization": f"token tok-{user}"})

    return call


@pytest.fixture
def pull(jp_fetch, workspace):  # type: ignore[no-untyped-def]
    async def call(user: str, dataset: str, **body: Any) -> tuple[int, Any, Any]:
        resp = await jp_fetch(
            "dataops",
            "api",
            "v1",
            "datasets",
            dataset,
            "pull",
            method="POST",
            body=json.dumps(body),
            raise_error=False,
            headers={"Authorization": f"token tok-{user}", "Content-Type": "application/json"},
        )
        if resp.code != 200:
            return resp.code, json.loads(resp.body), resp.body
        return 200, pa.ipc.open_stream(resp.body).read_all(), resp

    return call


def assert_no_secret(raw: bytes | str) -> None:
    data = raw if isinstance(raw, bytes) else raw.encode()
    for email in EMAILS:
        assert email.encode() not in data, f"masked value {email!r} leaked"


async def test_two_users_see_different_rows_and_columns(pull):
    code, alice, resp = await pull("alice", "customers")
    assert code == 200
    assert_no_secret(resp.body)
    rows = alice.to_pylist()
    assert sorted(r["id"] for r in rows) == [1, 2, 6]  # her regions only
    assert {r["region"] for r in rows} == {"EU"}
    by_id = {r["id"]: r for r in rows}
    assert by_id[1]["email"] == "****e.eu"  # partial: the last four characters
    assert by_id[6]["email"] is None  # NULL stays NULL
    assert by_id[1]["balance"] == 1200.0  # rounded to hundreds
    assert json.loads(resp.headers["X-DataOps-Masked"]) == ["balance", "email"]

    code, bob, resp = await pull("bob", "customers")
    assert code == 200
    rows = bob.to_pylist()
    assert sorted(r["id"] for r in rows) == [1, 2, 3, 4, 5, 6]  # every row
    assert {r["email"] for r in rows} == {*EMAILS, None}  # support is exempt
    assert {r["id"]: r["balance"] for r in rows}[3] == 5000.0
    assert {r["id"]: r["balance"] for r in rows}[1] == 1200.0  # the round mask applies
    assert json.loads(resp.headers["X-DataOps-Masked"]) == ["balance"]
    assert bob.schema.field("id").type == pa.int64()  # types survive the trip


async def test_columns_where_limit(pull):
    code, t, _ = await pull(
        "bob", "customers", columns=["id", "plan"], where="plan = 'pro' AND id > 1", limit=10
    )
    assert code == 200
    assert t.column_names == ["id", "plan"]
    assert sorted(t.column("id").to_pylist()) == [3, 5]
    code, t, _ = await pull("bob", "customers", columns=["id"], limit=2)
    assert t.num_rows == 2


async def test_filters_see_masked_values_not_the_real_ones(pull):
    # Probing a masked column with the real value finds nothing: filters run on what you see.
    code, t, _resp = await pull("alice", "customers", where=f"email = '{EMAILS[0]}'")
    assert code == 200 and t.num_rows == 0
    code, t, _ = await pull("alice", "customers", where="balance > 1230 AND balance < 1240")
    assert t.num_rows == 0  # the real 1234.56 is invisible: alice sees 1200
    # And hidden rows stay hidden whatever the filter says.
    code, t, _ = await pull("alice", "customers", where="region = 'US' OR 1 = 1")
    assert {r["region"] for r in t.to_pylist()} == {"EU"}


async def test_denied_user_gets_403_naming_the_grant_and_it_is_audited(pull, as_user):
    code, body, raw = await pull("carol", "customers")
    assert code == 403
    assert body["error"]["code"] == "forbidden"
    msg = body["error"]["message"]
    assert "carol" in msg and "customers" in msg and "group sales" in msg
    assert_no_secret(raw)
    code, page = await as_user("root", "GET", "audit?user=carol")
    assert code == 200
    ev = page["events"][0]
    assert (ev["user"], ev["dataset"], ev["decision"], ev["action"]) == (
        "carol",
        "customers",
        "denied",
        "read",
    )


async def test_preview_is_governed_and_audited(as_user):
    code, body = await as_user("alice", "GET", "datasets/customers/preview?limit=5")
    assert code == 200, body
    assert_no_secret(json.dumps(body))
    assert {r["region"] for r in body["rows"]} == {"EU"}
    assert body["masked_columns"] == ["balance", "email"]
    masked = {c["name"]: c["mask"] for c in body["columns"] if c["masked"]}
    assert masked == {"email": "partial", "balance": "round"}
    code, page = await as_user("root", "GET", "audit?action=preview")
    assert page["events"][0]["user"] == "alice"
    assert page["events"][0]["row_count"] == 3


async def test_audit_records_every_read_and_never_data(pull, as_user):
    await pull("alice", "customers", where="id > 0")
    await pull("bob", "customers", columns=["id", "email"])
    await pull("carol", "customers")
    code, page = await as_user("root", "GET", "audit")
    assert code == 200
    events = page["events"]
    assert [(e["user"], e["decision"]) for e in events[:3]] == [
        ("carol", "denied"),
        ("bob", "allowed"),
        ("alice", "allowed"),
    ]
    alice = events[2]
    assert alice["row_count"] == 3 and alice["filter"] == "id > 0"
    assert alice["masked"] == ["balance", "email"]
    assert alice["version"] and alice["duration_ms"] > 0
    assert events[1]["columns"] == ["id", "email"] and events[1]["row_count"] == 6
    code, _body = await as_user("alice", "GET", "audit")
    assert code == 403  # admins only
    assert_no_secret(json.dumps(page))


async def test_audit_csv_export_and_filters(pull, jp_fetch):
    await pull("alice", "customers")
    await pull("carol", "customers")
    resp = await jp_fetch(
        "dataops", "api", "v1", "audit", params={"format": "csv", "decision": "denied"}
    )
    assert resp.headers["Content-Type"].startswith("text/csv")
    lines = resp.body.decode().strip().splitlines()
    assert lines[0].startswith("id,at,user,")
    assert len(lines) == 2 and ",carol," in lines[1]


async def test_read_errors_are_specific(pull, as_user):
    code, body, _ = await pull("bob", "customer")
    assert code == 404 and body["error"]["details"]["close_matches"] == ["customers"]
    code, body, _ = await pull("bob", "customers", columns=["id", "emial"])
    assert code == 400 and "emial" in body["error"]["message"]
    assert body["error"]["details"]["close_matches"] == {"emial": ["email"]}
    code, body, _ = await pull("bob", "customers", where="id > > 1 ;")
    assert code == 400 and body["error"]["code"] == "invalid_filter"
    code, body, _ = await pull("bob", "customers", where="id IN (SELECT 1)")
    assert code == 400 and 7 <= body["error"]["details"]["column"] <= 15
    code, body, _ = await pull("bob", "customers", where="1=1; DROP TABLE x")
    assert code == 400
    code, body, _ = await pull("bob", "customers", limit=-1)
    assert code == 400 and "limit" in body["error"]["message"]


def _touch(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(time.time_ns(), before + 1_000_000))


async def test_policy_changes_apply_on_the_next_read(pull, workspace):
    assert (await pull("carol", "customers"))[0] == 403
    _touch(
        workspace / "dataops.yaml",
        POLICY.replace("support: {members: [bob]}", "support: {members: [bob, carol]}"),
    )
    code, t, _ = await pull("carol", "customers")
    assert code == 200 and t.num_rows == 6
    # A broken edit keeps the last good policy: carol still reads.
    _touch(workspace / "dataops.yaml", POLICY + "\ngrants: 5\n")
    assert (await pull("carol", "customers"))[0] == 200


async def test_versions_follow_the_data(pull, as_user, workspace):
    code, _, resp = await pull("bob", "customers")
    v1 = resp.headers["X-DataOps-Version"]
    code, detail = await as_user("bob", "GET", "datasets/customers")
    assert detail["versions"][0]["fingerprint"] == v1
    assert detail["versions"][0]["row_count"] == 6
    time.sleep(0.01)
    write_customers(workspace / "data" / "customers.parquet")  # same rows, a new file
    _, _, resp = await pull("bob", "customers")
    assert resp.headers["X-DataOps-Version"] == v1  # the same content: the same version
    path = workspace / "data" / "customers.parquet"
    pq.write_table(pq.read_table(path).slice(0, 5), path)  # one row less
    _, _, resp = await pull("bob", "customers")
    v2 = resp.headers["X-DataOps-Version"]
    assert v2 != v1
    _code, detail = await as_user("bob", "GET", "datasets/customers")
    assert [v["fingerprint"] for v in detail["versions"][:2]] == [v2, v1]


async def test_missing_source_is_502(pull, workspace):
    (workspace / "data" / "customers.parquet").unlink()
    code, body, _ = await pull("bob", "customers")
    assert code == 502 and body["error"]["code"] == "bad_gateway"


async def test_catalog_search_and_access(as_user):
    code, body = await as_user("carol", "GET", "datasets?q=signed")
    assert [d["name"] for d in body["datasets"]] == ["customers"]
    assert body["datasets"][0]["access"]["allowed"] is False  # discoverable, not readable
    code, body = await as_user("alice", "GET", "datasets?tag=crm")
    access = body["datasets"][0]["access"]
    assert access["allowed"] and access["row_filter"]
    assert access["masked_columns"] == ["balance", "email"]
    _, body = await as_user("alice", "GET", "datasets?q=nothing-like-this")
    assert body["datasets"] == []
    _code, detail = await as_user("alice", "GET", "datasets/customers")
    assert {c["name"]: c["kind"] for c in detail["columns"]} == {
        "id": "integer",
        "email": "string",
        "region": "string",
        "balance": "float",
        "plan": "string",
    }


async def test_register_a_dataset(as_user, workspace):
    (workspace / "data" / "mine.csv").write_text("k,v\na,1\nb,2\n")
    req = {
        "name": "mine",
        "title": "Mine",
        "tags": ["crm"],
        "source": {"type": "csv", "path": "data/mine.csv"},
        "columns": {"v": {"description": "a value"}},
    }
    code, body = await as_user("alice", "POST", "datasets", req)
    assert code == 201, body
    assert body["owner"] == "alice" and body["versions"][0]["row_count"] == 2
    assert (await as_user("alice", "POST", "datasets", req))[0] == 409
    bad = {**req, "name": "outside", "source": {"type": "csv", "path": "../../etc/passwd"}}
    code, body = await as_user("alice", "POST", "datasets", bad)
    assert code == 403
    code, body = await as_user(
        "alice", "POST", "datasets", {**req, "name": "x2", "source": {"type": "nope"}}
    )
    assert code == 400
    code, body = await as_user(
        "alice",
        "POST",
        "datasets",
        {**req, "name": "x3", "source": {"type": "csv", "path": "no.csv"}},
    )
    assert code == 502
    code, body = await as_user("alice", "GET", "datasets")
    assert "x2" not in [d["name"] for d in body["datasets"]]  # nothing half-written


@pytest.mark.postgres
async def test_postgres_source_is_governed_in_the_database(pull, workspace, pg_url):
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(
            sa.text(
                "CREATE TABLE customers (id bigint, email text, region text, "
                "balance double precision, plan text)"
            )
        )
        for row in CUSTOMERS:
            c.execute(
                sa.text("INSERT INTO customers VALUES (:a, :b, :c, :d, :e)"),
                dict(zip("abcde", row, strict=True)),
            )
    engine.dispose()
    url = sa.make_url(pg_url).render_as_string(hide_password=False)
    policy = POLICY.replace(
        "source: {type: parquet, path: data/customers.parquet}",
        f"source: {{type: sql, url: '{url}', table: public.customers}}",
    )
    (workspace / "dataops.yaml").write_text(policy)
    code, t, resp = await pull("alice", "customers")
    assert code == 200, t
    assert_no_secret(resp.body)
    rows = {r["id"]: r for r in t.to_pylist()}
    assert sorted(rows) == [1, 2, 6]
    assert rows[1]["email"] == "****e.eu" and rows[1]["balance"] == 1200.0
    code, t, _ = await pull("bob", "customers", where="plan = 'pro'", columns=["id", "email"])
    assert sorted(t.to_pylist(), key=lambda r: r["id"])[0] == {"id": 1, "email": EMAILS[0]}
    # PostgreSQL fails on its first rows while it streams: still the same JSON 400.
    for where in RUNTIME_FAILURES:
        code, body, _ = await pull("bob", "customers", where=where)
        assert code == 400 and body["error"]["code"] == "invalid_request", (where, body)


async def test_unreachable_sql_source_is_502_without_secrets(pull, workspace):
    policy = POLICY.replace(
        "source: {type: parquet, path: data/customers.parquet}",
        "source: {type: sql, url: 'postgresql://app:hunter2@127.0.0.1:1/none', table: customers}",
    )
    (workspace / "dataops.yaml").write_text(policy)
    code, body, raw = await pull("bob", "customers")
    assert code == 502 and body["error"]["code"] == "bad_gateway"
    assert b"hunter2" not in raw and "***" in body["error"]["message"]


class HubLikeUsers(TokenUsers):
    """Stands in for JupyterHub's identity provider (no hub can run in these tests): its
    users carry the hub's model in ``hub_user``, as jupyterhub.singleuser's do."""

    def get_user(self, handler):  # type: ignore[no-untyped-def]
        user = super().get_user(handler)
        if user is not None:
            user.hub_user = {"name": user.username, "groups": ["support"]}  # type: ignore[attr-defined]
        return user


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_hub_groups_count(jp_serverapp, as_user):
    jp_serverapp.web_app.settings["identity_provider"] = HubLikeUsers(parent=jp_serverapp)
    code, body = await as_user("carol", "GET", "status")
    assert body["user"]["groups"] == ["support"]  # from the hub, not from dataops.yaml
    code, body = await as_user("carol", "GET", "datasets/customers/preview")
    assert code == 200 and len(body["rows"]) == 6


# Filters that pass every check and fail only while the engine reads rows; the engine's
# message then quotes row values ("Overflow in multiplication of INT64 (4738381338... * 6)").
RUNTIME_FAILURES = [" * ".join(["id"] * 70) + " > 0", "id % (id - id) = 0"]


@pytest.mark.parametrize("where", RUNTIME_FAILURES)
async def test_engine_errors_at_run_time_take_one_path_and_quote_nothing(
    pull, as_user, caplog, where
):
    # Pull and preview answer the same 400, and neither the response nor the server log
    # carries the engine's text (which quotes the data).
    caplog.set_level("DEBUG")
    code, body, raw = await pull("bob", "customers", where=where)
    assert code == 400 and body["error"]["code"] == "invalid_request", body
    query = urllib.parse.quote(where)
    pcode, pbody = await as_user("bob", "GET", f"datasets/customers/preview?where={query}")
    assert pcode == 400 and pbody["error"]["message"] == body["error"]["message"]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for engine_text in ("Overflow", "Division by zero", "* 6)", "Traceback"):
        assert engine_text not in raw.decode() + json.dumps(pbody) + logged, engine_text
