"""The workspace's state directory (.dataops/: the store, the key, every run's files) is
refused as such wherever a user names a path: notebooks (runs, jobs, parameters) and file
datasets, under its own name, through a symlink, or reached by a directory or a glob."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.test_governance import as_user, jp_server_config, workspace  # noqa: F401
from tests.server.test_jobs import jobs, notebook, store_url  # noqa: F401

pytestmark = pytest.mark.kernel


async def test_a_notebook_in_the_state_directory_never_becomes_a_runs_input(jobs, api, jp_root_dir):  # noqa: F811
    state = jp_root_dir / ".dataops"
    notebook(state / "evil.ipynb", "x = 1", "print('ran from the state directory')")
    (jp_root_dir / "nb" / "state").symlink_to(state)  # the same directory under another name
    for path in (".dataops/evil.ipynb", "nb/state/evil.ipynb", "nb/../.dataops/evil.ipynb"):
        code, body = await api("POST", "runs", {"notebook_path": path})
        assert code == 403, body
        assert body["error"]["details"]["state_dir"] == ".dataops"
        assert "state directory" in body["error"]["message"]
        code, body = await api("GET", f"notebooks/parameters?path={path}")
        assert code == 403, body
        code, body = await api("POST", "jobs", {"name": "evil", "notebook_path": path})
        assert code == 403, body
    code, body = await api("GET", "runs")
    assert body["runs"] == []
    code, body = await api("GET", "jobs")
    assert body["jobs"] == []
    # A definition cannot be moved there either.
    code, job = await api("POST", "jobs", {"name": "fine", "notebook_path": "nb/hello.ipynb"})
    assert code == 201, job
    code, body = await api("PATCH", "jobs/fine", {"notebook_path": ".dataops/evil.ipynb"})
    assert code == 403, body
    code, job = await api("GET", "jobs/fine")
    assert job["notebook_path"] == "nb/hello.ipynb"


def _run_log(root: Path) -> Path:
    """Another user's run log, where the platform keeps it (its lines parse as CSV)."""
    log = root / ".dataops" / "runs" / "r1" / "run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("token,value\nhunter2,1\n")
    return log


async def test_a_file_dataset_cannot_read_the_state_directory(as_user, workspace: Path):  # noqa: F811
    _run_log(workspace)
    (workspace / "data" / "logs").symlink_to(workspace / ".dataops" / "runs")
    for path in (
        ".dataops/runs/*/run.log",
        ".dataops/runs/r1/run.log",
        "./.dataops/runs/r1/run.log",
        "data/logs/*/run.log",
        "data/logs/r1/run.log",
        "data/../.dataops/runs/r1/run.log",
    ):
        req = {"name": "logs", "tags": ["crm"], "source": {"type": "csv", "path": path}}
        code, body = await as_user("alice", "POST", "datasets", req)
        assert code == 403, (path, body)
        assert body["error"]["details"]["state_dir"] == ".dataops", body
    code, body = await as_user("bob", "GET", "datasets")
    assert "logs" not in [d["name"] for d in body["datasets"]]


async def test_a_directory_or_glob_dataset_skips_the_state_directory(as_user, workspace: Path):  # noqa: F811
    (workspace / ".dataops" / "runs" / "r1").mkdir(parents=True, exist_ok=True)
    (workspace / ".dataops" / "runs" / "r1" / "out.csv").write_text("token,value\nhunter2,1\n")
    (workspace / "data" / "plain.csv").write_text("token,value\nvisible,2\n")
    (workspace / "data" / "runs").symlink_to(workspace / ".dataops" / "runs")
    for name, path in (("everything", "."), ("globbed", "**/*.csv"), ("under_data", "data")):
        req = {"name": name, "tags": ["crm"], "source": {"type": "csv", "path": path}}
        code, body = await as_user("alice", "POST", "datasets", req)
        assert code == 201, (path, body)
        code, body = await as_user("bob", "GET", f"datasets/{name}/preview")
        assert code == 200, body
        assert [r["token"] for r in body["rows"]] == ["visible"], (path, body)
