"""Dashboards: publishing, who may see them, their renders and their history.

A dashboard's source is a job definition; it shows that job's latest successful run, rendered
once (:mod:`.render`) when the run ends (:meth:`DashboardService.run_ended`, called by the job
service), and served from that cache to every viewer. A published view shows what its job's
owner could read when it ran, so only that owner publishes it (admins may read and unpublish,
never publish for someone), and every publication, change, share and view is audited.

Access comes from governance, not from the notebook: a viewer needs the dashboard only, not
the notebook nor the data grants. Someone who may not see a dashboard learns nothing of it,
not even whether it exists.

Blocking (store, files, nbconvert): call through the platform's pools.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..exceptions import Conflict, Forbidden, InvalidRequest, NotFound
from ..governance import audit
from ..identity import GROUP_PREFIX, Principal
from ..models import (
    DashboardInfo,
    DashboardPatch,
    DashboardRequest,
    JobDefinitionRequest,
    RenderInfo,
    RunRequest,
    ShareLinkInfo,
    ShareLinkRequest,
    StaleInfo,
    SubscriptionInfo,
    SubscriptionRequest,
    Viewers,
)  # fmt: skip
from ..paths import STATE_DIR
from ..store import Store
from ..store import tables as t
from . import render

log = logging.getLogger(__name__)

FAILED = ("failed", "timed_out")
SHARE_COOKIE = "dataops-share"
HISTORY = 10  # earlier renders listed in a view's header


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class Share:
    """A share link's holder: someone without an account, who may see one dashboard."""

    link_id: str
    dashboard_id: str
    label: str

    @property
    def principal(self) -> Principal:
        return Principal(f"share:{self.link_id}", self.label or "share link", (), "share")


@dataclass
class View:
    """What a viewer gets: the cached page of one render, and the facts of its header."""

    page: Path
    header: render.Header


@dataclass
class LiveRun:
    """What a viewer's live view executes, and where."""

    slug: str
    viewer: str
    notebook: Any  # the nbformat notebook, parameters injected
    notebook_path: str  # in the workspace: its directory is the kernel's
    kernel_name: str
    parameters: dict[str, Any]


def parse_query(declared: dict[str, dict[str, Any]], query: dict[str, list[bytes]]) -> dict:
    """Query-string values as the notebook's parameters: text for ``str`` parameters, Python
    literals for the others (as papermill's ``-p``); typed by :func:`validate_parameters`."""
    from ..jobs.parameters import parse_cli_value

    out: dict[str, Any] = {}
    for name, values in query.items():
        try:
            text = values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"parameter {name!r} is not UTF-8 text",
                                 details={"parameter": name}) from None  # fmt: skip
        if any(ord(ch) < 32 for ch in text):
            raise InvalidRequest(f"parameter {name!r} has control characters",
                                 details={"parameter": name})  # fmt: skip
        kind = (declared.get(name) or {}).get("type")
        if kind == "str":
            out[name] = text
        elif kind == "bool" and text.lower() in ("true", "false", "1", "0", "yes", "no"):
            out[name] = text.lower() in ("true", "1", "yes")
        else:
            out[name] = parse_cli_value(text)
    return out


class NoView(Exception):
    """The dashboard exists and may be seen, but has nothing to show yet (no good run)."""

    def __init__(self, message: str, pending: bool) -> None:
        super().__init__(message)
        self.message = message
        self.pending = pending


