"""Team ownership: a job owned by a group is changed and run by any member, its runs act with
the group's grants (never the union of its members'), and the audit log names each member."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .conftest import server_config
from .test_authorization import _fetch
from .test_jobs import wait_for

pytestmark = pytest.mark.kernel

POLICY = """
admins: [root]
groups:
  analysts:
    members: [alice, erin]
  ops:
    members: [bob]
datasets:
  flights:
    owner: root
    source: {type: csv, path: data/flights.csv}
  salaries:
    owner: root
    source: {type: csv, path: data/salaries.csv}
grants:
  - groups: [analysts]
    datasets: [flights]
    row_filter: "origin = 'JFK'"
  - users: [alice]
    datasets: [salaries]
    description: alice's own grant
"""

PULLS = """
import json, jupyter_dataops as dops
out = {"flights": sorted(dops.pull("flights")["origin"].unique().tolist())}
try:
    dops.pull("salaries")
    out["salaries"] = "read"
except dops.DataOpsClientError as e:
    out["salaries"] = e.status
print("TEAM", json.dumps(out))
"""


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jp_server_config(store_url: str) -> dict[str, Any]:
    return server_config(
        store_url,
        ServerApp={"identity_provider_class": "tests.server.identities.HeaderUsers"},
        DataOps={"warm_kernels": 1, "job_workers": 1},
    )


@pytest.fixture
def team(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop):  # type: ignore[no-untyped-def]
    (jp_root_dir / "dataops.yaml").write_text(POLICY)
    data = jp_root_dir / "data"
    data.mkdir()
    (data / "flights.csv").write_text("origin,dep_delay\nJFK,5\nLGA,70\nJFK,1\n")
    (data / "salaries.csv").write_text("name,salary\nann,100\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.cells = [nbformat.v4.new_code_cell(PULLS)]
    nbformat.write(nb, jp_root_dir / "pulls.ipynb")
    jp_asyncio_loop.run_until_complete(
        jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    )
    return jp_serverapp


def _as(name: str) -> dict[str, str]:
    return {"Authorization": f"token user-{name}"}


async def test_a_teams_job_is_the_teams(team, jp_fetch, api):
    # alice gives the job to her team; bob (another team) cannot; nobody can pose as one.
    job = {"name": "daily", "notebook_path": "pulls.ipynb", "owner_group": "analysts"}
    resp = await _fetch(jp_fetch, "jobs", "post", _as("bob"), job)
    assert resp.code == 403 and "analysts" in json.loads(resp.body)["error"]["message"]
    resp = await _fetch(jp_fetch, "jobs", "post", _as("alice"), job)
    assert resp.code == 201 and json.loads(resp.body)["owner"] == "group:analysts"
    resp = await _fetch(jp_fetch, "status", "get", _as("group:analysts"), None)
    assert resp.code == 403

    # Another member changes it and runs it; a non-member does not even see it.
    patch = {"description": "erin's now"}
    resp = await _fetch(jp_fetch, "jobs/daily", "patch", _as("erin"), patch)
    assert resp.code == 200, resp.body
    resp = await _fetch(jp_fetch, "jobs/daily", "patch", _as("bob"), patch)
    assert resp.code == 404
    resp = await _fetch(jp_fetch, "runs", "post", _as("erin"), {"job": "daily"})
    assert resp.code == 201
    run = json.loads(resp.body)
    assert run["owner"] == "group:analysts" and run["triggered_by"] == "erin"

    done = await wait_for(lambda m, p: api(m, p, headers=_as("alice")), run["id"])
    assert done["status"] == "succeeded", done
    resp = await _fetch(jp_fetch, f"runs/{run['id']}/outputs/log", "get", _as("alice"), None)
    result = json.loads(resp.body.decode().split("TEAM ", 1)[1].splitlines()[0])
    # The group's grant (with its row filter), and not alice's own grant.
    assert result == {"flights": ["JFK"], "salaries": 403}

    # The audit log names each member who acted, and whose rights the run used.
    resp = await _fetch(jp_fetch, "audit?limit=50", "get", _as("root"), None)
    events = json.loads(resp.body)["events"]
    who = {(e["action"], e["user"], e["actor"], e["dataset"] or e["target"]) for e in events}
    assert ("job.create", "alice", None, "job:daily") in who
    assert ("job.update", "erin", None, "job:daily") in who
    assert ("run.submit", "erin", None, f"run:{run['id']}") in who
    assert ("read", "group:analysts", "erin", "flights") in who
    denied = [e for e in events if e["dataset"] == "salaries"]
    assert denied and denied[0]["decision"] == "denied" and denied[0]["actor"] == "erin"
