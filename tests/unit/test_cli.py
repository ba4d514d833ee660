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


def _governed_workspace(root: Path) -> None:
    from tests.server.test_governance import POLICY, write_customers

    write_customers(root / "data" / "customers.parquet")
    (root / "dataops.yaml").write_text(POLICY)


def test_catalog_lists_and_describes(tmp_path):
    _governed_workspace(tmp_path)
    r = run("catalog", "--DataOps.local_user=alice", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "customers" in r.stdout and "read" in r.stdout
    r = run("catalog", "customers", "--json", "--DataOps.local_user=alice", cwd=tmp_path)
    d = json.loads(r.stdout)
    assert d["access"]["masked_columns"] == ["balance", "email"]
    assert d["versions"][0]["row_count"] == 6
    r = run("catalog", "customer", "--DataOps.local_user=alice", cwd=tmp_path)
    assert r.returncode == 2 and "did you mean customers" in r.stderr


def test_audit_filters_and_csv(tmp_path):
    from jupyter_dataops.exceptions import Forbidden
    from jupyter_dataops.models import ReadRequest
    from jupyter_dataops.platform import Platform
    from jupyter_dataops.settings import DataOps

    _governed_workspace(tmp_path)
    p = Platform(DataOps(), tmp_path)
    try:
        for name in ("alice", "carol"):
            user = p.principal(name)
            try:
                plan = p.catalog.plan(user, "customers", ReadRequest(), "read")
            except Forbidden:
                continue
            rows = plan.source.execute(plan.sql).read_all().num_rows
            p.catalog.finish(user, plan, "read", rows)
    finally:
        p.close()
    r = run("audit", "--csv", "--DataOps.local_user=root", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("id,at,user,")
    assert [ln.split(",")[2] for ln in lines[1:]] == ["carol", "alice"]
    r = run("audit", "--decision=denied", "--json", "--DataOps.local_user=root", cwd=tmp_path)
    events = json.loads(r.stdout)["events"]
    assert [(e["user"], e["decision"]) for e in events] == [("carol", "denied")]
    r = run("audit", "--DataOps.local_user=alice", cwd=tmp_path)
    assert r.returncode == 2 and "for admins" in r.stderr
    r = run("audit", "--since=yesterday", "--DataOps.local_user=root", cwd=tmp_path)
    assert r.returncode == 2 and "ISO 8601" in r.stderr


def test_register_from_a_spec_file(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,x\n2,y\n")
    (tmp_path / "spec.yaml").write_text(
        "name: mine\ntitle: Mine\nsource: {type: csv, path: d.csv}\n"
    )
    r = run("register", "spec.yaml", "--DataOps.local_user=ada", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "registered mine (owner ada): 2 rows" in r.stdout
    r = run("register", "spec.yaml", "--DataOps.local_user=ada", cwd=tmp_path)
    assert r.returncode == 2 and "already exists" in r.stderr
    (tmp_path / "bad.yaml").write_text("name: 1bad\nsource: {}\n")
    r = run("register", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "not a valid dataset spec" in r.stderr


def parameterized(path: Path, parameters: str, code: str, kernel: str = "python3") -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "language": "python", "display_name": "P"}
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)


def test_run_a_notebook_from_the_terminal(tmp_path):
    parameterized(
        tmp_path / "report.ipynb", "alpha = 0.1", "print('alpha is', alpha)\nassert alpha < 1"
    )
    r = run("run", "report.ipynb", "-p", "alpha", "0.5", "--wait", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert done["status"] == "succeeded" and done["parameters"] == {"alpha": 0.5}
    log = (tmp_path / ".dataops" / "runs" / done["id"] / "run.log").read_text()
    assert "alpha is 0.5" in log
    r = run("run", "report.ipynb", "-p", "alpha", "2", "--wait", cwd=tmp_path)
    assert r.returncode == 1 and "AssertionError" in r.stdout
    r = run("run", "report.ipynb", "-p", "alpah", "2", cwd=tmp_path)
    assert r.returncode == 2 and "unknown parameter 'alpah'" in r.stderr
    r = run("jobs", "--json", cwd=tmp_path)
    assert [x["status"] for x in json.loads(r.stdout)["runs"]] == ["failed", "succeeded"]


def test_run_picks_a_kernel_and_resolves_names_as_papermill(tmp_path):
    # `python` is jupyter_client's native kernel: papermill runs such notebooks, so does `run`.
    parameterized(tmp_path / "py.ipynb", "x = 1", "print('x is', x)", kernel="python")
    r = run("run", "py.ipynb", "--wait", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert done["status"] == "succeeded" and done["kernel_name"] == "python3"
    # A kernel this machine does not have: the error names the installed ones, and --kernel
    # runs the notebook in one of them.
    parameterized(tmp_path / "r.ipynb", "x = 1", "print('x is', x)", kernel="ir")
    r = run("run", "r.ipynb", "--wait", cwd=tmp_path)
    assert r.returncode == 2 and "the notebook's kernel 'ir' is not installed" in r.stderr
    assert "python3" in r.stderr
    r = run("run", "r.ipynb", "--kernel", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "unknown kernel 'nope'; installed:" in r.stderr
    r = run("run", "r.ipynb", "--kernel", "python3", "-p", "x", "2", "--wait", "--json",
            cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert done["status"] == "succeeded" and done["kernel_name"] == "python3"
    log = (tmp_path / ".dataops" / "runs" / done["id"] / "run.log").read_text()
    assert "x is 2" in log
    r = run("schedule", "nightly", "r.ipynb", "--cron", "0 6 * * *", "--kernel", "Python3",
            "--json", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["jobs"][0]["kernel_name"] == "python3"


def test_schedule_a_notebook_from_the_terminal(tmp_path):
    parameterized(tmp_path / "delays.ipynb", "min_delay = 15", "print(min_delay)")
    r = run(
        "schedule", "nightly", "delays.ipynb", "--cron", "0 6 * * 1-5", "--tz", "Europe/Paris",
        "-p", "min_delay", "30", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (job,) = json.loads(r.stdout)["jobs"]
    assert (job["schedule"], job["timezone"], job["parameters"]) == (
        "0 6 * * 1-5",
        "Europe/Paris",
        {"min_delay": 30},
    )
    # 06:00 in Paris is 05:00 UTC in winter (04:00 in summer), on a weekday.
    from datetime import datetime

    nxt = datetime.fromisoformat(job["next_fire_at"])
    assert nxt.hour in (4, 5) and nxt.minute == 0 and nxt.weekday() < 5
    r = run("schedule", "nightly", "--pause", "--json", cwd=tmp_path)
    (job,) = json.loads(r.stdout)["jobs"]
    assert job["paused"] is True and job["next_fire_at"] is None
    r = run("schedule", "nightly", "-p", "min_delay", "45", "--resume", "--json", cwd=tmp_path)
    (job,) = json.loads(r.stdout)["jobs"]
    assert job["paused"] is False and job["parameters"] == {"min_delay": 45}
    # Bad input: a clear error, exit 2, and the definition is unchanged.
    r = run("schedule", "nightly", "-p", "min_dela", "1", cwd=tmp_path)
    assert r.returncode == 2 and "unknown parameter 'min_dela'" in r.stderr
    r = run("schedule", "nightly", "--cron", "61 * * * *", cwd=tmp_path)
    assert r.returncode == 2 and "invalid cron schedule '61 * * * *'" in r.stderr
    r = run("schedule", "other", "delays.ipynb", cwd=tmp_path)
    assert r.returncode == 2 and "give NOTEBOOK and --cron" in r.stderr
    r = run("schedule", "--json", cwd=tmp_path)
    (job,) = json.loads(r.stdout)["jobs"]
    assert job["schedule"] == "0 6 * * 1-5" and job["parameters"] == {"min_delay": 45}
    r = run("schedule", "nightly", "--delete", cwd=tmp_path)
    assert r.returncode == 0
    assert json.loads(run("schedule", "--json", cwd=tmp_path).stdout)["jobs"] == []


def test_publish_a_dashboard_from_the_terminal(tmp_path):
    from tests.server.test_dashboards import WIDGET_NB, dashboard_notebook

    dashboard_notebook(tmp_path / "report.ipynb", *WIDGET_NB)
    r = run("publish", "weekly", "report.ipynb", "-p", "n", "9", "--groups", "ops,finance",
            "--title", "Weekly", "--wait", "--json", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)["dashboards"][0]
    assert d["slug"] == "weekly" and d["title"] == "Weekly" and d["job_name"] == "dashboard-weekly"
    assert d["viewers"] == {"users": [], "groups": ["finance", "ops"]}
    assert d["last_render"]["status"] == "rendered" and d["last_render"]["parameters"] == {"n": 9}
    page = tmp_path / ".dataops" / "dashboards" / d["id"] / f"{d['last_render']['run_id']}.html"
    assert "carriers: 9" in page.read_text()  # rendered by the process that ran it
    r = run("publish", cwd=tmp_path)
    assert r.returncode == 0 and "weekly" in r.stdout and "dashboard-weekly" in r.stdout
    r = run("publish", "weekly", "report.ipynb", cwd=tmp_path)
    assert r.returncode == 2 and "a dashboard 'weekly' exists" in r.stderr
    r = run("publish", "weekly", "--unpublish", cwd=tmp_path)
    assert r.returncode == 0 and "unpublished" in r.stdout
    r = run("publish", "--json", cwd=tmp_path)
    assert json.loads(r.stdout)["dashboards"] == []


def test_the_demo_publishes_its_dashboard_once(tmp_path):
    import shutil

    root = Path(__file__).resolve().parents[2] / "notebooks"
    for name in ("dataops.yaml", "dashboard.ipynb"):
        shutil.copy(root / name, tmp_path / name)
    r = run("demo", "--DataOps.local_user=root", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "dashboard flight-delays published" in r.stdout
    r = run("demo", "--DataOps.local_user=root", cwd=tmp_path)
    assert "already published" in r.stdout
    r = run("publish", "--json", "--DataOps.local_user=root", cwd=tmp_path)
    d = json.loads(r.stdout)["dashboards"][0]
    assert d["slug"] == "flight-delays" and d["live"] is True and d["pending_run"]
    assert d["viewers"]["groups"] == ["analysts", "ops"]
