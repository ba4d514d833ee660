"""The scheduler: cron schedules evaluated against the store, each fire time exactly once.

Every tick reads the non-paused definitions that have a schedule and, for each, the latest
fire time at or before *now* in the definition's time zone (croniter over zoneinfo). A fire
time is due when it is later than both the definition's last change and the last fire time
recorded for it, so a restart never fires a time twice and a new or edited schedule never
fires a time from before the edit.

Exactly once, with any number of schedulers on one store (servers sharing a PostgreSQL
store, a standalone ``jupyter dataops scheduler``): the fire is a row of
``dops_schedule_fires`` with a unique (job, fire time), inserted in the transaction that
queues the run. The scheduler whose insert commits owns the fire; every other one gets an
integrity error and writes nothing. On PostgreSQL the definition's row is also locked for the
claim, so schedulers with slightly different clocks cannot fire an older time after a newer one.

Missed fire times (no scheduler ran when they came) follow the definition's ``catchup``:
``once`` queues one run for the most recent of them; ``skip`` queues none and waits for the
next time. A time counts as missed when it is more than ``misfire_grace_s`` old.

Blocking: :meth:`Scheduler.tick` does store work; the asyncio loop runs it through
``run_blocking`` (the store's thread pool).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..exceptions import DataOpsError
from ..identity import Principal
from ..models import RunRequest
from ..store import tables as t
from .service import JobService, utcnow

log = logging.getLogger(__name__)

CATCHUP_POLICIES = ("once", "skip")


@dataclass(frozen=True)
class Fire:
    """One fire time claimed by this scheduler, and the run it queued."""

    job_id: str
    job_name: str
    fire_time: datetime  # UTC
    run_id: str


class _Lost(Exception):
    """Another scheduler claimed this fire time, or a later one, first."""


def latest_fire_time(schedule: str, tz: str, now: datetime) -> datetime:
    """The schedule's most recent fire time at or before ``now``, in UTC.

    >>> latest_fire_time("0 * * * *", "Asia/Kolkata", datetime(2026, 1, 1, 10, 45, tzinfo=timezone.utc))
    datetime.datetime(2026, 1, 1, 10, 30, tzinfo=datetime.timezone.utc)
    """  # noqa: E501
    from croniter import croniter

    # croniter's get_prev is strictly before its start: start just after now so that a fire
    # time equal to now counts.
    start = now.astimezone(ZoneInfo(tz)) + timedelta(microseconds=1)
    prev: datetime = croniter(schedule, start).get_prev(datetime)
    return prev.astimezone(timezone.utc)


def next_fire_time(schedule: str, tz: str, now: datetime | None = None) -> datetime:
    """The schedule's first fire time after ``now`` (default: now), in UTC."""
    from croniter import croniter

    start = (now or datetime.now(timezone.utc)).astimezone(ZoneInfo(tz))
    nxt: datetime = croniter(schedule, start).get_next(datetime)
    return nxt.astimezone(timezone.utc)


