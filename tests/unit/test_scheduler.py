"""The scheduler's core on a real store: due times, catch-up policy, restarts, exactly once.

Runs are only queued here (no executor); tests/server/test_scheduler.py executes them.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import nbformat
import pytest
import sqlalchemy as sa
from croniter import croniter

from jupyter_dataops.identity import Principal, TokenSigner
from jupyter_dataops.jobs.scheduler import Scheduler, latest_fire_time
from jupyter_dataops.jobs.service import JobService
from jupyter_dataops.models import JobDefinitionPatch, JobDefinitionRequest
from jupyter_dataops.store import Store
from jupyter_dataops.store import tables as t

ADA = Principal("ada", "ada")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def service(root: Path, url: str) -> JobService:
    store = Store(url)
    store.migrate()
    return JobService(store, root, TokenSigner(b"k" * 32), lambda: [])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, tmp_path / "report.ipynb")
    return tmp_path


@pytest.fixture
def jobs(workspace: Path, store_url: str):  # type: ignore[no-untyped-def]
    svc = service(workspace, store_url)
    yield svc
    svc.store.close()


def define(jobs: JobService, name: str, schedule: str, **kw) -> tuple[str, datetime]:  # type: ignore[no-untyped-def]
    req = JobDefinitionRequest(name=name, notebook_path="report.ipynb", schedule=schedule, **kw)
    job = jobs.create_job(ADA, req)
    return job.id, job.updated_at


def next_fire(schedule: str, tz: str, after: datetime) -> datetime:
    nxt: datetime = croniter(schedule, after.astimezone(ZoneInfo(tz))).get_next(datetime)
    return nxt.astimezone(timezone.utc)


def runs(jobs: JobService, job_id: str) -> list[t.Run]:
    with jobs.store.session() as s:
        q = sa.select(t.Run).where(t.Run.job_id == job_id).order_by(t.Run.created_at)
        return list(s.scalars(q))


def test_latest_fire_time_is_computed_in_the_time_zone():
    now = datetime(2026, 11, 22, 16, 0, tzinfo=timezone.utc)
    # 09:00 in New York is 14:00 UTC in November (EST), 13:00 UTC in July (EDT).
    assert latest_fire_time("0 9 * * *", "America/New_York", now) == now.replace(hour=14)
    july = datetime(2026, 7, 1, 16, 0, tzinfo=timezone.utc)
    assert latest_fire_time("0 9 * * *", "America/New_York", july) == july.replace(hour=13)
    # A fire time equal to now is due now.
    at = datetime(2026, 11, 22, 14, 0, tzinfo=timezone.utc)
    assert latest_fire_time("0 9 * * *", "America/New_York", at) == at


def test_fires_at_its_times_in_its_time_zone_once_each(jobs):
    job_id, changed = define(jobs, "kolkata", "0 * * * *", timezone="Asia/Kolkata")
    first = next_fire("0 * * * *", "Asia/Kolkata", changed)
    clock = Clock(first - timedelta(seconds=1))
    sched = Scheduler(jobs, now=clock)
    assert sched.tick() == []
    clock.at = first
    [fire] = sched.tick()
    assert fire.fire_time == first and first.minute == 30  # India is UTC+05:30
    assert first.astimezone(ZoneInfo("Asia/Kolkata")).minute == 0
    clock.at = first + timedelta(minutes=20)
    assert sched.tick() == []  # this hour's time fired already
    clock.at = first + timedelta(hours=1, seconds=3)
    [second] = sched.tick()
    assert second.fire_time == first + timedelta(hours=1)
    [r1, r2] = runs(jobs, job_id)
    assert [r1.id, r2.id] == [fire.run_id, second.run_id]
    assert {(r.trigger, r.owner, r.triggered_by, r.status) for r in (r1, r2)} == {
        ("schedule", "ada", "ada", "queued")
    }
    assert r1.host == jobs.host  # executed by whoever runs this scheduler


@pytest.mark.parametrize("catchup, expected", [("once", 1), ("skip", 0)])
def test_missed_fires_follow_the_catchup_policy(jobs, catchup, expected):
    job_id, changed = define(jobs, "every10", "*/10 * * * *", catchup=catchup)
    first = next_fire("*/10 * * * *", "UTC", changed)
    # Down for three periods: the scheduler comes back 5 minutes after the third time.
    clock = Clock(first + timedelta(minutes=25))
    sched = Scheduler(jobs, now=clock, misfire_grace_s=30)
    fires = sched.tick()
    assert len(fires) == expected
    if catchup == "once":
        assert fires[0].fire_time == first + timedelta(minutes=20)  # the most recent one
    assert sched.tick() == []
    assert len(runs(jobs, job_id)) == expected
    # Back on time: the next time fires under both policies.
    clock.at = first + timedelta(minutes=30, seconds=2)
    [fire] = sched.tick()
    assert fire.fire_time == first + timedelta(minutes=30)
    assert len(runs(jobs, job_id)) == expected + 1


def test_times_before_the_definition_or_its_last_change_never_fire(jobs):
    job_id, changed = define(jobs, "new", "* * * * *")
    clock = Clock(changed + timedelta(seconds=0.5))
    assert Scheduler(jobs, now=clock).tick() == []  # the minute began before the definition
    assert runs(jobs, job_id) == []


def test_a_restarted_scheduler_does_not_fire_past_fires_again(workspace, store_url):
    a = service(workspace, store_url)
    job_id, changed = define(a, "nightly", "0 2 * * *", timezone="Europe/Paris")
    first = next_fire("0 2 * * *", "Europe/Paris", changed)
    clock = Clock(first + timedelta(seconds=1))
    [fire] = Scheduler(a, now=clock).tick()
    a.store.close()

    b = service(workspace, store_url)  # a new process over the same store
    try:
        for later in (timedelta(seconds=2), timedelta(hours=3), timedelta(hours=23)):
            clock.at = first + later
            assert Scheduler(b, now=clock).tick() == []
        clock.at = first + timedelta(days=1, seconds=4)
        [again] = Scheduler(b, now=clock).tick()
        assert again.fire_time == first + timedelta(days=1)
        assert [r.id for r in runs(b, job_id)] == [fire.run_id, again.run_id]
    finally:
        b.store.close()


def test_paused_definitions_never_fire(jobs):
    job_id, changed = define(jobs, "paused", "* * * * *", paused=True)
    clock = Clock(changed)
    sched = Scheduler(jobs, now=clock)
    for minutes in (1, 2, 5, 60, 24 * 60):
        clock.at = changed + timedelta(minutes=minutes, seconds=1)
        assert sched.tick() == []
    assert runs(jobs, job_id) == []
    # Resumed: the times missed while paused are not caught up (the change resets them).
    jobs.update_job(ADA, "paused", JobDefinitionPatch(paused=False))
    resumed = jobs.get_job(ADA, "paused").updated_at
    clock.at = resumed + timedelta(seconds=1)
    fires = sched.tick()
    assert all(f.fire_time > resumed for f in fires) and len(fires) <= 1


def test_only_the_owner_filter_s_jobs_fire(jobs):
    define(jobs, "adas", "* * * * *")
    bob_job = jobs.create_job(
        Principal("bob", "bob"),
        JobDefinitionRequest(name="bobs", notebook_path="report.ipynb", schedule="* * * * *"),
    )
    clock = Clock(bob_job.updated_at + timedelta(minutes=2))
    fires = Scheduler(jobs, now=clock, owner="bob").tick()
    assert [f.job_name for f in fires] == ["bobs"]
    assert runs(jobs, bob_job.id)[0].owner == "bob"


def test_a_broken_notebook_does_not_stop_other_schedules(jobs, workspace):
    bad_id, changed = define(jobs, "gone", "* * * * *")
    define(jobs, "fine", "* * * * *")
    (workspace / "report.ipynb").rename(workspace / "moved.ipynb")
    jobs.update_job(ADA, "fine", JobDefinitionPatch(notebook_path="moved.ipynb"))
    clock = Clock(datetime.now(timezone.utc) + timedelta(minutes=2))
    fires = Scheduler(jobs, now=clock).tick()
    assert [f.job_name for f in fires] == ["fine"]
    with jobs.store.session() as s:  # nothing was recorded for the failed fire: it is retried
        n = s.scalar(sa.select(sa.func.count()).where(t.ScheduleFire.job_id == bad_id))
    assert n == 0


def test_exactly_once_with_concurrent_schedulers(workspace, store_url):
    """Four schedulers (own engines, as four processes) tick at the same instants."""
    owners = [service(workspace, store_url) for _ in range(4)]
    try:
        ids = [define(owners[0], f"job{i}", "* * * * *")[0] for i in range(3)]
        changed = owners[0].get_job(ADA, "job2").updated_at
        first = next_fire("* * * * *", "UTC", changed)
        times = [first + timedelta(minutes=k) for k in range(4)]
        won: list = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        for when in times:
            barrier = threading.Barrier(len(owners))

            def go(
                svc: JobService,
                skew: float,
                when: datetime = when,
                barrier: threading.Barrier = barrier,
            ) -> None:
                sched = Scheduler(svc, now=lambda: when + timedelta(seconds=skew))
                try:
                    barrier.wait()
                    fires = sched.tick()
                    with lock:
                        won.extend(fires)
                except BaseException as e:
                    errors.append(e)

            threads = [
                threading.Thread(target=go, args=(svc, 0.1 * i)) for i, svc in enumerate(owners)
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        assert errors == []
        keys = [(f.job_id, f.fire_time) for f in won]
        assert sorted(keys) == sorted((j, w) for j in ids for w in times)  # each exactly once
        with owners[0].store.session() as s:
            all_runs = list(s.scalars(sa.select(t.Run).where(t.Run.trigger == "schedule")))
            fires = list(s.scalars(sa.select(t.ScheduleFire)))
        assert len(all_runs) == len(fires) == len(ids) * len(times)
        assert {r.id for r in all_runs} == {f.run_id for f in fires}
        # The losers left no run directories behind.
        assert len(list((workspace / ".dataops" / "runs").iterdir())) == len(all_runs)
    finally:
        for svc in owners:
            svc.store.close()
