"""Schedules end to end: scheduled runs really execute, in the server and in
`jupyter dataops scheduler` (a real process). The core is in tests/unit/test_scheduler.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from jupyter_dataops.jobs.scheduler import Scheduler
from jupyter_dataops.models import JobDefinitionRequest
from tests.server.conftest import server_config
from tests.server.test_jobs import notebook, wait_for
from tests.unit.test_scheduler import Clock, next_fire

pytestmark = pytest.mark.kernel


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def run_scheduler() -> bool:
    return False  # the tests drive their own Scheduler on a clock they control


@pytest.fixture
def jp_server_config(store_url: str, run_scheduler: bool) -> dict[str, Any]:
    return server_config(store_url, DataOps={"run_scheduler": run_scheduler})


@pytest.fixture
def server(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop):  # type: ignore[no-untyped-def]
    notebook(jp_root_dir / "nb" / "hello.ipynb", "name = 'world'", "print(f'hello {name}')")
    jp_asyncio_loop.run_until_complete(
        jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    )
    return jp_serverapp


async def test_scheduled_runs_fire_in_the_time_zone_and_execute(server, api):
    platform = server.web_app.settings["dataops"]
    executor = server.web_app.settings["dataops_executor"]
    assert "dataops_scheduler" not in server.web_app.settings  # run_scheduler = False
    code, job = await api(
        "POST",
        "jobs",
        {
            "name": "hourly",
            "notebook_path": "nb/hello.ipynb",
            "schedule": "0 * * * *",
            "timezone": "Asia/Kolkata",
            "parameters": {"name": "cron"},
        },
    )
    assert code == 201 and job["catchup"] == "once", job
    first = next_fire("0 * * * *", "Asia/Kolkata", datetime.fromisoformat(job["updated_at"]))
    clock = Clock(first - timedelta(seconds=1))
    sched = Scheduler(platform.jobs, now=clock, principal=platform.principal)
    tick = lambda: platform.store.run(sched.tick)  # noqa: E731
    assert await tick() == []
    clock.at = first
    fires = await tick()
    clock.at = first + timedelta(minutes=59)
    assert await tick() == []
    clock.at = first + timedelta(hours=1, seconds=1)
    fires += await tick()
    executor.wake()
    assert [f.fire_time for f in fires] == [first, first + timedelta(hours=1)]
    for f in fires:
        local = f.fire_time.astimezone(ZoneInfo("Asia/Kolkata"))
        assert (local.minute, f.fire_time.minute) == (0, 30)  # on the hour in India, UTC+05:30
        done = await wait_for(api, f.run_id)
        assert done["status"] == "succeeded", done
        assert (done["trigger"], done["job_name"], done["owner"]) == ("schedule", "hourly", "ada")
        assert done["parameters"] == {"name": "cron"}
    code, body = await api("GET", "runs?job=hourly")
    assert len(body["runs"]) == 2


@pytest.mark.parametrize("run_scheduler", [True])
async def test_the_server_runs_its_scheduler_by_default(server, run_scheduler):
    from jupyter_dataops.settings import DataOps

    assert DataOps().run_scheduler is True
    sched = server.web_app.settings["dataops_scheduler"]
    assert sched.owner == "ada" and sched._task is not None and not sched._task.done()
    await server.extension_manager.stop_extension(
        "jupyter_dataops", server.extension_manager.extension_apps["jupyter_dataops"]
    )
    assert sched._task is None


def test_scheduler_process_fires_executes_and_stops_on_sigterm(tmp_path: Path):
    from jupyter_dataops.platform import Platform
    from jupyter_dataops.settings import DataOps

    notebook(tmp_path / "nb" / "hello.ipynb", "name = 'world'", "print(f'hello {name}')")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    p = Platform(DataOps(db_url=url, local_user="ada"), tmp_path)
    try:
        job = p.jobs.create_job(
            p.principal("ada"),
            JobDefinitionRequest(
                name="minutely", notebook_path="nb/hello.ipynb", schedule="* * * * *"
            ),
        )
        # The process's clock runs two minutes ahead: a fire time is due at once.
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_dataops.cli", "scheduler", f"--db-url={url}",
             "--DataOps.local_user=ada", "--DataOps.warm_kernels=0", "--interval=0.5",
             "--clock-offset=120"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            done = None
            while time.monotonic() < deadline and proc.poll() is None:
                with p.store.session() as s:
                    done = s.execute(
                        sa.text(
                            "SELECT status, trigger, host FROM dops_runs WHERE job_id = :j "
                            "AND status IN ('succeeded', 'failed')"
                        ),
                        {"j": job.id},
                    ).first()
                if done is not None:
                    break
                time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert done is not None, err
        assert tuple(done) == ("succeeded", "schedule", f"{p.jobs.host}#scheduler"), err
        assert proc.returncode == 0, err
        assert "DataOps scheduler: store" in err and "job minutely fired for" in err
        assert "DataOps scheduler: stopped" in err
        with p.store.session() as s:
            fired = s.execute(sa.text("SELECT fire_time FROM dops_schedule_fires")).all()
        assert len(fired) >= 1
        assert all(
            datetime.fromisoformat(str(f[0])).replace(tzinfo=timezone.utc).second == 0
            for f in fired
        )
    finally:
        p.close()


@pytest.mark.postgres
def test_two_scheduler_processes_on_one_postgres_fire_each_time_once(tmp_path: Path, pg_url):
    """Two machines (two workspace roots, two processes) share one PostgreSQL store; both
    tick every 0.2 s on the same clock, so both try every fire time."""
    from jupyter_dataops.platform import Platform
    from jupyter_dataops.settings import DataOps

    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        notebook(root / "nb" / "hello.ipynb", "name = 'world'", "print(f'hello {name}')")
    p = Platform(DataOps(db_url=pg_url, local_user="ada"), roots[0])
    procs: list[subprocess.Popen[str]] = []
    try:
        job = p.jobs.create_job(
            p.principal("ada"),
            JobDefinitionRequest(
                name="minutely", notebook_path="nb/hello.ipynb", schedule="* * * * *"
            ),
        )
        for root in roots:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "jupyter_dataops.cli", "scheduler", f"--db-url={pg_url}",
                 "--DataOps.local_user=ada", "--DataOps.warm_kernels=0", "--interval=0.2",
                 "--clock-offset=120"],
                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))  # fmt: skip
        deadline = time.monotonic() + 120
        done = None
        while time.monotonic() < deadline and all(x.poll() is None for x in procs):
            with p.store.session() as s:
                done = s.execute(
                    sa.text("SELECT status, host FROM dops_runs WHERE job_id = :j AND "
                            "status IN ('succeeded', 'failed')"), {"j": job.id},
                ).first()  # fmt: skip
            if done is not None:
                break
            time.sleep(0.3)
        time.sleep(2)  # both keep ticking on that fire time (and maybe the next)
        errs = []
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            errs.append(proc.communicate(timeout=60)[1])
        assert done is not None and done[0] == "succeeded", errs
        assert [proc.returncode for proc in procs] == [0, 0], errs
        assert all("DataOps scheduler: store" in e and "Traceback" not in e for e in errs), errs
        with p.store.session() as s:
            fires = s.execute(sa.text("SELECT fire_time, run_id FROM dops_schedule_fires")).all()
            runs = s.execute(sa.text("SELECT id FROM dops_runs WHERE trigger = 'schedule'")).all()
        times = [f[0] for f in fires]
        assert len(times) == len(set(times)) >= 1  # each fire time once ...
        assert sorted(r[0] for r in runs) == sorted(f[1] for f in fires)  # ... one run each
        fired_lines = sum(e.count("job minutely fired for") for e in errs)
        assert fired_lines == len(fires), errs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        p.close()
