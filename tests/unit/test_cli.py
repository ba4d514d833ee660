"""`jupyter dataops ...` as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from jupyter_dataops.store.migrate import head_revision


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_dataops.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_subcommands(tmp_path):
    r = run("--help", cwd=tmp_path)
    assert r.returncode == 0
    for sub in ("status", "validate", "migrate"):
        assert f"\n{sub}\n" in r.stdout


def test_status_without_a_server(tmp_path, store_url):
    (tmp_path / "dataops.yaml").write_text("groups:\n  analysts:\n    members: [ada]\n")
    r = run("status", "--json", f"--db-url={store_url}", "--DataOps.local_user=ada", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["user"] == {"name": "ada", "display_name": "ada", "groups": ["analysts"]}
    assert st["store"]["revision"] == head_revision()
    assert st["counts"] == {"datasets": 0, "jobs": 0, "runs": 0, "dashboards": 0}
    text = run("status", f"--db-url={store_url}", "--DataOps.local_user=ada", cwd=tmp_path)
    assert "0 datasets, 0 jobs, 0 runs, 0 dashboards" in text.stdout
    assert "groups: analysts" in text.stdout


def test_status_default_store_is_sqlite_in_the_workspace(tmp_path):
    r = run("status", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["store"]["url"] == f"sqlite:///{tmp_path.resolve() / '.dataops' / 'dataops.db'}"
    assert (tmp_path / ".dataops" / "dataops.db").exists()


def test_validate_names_file_and_line(tmp_path):
    (tmp_path / "dataops.yaml").write_text("groups:\n  a:\n    members: 5\n")
    r = run("validate", cwd=tmp_path)
    assert r.returncode == 1
    assert f"{tmp_path.resolve() / 'dataops.yaml'}:3: groups.a.members:" in r.stderr
    (tmp_path / "dataops.yaml").write_text("groups: {}\n")
    r = run("validate", cwd=tmp_path)
    assert r.returncode == 0 and "valid" in r.stdout


def test_migrate_brings_an_empty_store_to_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    r = run("migrate", f"--db-url={url}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"empty -> {head_revision()}" in r.stdout
    with sa.create_engine(url).connect() as c:
        assert "dops_runs" in sa.inspect(c).get_table_names()


def test_bad_store_url_is_a_clear_error(tmp_path):
    r = run("status", "--db-url=mysql://x@h/db", cwd=tmp_path)
    assert r.returncode == 2
    assert "unsupported metadata store" in r.stderr
    assert "Traceback" not in r.stderr