class Scheduler:
    """Fires cron schedules of job definitions; framework-neutral (server, CLI, tests).

    ``now`` is the clock (tests inject one); ``owner`` restricts it to one user's definitions
    (a user's server fires only its user's jobs); ``on_fire`` is called after a tick that
    queued runs (the executor's ``wake``).
    """

    def __init__(
        self,
        jobs: JobService,
        *,
        now: Callable[[], datetime] = utcnow,
        principal: Callable[[str], Principal] | None = None,
        owner: str | None = None,
        on_fire: Callable[[], None] | None = None,
        run_blocking: Callable[..., Awaitable[Any]] | None = None,
        interval_s: float = 5.0,
        misfire_grace_s: float = 30.0,
    ) -> None:
        self.jobs = jobs
        self.now = now
        self.principal = principal or (lambda name: Principal(name, name))
        self.owner = owner
        self.on_fire = on_fire
        self.run_blocking = run_blocking or jobs.store.run
        self.interval_s = interval_s
        self.misfire_grace = timedelta(seconds=misfire_grace_s)
        self._task: asyncio.Task[None] | None = None
        self._reported: set[tuple[str, str]] = set()  # failures, each logged once

    # the sync core -------------------------------------------------------------------------------
    def due(
        self,
        schedule: str,
        tz: str,
        catchup: str,
        changed_at: datetime,
        last_fire: datetime | None,
        now: datetime,
    ) -> datetime | None:
        """The fire time to claim now for one definition, or None."""
        latest = latest_fire_time(schedule, tz, now)
        since = max(changed_at, last_fire) if last_fire else changed_at
        if latest <= since:
            return None  # fired already, or from before the definition (or its last change)
        if catchup == "skip" and now - latest > self.misfire_grace:
            return None  # missed: wait for the next one
        return latest  # "once": only the latest of any missed times

    def tick(self) -> list[Fire]:
        """Claim and queue every due fire time; returns the fires this scheduler won."""
        now = self.now()
        last = func.max(t.ScheduleFire.fire_time)
        q = (
            select(
                t.JobDefinition.id,
                t.JobDefinition.name,
                t.JobDefinition.owner,
                t.JobDefinition.schedule,
                t.JobDefinition.timezone,
                t.JobDefinition.catchup,
                t.JobDefinition.updated_at,
                last,
            )
            .outerjoin(t.ScheduleFire, t.ScheduleFire.job_id == t.JobDefinition.id)
            .where(
                t.JobDefinition.schedule.is_not(None),
                t.JobDefinition.schedule != "",
                t.JobDefinition.paused.is_(False),
            )
            .group_by(t.JobDefinition.id)
        )
        if self.owner is not None:
            q = q.where(t.JobDefinition.owner == self.owner)
        with self.jobs.store.session() as s:
            rows = s.execute(q).all()
        fires = []
        for job_id, name, owner, schedule, tz, catchup, changed_at, last_fire in rows:
            if last_fire is not None and last_fire.tzinfo is None:
                last_fire = last_fire.replace(tzinfo=timezone.utc)  # SQLite's max() is naive
            try:
                when = self.due(schedule or "", tz, catchup, changed_at, last_fire, now)
            except Exception as e:  # one broken definition never stops the others
                self._report(
                    (job_id, f"{schedule} {tz}"), f"job {name}: bad schedule {schedule!r}: {e}"
                )
                continue
            if when is not None:
                fire = self._fire(job_id, name, owner, when)
                if fire is not None:
                    fires.append(fire)
        return fires

    def _fire(self, job_id: str, name: str, owner: str, when: datetime) -> Fire | None:
        lock = self.jobs.store.dialect == "postgresql"

        def claim(s: Any, run: t.Run) -> None:
            if lock:  # serializes claims of one definition across schedulers
                s.execute(
                    select(t.JobDefinition.id).where(t.JobDefinition.id == job_id).with_for_update()
                )
            s.add(t.ScheduleFire(job_id=job_id, fire_time=when, run_id=run.id, host=self.jobs.host))
            try:
                s.flush()
            except IntegrityError:
                raise _Lost from None
            later = s.scalar(
                select(func.count())
                .select_from(t.ScheduleFire)
                .where(t.ScheduleFire.job_id == job_id, t.ScheduleFire.fire_time > when)
            )
            if later:
                raise _Lost

        try:
            run, _ = self.jobs.submit(
                self.principal(owner), RunRequest(job=job_id), trigger="schedule", claim=claim
            )
        except _Lost:
            return None
        except DataOpsError as e:
            # Not recorded, so it is tried again next tick (the notebook may come back).
            self._report(
                (job_id, when.isoformat()), f"job {name} did not fire at {when}: {e.message}"
            )
            return None
        log.info("DataOps: job %s fired for %s UTC: run %s", name, f"{when:%F %T}", run.id)
        return Fire(job_id, name, when, run.id)

    def _report(self, key: tuple[str, str], message: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            log.error("DataOps: %s", message)

    # the loop ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                fires = await self.run_blocking(self.tick)
                if fires and self.on_fire is not None:
                    self.on_fire()
            except Exception:
                log.exception("DataOps: scheduler tick failed")
            # Tick on multiples of the interval, so a fire time is met within one interval.
            await asyncio.sleep(self.interval_s - time.time() % self.interval_s + 0.01)