class DashboardService:
    def __init__(
        self,
        store: Store,
        jobs: Any,
        root: Path,
        admins: Callable[[], Any],
        notifier: Any = None,
    ) -> None:
        self.store = store
        self.notifier = notifier  # e-mails subscribers after each new render
        self.jobs = jobs
        self.root = root
        self._admins = admins
        self.cache_dir = root / STATE_DIR / "dashboards"
        # Set by experiment tracking (issue 11): the URL of a run's experiment, for the header
        # of users who may see it; None hides the link.
        self.experiment_url: Callable[[str], str | None] = lambda run_id: None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataops-render")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._rendering: dict[tuple[str, str], threading.Lock] = {}

    # -- who may do what ------------------------------------------------------------------------
    def is_admin(self, user: Principal) -> bool:
        return user.name in self._admins()

    @staticmethod
    def _owns(user: Principal, owner: str) -> bool:
        if owner == user.name:
            return True
        return owner.startswith(GROUP_PREFIX) and owner[len(GROUP_PREFIX) :] in user.groups

    def may_view(self, user: Principal, d: t.Dashboard) -> bool:
        if self._owns(user, d.owner) or self.is_admin(user):
            return True
        viewers = d.viewers or {}
        if user.name in (viewers.get("users") or []):
            return True
        return bool(set(user.groups) & set(viewers.get("groups") or []))

    def may_manage(self, user: Principal, d: t.Dashboard) -> bool:
        return self._owns(user, d.owner) or self.is_admin(user)

    def _act_as_owner(self, user: Principal, d: t.Dashboard, what: str) -> None:
        if not self._owns(user, d.owner):
            raise Forbidden(
                f"only {d.owner}, its owner, may {what}; admins may read and unpublish it",
                details={"owner": d.owner},
            )

    def _find(self, s: Any, slug: str) -> t.Dashboard | None:
        return s.scalar(select(t.Dashboard).where(t.Dashboard.name == slug))

    def _visible(self, s: Any, user: Principal, slug: str) -> t.Dashboard:
        d = self._find(s, slug)
        if d is None or not self.may_view(user, d):
            raise NotFound(f"no dashboard {slug!r} for you")  # do not reveal others'
        return d

    def _manageable(self, s: Any, user: Principal, slug: str) -> t.Dashboard:
        d = self._visible(s, user, slug)
        if not self.may_manage(user, d):
            raise Forbidden(
                f"only {d.owner}, its owner, and admins may change dashboard {slug!r}",
                details={"owner": d.owner},
            )
        return d

    def _audit(
        self, s: Any, user: Principal, action: str, slug: str, reason: str = "", ok: bool = True
    ) -> None:
        audit.record(self.store, audit.AuditEntry(
            user=user, action=action, decision="allowed" if ok else "denied",
            target=f"dashboard:{slug}", reason=reason), s)  # fmt: skip

    # -- publishing -----------------------------------------------------------------------------
    @staticmethod
    def check_template(name: str) -> None:
        installed = render.installed_templates()
        if name not in installed:
            raise InvalidRequest(
                f"unknown template {name!r}; installed: {', '.join(installed)}",
                details={"field": "template", "installed": installed},
            )

    @staticmethod
    def _viewers(v: Viewers) -> dict[str, list[str]]:
        clean = {
            "users": sorted({u.strip() for u in v.users if u.strip()}),
            "groups": sorted({g.strip() for g in v.groups if g.strip()}),
        }
        return clean

    def publish(self, user: Principal, req: DashboardRequest) -> tuple[DashboardInfo, str | None]:
        """Publish; returns the dashboard and the id of a run it queued (or None)."""
        if (req.job is None) == (req.notebook_path is None):
            raise InvalidRequest("give exactly one of job or notebook_path")
        if req.job is not None and (req.parameters or req.schedule):
            raise InvalidRequest(
                "parameters and schedule go with notebook_path; a job has its own",
                details={"field": "parameters" if req.parameters else "schedule"},
            )
        self.check_template(req.template)
        with self.store.session() as s:
            if self._find(s, req.slug) is not None:
                raise Conflict(f"a dashboard {req.slug!r} exists", details={"field": "slug"})
        created_job = None
        if req.notebook_path is not None:
            # The notebook becomes a job of its own: its runs are the dashboard's renders,
            # and a schedule on it (now or later) refreshes the dashboard.
            job_info = self.jobs.create_job(
                user,
                JobDefinitionRequest(
                    name=f"dashboard-{req.slug}",
                    notebook_path=req.notebook_path,
                    description=f"Runs of dashboard {req.slug}",
                    parameters=req.parameters,
                    schedule=req.schedule,
                    timezone=req.timezone,
                ),
            )
            created_job = job_info.name
            job_ref, source = job_info.id, "notebook"
        else:
            job_ref, source = req.job, "job"
        try:
            with self.store.session() as s:
                job = self.jobs._job(s, job_ref)
                self.jobs._acts_as(user, job.owner, f"publish job {job.name!r}")
                d = t.Dashboard(
                    name=req.slug, owner=job.owner, title=req.title or req.slug,
                    description=req.description, template=req.template, source=source,
                    job_id=job.id, viewers=self._viewers(req.viewers), live=req.live,
                    published_by=user.name)  # fmt: skip
                s.add(d)
                s.flush()
                self._audit(s, user, "dashboard.publish", req.slug, f"{source} job:{job.name}")
                job_name = job.name
        except BaseException as e:
            if created_job is not None:  # nothing of a refused publication stays behind
                self.jobs.delete_job(user, created_job)
            if isinstance(e, IntegrityError):
                raise Conflict(
                    f"a dashboard {req.slug!r} exists", details={"field": "slug"}
                ) from None
            raise
        run_id = None
        if source == "notebook" or req.run_now:
            run, _ = self.jobs.submit(user, RunRequest(job=job_name), trigger="user")
            run_id = run.id
        else:
            self.render_latest(req.slug)  # the job's last good run, if it has one
        return self.get(user, req.slug), run_id

    def update(self, user: Principal, slug: str, patch: DashboardPatch) -> DashboardInfo:
        changes = patch.model_dump(exclude_unset=True)
        if "template" in changes:
            self.check_template(changes["template"])
        with self.store.session() as s:
            d = self._manageable(s, user, slug)
            if set(changes) & {"viewers", "live", "template"}:
                # Who sees the owner's data, and how: the owner's decision.
                self._act_as_owner(user, d, f"change who sees or how to show {slug!r}")
            for k, v in changes.items():
                if k == "viewers":
                    v = self._viewers(patch.viewers or Viewers())
                setattr(d, k, v)
            d.updated_at = utcnow()
            self._audit(s, user, "dashboard.update", slug, ", ".join(sorted(changes)))
            template_changed = "template" in changes
        if template_changed:
            self.render_latest(slug, force=True)
        return self.get(user, slug)

    def unpublish(self, user: Principal, slug: str) -> None:
        with self.store.session() as s:
            d = self._manageable(s, user, slug)
            dashboard_id = d.id
            self._audit(s, user, "dashboard.unpublish", slug)
            s.delete(d)  # its renders, share links and subscriptions go with it
        shutil.rmtree(self.cache_dir / dashboard_id, ignore_errors=True)

    # -- reading --------------------------------------------------------------------------------
    def list_dashboards(self, user: Principal) -> list[DashboardInfo]:
        with self.store.session() as s:
            rows = list(s.scalars(select(t.Dashboard).order_by(t.Dashboard.name)))
            return [self._info(s, user, d) for d in rows if self.may_view(user, d)]

    def get(self, user: Principal, slug: str) -> DashboardInfo:
        with self.store.session() as s:
            return self._info(s, user, self._visible(s, user, slug))

    def renders(self, user: Principal, slug: str) -> list[RenderInfo]:
        with self.store.session() as s:
            d = self._visible(s, user, slug)
            rows = s.scalars(
                select(t.DashboardRender)
                .where(t.DashboardRender.dashboard_id == d.id)
                .order_by(t.DashboardRender.rendered_at.desc(), t.DashboardRender.id.desc())
            )
            return [self._render_info(s, r) for r in rows]

    def _render_info(self, s: Any, r: t.DashboardRender) -> RenderInfo:
        run = s.get(t.Run, r.run_id)
        return RenderInfo(
            run_id=r.run_id,
            status=r.status,
            error=r.error,
            rendered_at=r.rendered_at,
            run_finished_at=run.finished_at if run else None,
            parameters=dict(run.parameters) if run else {},
        )

    def _info(self, s: Any, user: Principal, d: t.Dashboard) -> DashboardInfo:
        job = s.get(t.JobDefinition, d.job_id) if d.job_id else None
        good = self._good_runs(s, d, 1)
        last = None
        if good:
            r = s.scalar(
                select(t.DashboardRender).where(
                    t.DashboardRender.dashboard_id == d.id,
                    t.DashboardRender.run_id == good[0].id,
                )
            )
            if r is not None:
                last = self._render_info(s, r)
        pending = None
        if d.job_id:
            pending = s.scalar(
                select(t.Run.id)
                .where(t.Run.job_id == d.job_id, t.Run.status.in_(("queued", "running")))
                .order_by(t.Run.created_at.desc())
                .limit(1)
            )
        subscribed = bool(
            s.scalar(
                select(func.count())
                .select_from(t.DashboardSubscription)
                .where(
                    t.DashboardSubscription.dashboard_id == d.id,
                    t.DashboardSubscription.user == user.name,
                )
            )
        )
        return DashboardInfo(
            id=d.id,
            slug=d.name,
            title=d.title or d.name,
            description=d.description,
            owner=d.owner,
            published_by=d.published_by,
            source=d.source,
            job_name=job.name if job else None,
            notebook_path=job.notebook_path if job else None,
            template=d.template,
            viewers=Viewers.model_validate(d.viewers or {}),
            live=d.live,
            url=f"dataops/dashboards/{d.name}",
            live_url=f"dataops/dashboards/{d.name}/live" if d.live else None,
            created_at=d.created_at,
            updated_at=d.updated_at,
            last_render=last,
            stale=self._stale(s, d, good[0] if good else None),
            pending_run=pending,
            can_manage=self.may_manage(user, d),
            subscribed=subscribed,
        )

    def _good_runs(self, s: Any, d: t.Dashboard, limit: int) -> list[t.Run]:
        """The dashboard's succeeded runs, newest first: its job's, or (job deleted) those it
        rendered."""
        q = select(t.Run).where(t.Run.status == "succeeded")
        if d.job_id:
            q = q.where(t.Run.job_id == d.job_id)
        else:
            rendered = select(t.DashboardRender.run_id).where(
                t.DashboardRender.dashboard_id == d.id
            )
            q = q.where(t.Run.id.in_(rendered))
        q = q.order_by(t.Run.finished_at.desc(), t.Run.created_at.desc()).limit(limit)
        return list(s.scalars(q))

    def _stale(self, s: Any, d: t.Dashboard, good: t.Run | None) -> StaleInfo | None:
        """Runs of its job that failed for good after the shown one: since when, and why."""
        if not d.job_id:
            return None
        q = select(t.Run).where(t.Run.job_id == d.job_id, t.Run.status.in_(FAILED))
        if good is not None and good.finished_at is not None:
            q = q.where(t.Run.finished_at > good.finished_at)
        failed = list(s.scalars(q.order_by(t.Run.finished_at)))
        # A failed attempt whose retry is queued or running is not the end of the story yet;
        # a retry that failed in turn is one more failure.
        failed = [r for r in failed if r.finished_at is not None]
        if not failed:
            return None
        latest = failed[-1]
        return StaleInfo(
            since=failed[0].finished_at,
            reason=(latest.error or {}).get("message") or latest.status.replace("_", " "),
            run_id=latest.id,
            failed_runs=len(failed),
        )

    # -- the published view ---------------------------------------------------------------------
    def share_of(self, token: str | None, slug: str) -> Share | None:
        """The share link ``token`` opens, when it opens ``slug`` and still works."""
        if not token:
            return None
        with self.store.session() as s:
            link = s.scalar(
                select(t.ShareLink).where(t.ShareLink.token_sha256 == token_hash(token))
            )
            if link is None or link.revoked_at is not None or link.expires_at <= utcnow():
                return None
            d = s.get(t.Dashboard, link.dashboard_id)
            if d is None or d.name != slug:
                return None
            return Share(link.id, d.id, link.label)

    def refused_share(self, slug: str) -> None:
        """Audit a view refused to a share link that no longer works."""
        with self.store.session() as s:
            who = Principal("share:unknown", "share link", (), "share")
            self._audit(s, who, "dashboard.view", slug, "revoked or expired link", ok=False)

    def view(
        self,
        user: Principal | None,
        share: Share | None,
        slug: str,
        run_id: str | None = None,
        base_url: str = "/",
    ) -> View:
        """The page and header a viewer gets, audited (allowed or denied). Raises
        :class:`Forbidden` (the same, whether or not the dashboard exists) or :class:`NoView`.
        """
        who = user if user is not None else share.principal if share is not None else None
        assert who is not None
        with self.store.session() as s:
            d = self._find(s, slug)
            allowed = d is not None and (
                (share is not None and share.dashboard_id == d.id)
                or (user is not None and self.may_view(user, d))
            )
        if not allowed:
            with self.store.session() as s:
                self._audit(s, who, "dashboard.view", slug, "not a viewer", ok=False)
            raise Forbidden("you may not see this dashboard, or there is none here")
        with self.store.session() as s:
            d = self._find(s, slug)
            if d is None:  # unpublished this very moment
                raise Forbidden("you may not see this dashboard, or there is none here")
            if share is not None:
                link = s.get(t.ShareLink, share.link_id)
                if link is not None:
                    link.last_used_at = utcnow()
            good = self._good_runs(s, d, HISTORY)
            if run_id is not None:
                run = next((r for r in good if r.id == run_id), None)
                if run is None:
                    run = s.get(t.Run, run_id)
                    if run is None or run.status != "succeeded" or run.job_id != d.job_id:
                        raise NotFound(f"run {run_id} is not one of this dashboard's renders")
            elif good:
                run = good[0]
            else:
                pending = d.job_id is not None and bool(
                    s.scalar(
                        select(func.count())
                        .select_from(t.Run)
                        .where(t.Run.job_id == d.job_id, t.Run.status.in_(("queued", "running")))
                    )
                )
                self._audit(s, who, "dashboard.view", slug, "nothing rendered yet")
                stale = self._stale(s, d, None)
                why = f": {stale.reason}" if stale else ""
                raise NoView(
                    "its job is running for the first time" if pending
                    else f"its job has no successful run yet{why}",
                    pending,
                )  # fmt: skip
            self._audit(s, who, "dashboard.view", slug, f"run {run.id}")
            may_see_run = user is not None and (self._owns(user, run.owner) or self.is_admin(user))
            api = f"{base_url.rstrip('/')}/dataops/api/v1/runs/{run.id}"
            header = render.Header(
                title=d.title or d.name,
                finished_at=run.finished_at,
                parameters=dict(run.parameters),
                datasets=self._datasets_read(s, run.id),
                run_id=run.id,
                run_url=api if may_see_run else None,
                notebook_url=f"{api}/outputs/notebook" if may_see_run else None,
                experiment_url=self.experiment_url(run.id) if may_see_run else None,
                stale=self._stale(s, d, good[0] if good else None),
                history=[(r.id, r.finished_at) for r in good],
                latest=not good or run.id == good[0].id,
                live_url=f"{base_url.rstrip('/')}/dataops/dashboards/{d.name}/live"
                if d.live and user is not None
                else None,
            )
            dashboard_id, template, title = d.id, d.template, d.title or d.name
            rendered = s.scalar(
                select(t.DashboardRender.status).where(
                    t.DashboardRender.dashboard_id == d.id, t.DashboardRender.run_id == run.id
                )
            )
        page = self.page_path(dashboard_id, run.id)
        if rendered != "rendered" or not page.exists():
            # Not rendered here yet (it ended in another process, or its render failed):
            # render now, once, and keep it.
            self.render(dashboard_id, run.id, template, title)
            if not page.exists():
                raise NoView(
                    "this run's view could not be rendered; the server log says why", False
                )
        return View(page, header)

    # -- the live view --------------------------------------------------------------------------
    def live_run(self, user: Principal, slug: str, query: dict[str, list[bytes]]) -> LiveRun:
        """What a viewer's live view executes: the notebook of the view's run, with that run's
        parameters and the query string's, validated as job parameters are (400 naming the
        parameter). Audited; raises :class:`Forbidden` as :meth:`view` does."""
        from ..jobs.parameters import infer_parameters, read_notebook, validate_parameters
        from ..jobs.service import OUTPUT_FILES

        with self.store.session() as s:
            d = self._find(s, slug)
            allowed = d is not None and self.may_view(user, d)
        if not allowed or d is None:
            with self.store.session() as s:
                self._audit(s, user, "dashboard.live", slug, "not a viewer", ok=False)
            raise Forbidden("you may not see this dashboard, or there is none here")
        if not d.live:
            raise NotFound(f"dashboard {slug!r} has no live view; its published view is there")
        with self.store.session() as s:
            good = self._good_runs(s, d, 1)
            if not good:
                raise NoView("its job has no successful run yet", False)
            run = good[0]
            run_id, base, rel = run.id, dict(run.parameters), run.notebook_path
        path = self.jobs.runs_dir / run_id / OUTPUT_FILES["input"]
        if not path.exists() and self.jobs.storage is not None:
            self.jobs.storage.fetch(run_id, OUTPUT_FILES["input"], path)
        declared = infer_parameters(path)
        given = parse_query(declared, query)
        params = validate_parameters(declared, {**base, **given})
        from papermill.parameterize import parameterize_notebook

        nb = read_notebook(path)
        nb.metadata.setdefault("papermill", {})  # what papermill's own run sets up
        for cell in nb.cells:
            cell.metadata.setdefault("tags", [])
        nb = parameterize_notebook(nb, params)
        kernel = (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
        with self.store.session() as s:
            reason = f"run {run_id} " + json.dumps(given, sort_keys=True, default=str)
            self._audit(s, user, "dashboard.live", slug, reason)
        return LiveRun(slug, user.name, nb, rel, kernel, params)

    @staticmethod
    def _datasets_read(s: Any, run_id: str) -> list[tuple[str, str | None]]:
        rows = s.execute(
            select(t.AuditEvent.dataset, t.AuditEvent.version)
            .where(
                t.AuditEvent.scope == f"run:{run_id}",
                t.AuditEvent.action == "read",
                t.AuditEvent.decision == "allowed",
            )
            .distinct()
        ).all()
        return [(r[0], r[1]) for r in rows]

    def thumbnail(self, user: Principal | None, share: Share | None, slug: str) -> Path | None:
        with self.store.session() as s:
            d = self._find(s, slug)
            if d is None or not (
                (share is not None and share.dashboard_id == d.id)
                or (user is not None and self.may_view(user, d))
            ):
                raise Forbidden("you may not see this dashboard, or there is none here")
            rows = s.execute(
                select(t.DashboardRender.run_id)
                .where(
                    t.DashboardRender.dashboard_id == d.id,
                    t.DashboardRender.thumbnail.is_(True),
                )
                .order_by(t.DashboardRender.rendered_at.desc())
                .limit(1)
            ).all()
            if not rows:
                return None
            return self.cache_dir / d.id / f"{rows[0][0]}.png"

    def index(self, user: Principal) -> list[tuple[DashboardInfo, str]]:
        """The dashboards ``user`` may see, with the preview text of their last render."""
        with self.store.session() as s:
            out = []
            for d in s.scalars(select(t.Dashboard).order_by(t.Dashboard.title, t.Dashboard.name)):
                if not self.may_view(user, d):
                    continue
                info = self._info(s, user, d)
                text = ""
                if info.last_render is not None:
                    p = self.cache_dir / d.id / f"{info.last_render.run_id}.txt"
                    text = p.read_text(encoding="utf-8") if p.exists() else ""
                out.append((info, text))
            return out

    # -- rendering ------------------------------------------------------------------------------
    def page_path(self, dashboard_id: str, run_id: str) -> Path:
        return self.cache_dir / dashboard_id / f"{run_id}.html"

    def _output_notebook(self, run_id: str) -> Path:
        from ..jobs.service import OUTPUT_FILES

        path = self.jobs.runs_dir / run_id / OUTPUT_FILES["notebook"]
        if not path.exists() and self.jobs.storage is not None:
            self.jobs.storage.fetch(run_id, OUTPUT_FILES["notebook"], path)
        return path

    def render(self, dashboard_id: str, run_id: str, template: str, title: str) -> bool:
        """Render one run as one dashboard's view, once (concurrent callers wait for the
        first); records the outcome. Returns whether a new render was made."""
        key = (dashboard_id, run_id)
        with self._lock:
            lock = self._rendering.setdefault(key, threading.Lock())
        with lock:
            page = self.page_path(dashboard_id, run_id)
            with self.store.session() as s:
                done = s.scalar(
                    select(t.DashboardRender).where(
                        t.DashboardRender.dashboard_id == dashboard_id,
                        t.DashboardRender.run_id == run_id,
                    )
                )
                if done is not None and done.status == "rendered" and page.exists():
                    return False
            error = None
            made: render.Rendered | None = None
            try:
                made = render.render_view(self._output_notebook(run_id), template, title)
            except Exception as e:
                log.exception(
                    "DataOps: cannot render run %s for dashboard %s", run_id, dashboard_id
                )
                error = f"{type(e).__name__}: {e}"
            if made is not None:
                page.parent.mkdir(parents=True, exist_ok=True)
                partial = page.with_suffix(".partial")
                partial.write_text(made.html, encoding="utf-8")
                partial.replace(page)  # never a half-written page under its name
                page.with_suffix(".txt").write_text(made.preview, encoding="utf-8")
                if made.thumbnail:
                    page.with_suffix(".png").write_bytes(made.thumbnail)
            with self.store.session() as s:
                row = s.scalar(
                    select(t.DashboardRender).where(
                        t.DashboardRender.dashboard_id == dashboard_id,
                        t.DashboardRender.run_id == run_id,
                    )
                )
                if row is None:
                    row = t.DashboardRender(dashboard_id=dashboard_id, run_id=run_id, status="")
                    s.add(row)
                row.status = "rendered" if made is not None else "failed"
                row.error = error
                row.size = len(made.html) if made is not None else 0
                row.thumbnail = bool(made is not None and made.thumbnail)
                row.rendered_at = utcnow()
        with self._lock:
            self._rendering.pop(key, None)
        return made is not None

    def render_latest(self, slug: str, force: bool = False) -> None:
        """Render (in the background) the dashboard's latest good run, if it has one."""
        with self.store.session() as s:
            d = self._find(s, slug)
            good = self._good_runs(s, d, 1) if d is not None else []
            if d is None or not good:
                return
            dashboard_id, run_id, template, title = d.id, good[0].id, d.template, d.title
        if force:
            self.page_path(dashboard_id, run_id).unlink(missing_ok=True)
        self._submit(self._render_and_tell, dashboard_id, run_id, template, title)

    def run_ended(self, run_id: str) -> None:
        """A run ended for good (the job service's hook): render it for its dashboards."""
        self._submit(self._after_run, run_id)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            with self._lock:
                fut = self._pool.submit(fn, *args)
                self._pending.add(fut)
        except RuntimeError:  # shutting down: the view is rendered on its first request
            return
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[None]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def drain(self, timeout: float | None = None) -> None:
        """Wait until the renders asked for so far are done, those of runs whose end is
        being recorded now included."""
        self.jobs.settle(timeout)
        with self._lock:
            pending = list(self._pending)
        for fut in pending:
            fut.exception(timeout=timeout)

    def _after_run(self, run_id: str) -> None:
        try:
            with self.store.session() as s:
                run = s.get(t.Run, run_id)
                if run is None or run.status != "succeeded" or run.job_id is None:
                    return
                boards = [
                    (d.id, d.template, d.title or d.name)
                    for d in s.scalars(select(t.Dashboard).where(t.Dashboard.job_id == run.job_id))
                ]
            for dashboard_id, template, title in boards:
                self._render_and_tell(dashboard_id, run_id, template, title)
        except Exception:
            log.exception("DataOps: cannot render the dashboards of run %s", run_id)

    def _render_and_tell(self, dashboard_id: str, run_id: str, template: str, title: str) -> None:
        if self.render(dashboard_id, run_id, template, title):
            try:
                self.tell_subscribers(dashboard_id, run_id)
            except Exception:
                log.exception("DataOps: cannot tell the subscribers of dashboard %s", dashboard_id)

    def tell_subscribers(self, dashboard_id: str, run_id: str) -> None:
        """E-mail the subscribers of a new render: a link, and its PDF when the server can
        print one (blocking; deliveries are recorded as notifications of the run)."""
        with self.store.session() as s:
            d = s.get(t.Dashboard, dashboard_id)
            subs = list(s.scalars(select(t.DashboardSubscription).where(
                t.DashboardSubscription.dashboard_id == dashboard_id)))  # fmt: skip
            run = s.get(t.Run, run_id)
            if d is None or run is None or not subs or self.notifier is None:
                return
            slug, title, job_id = d.name, d.title or d.name, run.job_id
            finished, params = run.finished_at, dict(run.parameters)
        pdf = self._pdf(dashboard_id, run_id) if any(x.pdf for x in subs) else None
        base = (self.notifier.server_url or "").rstrip("/")
        link = f"{base}/dataops/dashboards/{slug}" if base else f"dataops/dashboards/{slug}"
        text = (
            f"A new view of {title} is published.\n\n"
            f"Open it:    {link}\n"
            f"Ran:        {finished:%Y-%m-%d %H:%M UTC}\n"
            f"Parameters: {json.dumps(params, sort_keys=True)}\n"
            + ("\nIts PDF is attached.\n" if pdf else "")
            + f"\nStop these e-mails from the dashboard's entry in JupyterLab ({slug}).\n"
        )
        for x in subs:
            attachment = (f"{slug}.pdf", pdf, "application/pdf") if pdf and x.pdf else None
            self.notifier.mail_delivery(run_id, job_id, x.email, f"[dataops] {title} updated",
                                        text, attachment)  # fmt: skip

    def _pdf(self, dashboard_id: str, run_id: str) -> bytes | None:
        """The render printed by the machine's Chromium (None where there is none)."""
        from ..jobs.render import pdf, pdf_renderer

        page = self.page_path(dashboard_id, run_id)
        out = page.with_suffix(".pdf")
        if not out.exists():
            if pdf_renderer()[0] is None or not page.exists():
                return None
            try:
                pdf(str(page.with_suffix(".ipynb")), str(page))
            except Exception:
                log.exception("DataOps: cannot print the render of run %s", run_id)
                return None
        return out.read_bytes() if out.exists() else None

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- share links ----------------------------------------------------------------------------
    def _link_info(self, link: t.ShareLink, url: str | None = None) -> ShareLinkInfo:
        now = utcnow()
        return ShareLinkInfo(
            id=link.id, label=link.label, created_by=link.created_by,
            created_at=link.created_at, expires_at=link.expires_at, revoked_at=link.revoked_at,
            last_used_at=link.last_used_at,
            active=link.revoked_at is None and link.expires_at > now, url=url)  # fmt: skip

    def create_share(self, user: Principal, slug: str, req: ShareLinkRequest) -> ShareLinkInfo:
        """A new link; its secret is in the returned URL's fragment, and nowhere else."""
        with self.store.session() as s:
            d = self._visible(s, user, slug)
            # Sharing hands the owner's data to people without an account: the owner's call.
            self._act_as_owner(user, d, f"share {slug!r}")
            token = secrets.token_urlsafe(32)
            link = t.ShareLink(
                dashboard_id=d.id,
                token_sha256=token_hash(token),
                label=req.label,
                created_by=user.name,
                expires_at=utcnow() + timedelta(seconds=req.expires_in_s),
            )
            s.add(link)
            s.flush()
            self._audit(s, user, "dashboard.share", slug, f"link {link.id} {req.label}".strip())
            return self._link_info(link, f"dataops/dashboards/{slug}/share#{token}")

    def list_shares(self, user: Principal, slug: str) -> list[ShareLinkInfo]:
        with self.store.session() as s:
            d = self._manageable(s, user, slug)
            rows = s.scalars(
                select(t.ShareLink)
                .where(t.ShareLink.dashboard_id == d.id)
                .order_by(t.ShareLink.created_at.desc())
            )
            return [self._link_info(link) for link in rows]

    def revoke_share(self, user: Principal, slug: str, link_id: str) -> ShareLinkInfo:
        with self.store.session() as s:
            d = self._manageable(s, user, slug)
            link = s.get(t.ShareLink, link_id)
            if link is None or link.dashboard_id != d.id:
                raise NotFound(f"dashboard {slug!r} has no share link {link_id!r}")
            if link.revoked_at is None:
                link.revoked_at = utcnow()
                self._audit(s, user, "dashboard.unshare", slug, f"link {link.id}")
            return self._link_info(link)

    # -- subscriptions --------------------------------------------------------------------------
    def subscribe(self, user: Principal, slug: str, req: SubscriptionRequest) -> SubscriptionInfo:
        if user.kind == "share" or user.is_group:
            raise Forbidden("only users may subscribe")
        if self.notifier is None or not self.notifier.smtp.host:
            raise InvalidRequest(
                "e-mail is not configured on this server (c.DataOps.smtp_host); ask an admin",
                details={"field": "email"},
            )
        with self.store.session() as s:
            d = self._visible(s, user, slug)
            sub = s.scalar(
                select(t.DashboardSubscription).where(
                    t.DashboardSubscription.dashboard_id == d.id,
                    t.DashboardSubscription.user == user.name,
                )
            )
            if sub is None:
                sub = t.DashboardSubscription(dashboard_id=d.id, user=user.name, email=req.email)
                s.add(sub)
            sub.email, sub.pdf = req.email, req.pdf
            s.flush()
            self._audit(s, user, "dashboard.subscribe", slug)
            return SubscriptionInfo(slug=slug, user=user.name, email=sub.email, pdf=sub.pdf,
                                    created_at=sub.created_at)  # fmt: skip

    def unsubscribe(self, user: Principal, slug: str) -> None:
        with self.store.session() as s:
            d = self._visible(s, user, slug)
            sub = s.scalar(
                select(t.DashboardSubscription).where(
                    t.DashboardSubscription.dashboard_id == d.id,
                    t.DashboardSubscription.user == user.name,
                )
            )
            if sub is None:
                raise NotFound(f"you are not subscribed to {slug!r}")
            s.delete(sub)
            self._audit(s, user, "dashboard.unsubscribe", slug)
