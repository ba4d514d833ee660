"""Job definitions and runs: validation, immutable run inputs, state, retries, recovery.

Blocking (store and file work): call through the platform's pools. The executor calls
:meth:`JobService.claim`, :meth:`progress` and :meth:`finish`; nothing else changes a run.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..exceptions import Conflict, Forbidden, InvalidRequest, NotFound, Unavailable
from ..governance import audit
from ..identity import GROUP_PREFIX, Principal, TokenSigner
from ..models import (
    JobDefinitionInfo,
    JobDefinitionPatch,
    JobDefinitionRequest,
    NotebookParameters,
    NotificationInfo,
    ParameterInfo,
    RunInfo,
    RunRequest,
)  # fmt: skip
from ..paths import STATE_DIR, workspace_path
from ..store import Store
from ..store import tables as t
from . import dispatchers
from .dispatchers import DispatcherLock
from .parameters import infer_parameters, notebook_hash, read_notebook, validate_parameters
from .storage import OutputStorage

if TYPE_CHECKING:
    from ..tracking.service import Tracking
    from .notify import Notifier

log = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")
OUTPUT_FILES = {
    "notebook": "output.ipynb",
    "html": "output.html",
    "pdf": "output.pdf",
    "log": "run.log",
    "input": "input.ipynb",
}


@dataclass(frozen=True)
class RunSpec:
    """What an executor needs to run one run."""

    run_id: str
    kernel_name: str
    timeout_s: float | None
    job: dict[str, Any]  # the runner's JSON job
    owner: str = ""  # whose rights it runs with (a user, or group:<name>)


def notebook_file(root: Path, rel: str) -> Path:
    """A notebook a user names in a workspace: inside it, not in its state directory, a file."""
    p = workspace_path(root, rel, "notebooks")
    if p.suffix != ".ipynb":
        raise InvalidRequest(f"{rel} is not a notebook (.ipynb)")
    if not p.is_file():
        raise InvalidRequest(f"notebook not found: {rel}")
    return p


def notebook_parameters(path: Path, rel: str) -> NotebookParameters:
    """A notebook's parameters (its ``parameters`` cell), and the kernel its runs would use."""
    declared = (read_notebook(path).metadata.get("kernelspec") or {}).get("name")
    try:
        kernel: str | None = JobService._kernel(declared, None)
    except InvalidRequest:
        kernel = None
    return NotebookParameters(
        notebook_path=rel,
        parameters=[ParameterInfo(name=k, **v) for k, v in infer_parameters(path).items()],
        notebook_kernel=declared,
        kernel_name=kernel,
    )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


NATIVE_KERNEL = "python3"  # jupyter_client's NATIVE_KERNEL_NAME


def resolve_kernel(name: str) -> str:
    """The installed kernel that ``name`` starts, resolved as jupyter_client (so papermill)
    resolves it: its ``KernelManager`` takes ``python`` for the native kernel, and its
    ``KernelSpecManager`` matches names whatever their case. Returns the installed name."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import KernelManager

    specs = KernelSpecManager()
    wanted = str(KernelManager(kernel_name=name, kernel_spec_manager=specs).kernel_name).lower()
    try:
        specs.get_kernel_spec(wanted)
    except NoSuchKernel:
        installed = sorted(specs.find_kernel_specs())
        raise InvalidRequest(
            f"unknown kernel {name!r}; installed: {', '.join(installed)}",
            details={"field": "kernel_name", "installed": installed},
        ) from None
    except Exception as e:  # a kernel.json that does not parse
        raise InvalidRequest(
            f"kernel {name!r} cannot be read: {type(e).__name__}: {e}",
            details={"field": "kernel_name", "installed": sorted(specs.find_kernel_specs())},
        ) from None
    return wanted


class JobService:
    def __init__(
        self,
        store: Store,
        root: Path,
        tokens: TokenSigner,
        admins: Any,
        default_executor: str = "local",
        notifier: Notifier | None = None,
        outputs_url: str = "",
        tracking: Tracking | None = None,
    ) -> None:
        self.store = store
        self.tracking = tracking  # every run is an MLflow run
        # Shared storage of run files (fsspec), besides the local run directories.
        self.storage = OutputStorage(outputs_url) if outputs_url else None
        self.notifier = notifier  # told about every run that ends for good
        # And these, with the run's id (dashboards re-render on a new good run).
        self.on_run_end: list[Callable[[str], None]] = []
        self._ending = threading.Condition()  # runs between their end's commit and its hooks
        self._ends_under_way = 0
        self.default_executor = default_executor  # of runs without a job definition
        self.root = root
        self.tokens = tokens
        self._admins = admins  # callable -> list of admin names (the policy can change)
        self.runs_dir = root / STATE_DIR / "runs"
        # The machine and workspace; each dispatcher serves its own identity under it.
        self.base_host = f"{socket.gethostname()}:{root}"
        self.host = self.base_host  # whose queue submissions go to (and which one this runs)
        self.dispatchers_dir = root / STATE_DIR / "dispatchers"
        self._dispatcher: DispatcherLock | None = None

    # dispatcher identity -------------------------------------------------------------------------
    def become_dispatcher(self, kind: str = "server") -> str:
        """Take the first free identity of ``kind`` (server, scheduler, run) for this process:
        runs submitted here from now on are queued for it, and only it executes them."""
        if self._dispatcher is None:
            self._dispatcher = dispatchers.take(self.dispatchers_dir, self.base_host, kind)
            self.host = self._dispatcher.host
        return self.host

    def stop_dispatching(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.release()
            self._dispatcher = None

    # helpers -------------------------------------------------------------------------------------
    def _is_admin(self, user: Principal) -> bool:
        return user.name in self._admins()

    def _notebook(self, rel: str) -> Path:
        return notebook_file(self.root, rel)

    @staticmethod
    def _kernel(nb_kernel: str | None, asked: str | None) -> str:
        if asked:
            return resolve_kernel(asked)
        try:
            return resolve_kernel(nb_kernel or NATIVE_KERNEL)
        except InvalidRequest as e:
            raise InvalidRequest(
                f"the notebook's kernel {nb_kernel!r} is not installed here; pick one of: "
                f"{', '.join(e.details['installed'])}",
                details=e.details,
            ) from None

    def _upload(self, content: dict[str, Any]) -> Path:
        """A notebook sent in a request, checked, as a file of the state directory (the caller
        moves or removes it)."""
        import json
        import uuid

        import nbformat

        try:
            nb = nbformat.from_dict(content)
            nbformat.validate(nb)
        except Exception as e:
            raise InvalidRequest(
                f"notebook: not a valid notebook (nbformat 4): {str(e).splitlines()[0][:300]}",
                details={"field": "notebook"},
            ) from None
        folder = self.root / STATE_DIR / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.ipynb"
        path.write_text(json.dumps(content), encoding="utf-8")
        return path

    def _stored(self, job_id: str) -> Path:
        return self.root / STATE_DIR / "jobs" / f"{job_id}.ipynb"

    def _job_notebook(self, j: t.JobDefinition) -> Path:
        """The notebook a job runs: its own copy, or its workspace file."""
        if j.stored_notebook:
            path = self._stored(j.id)
            if not path.is_file():
                raise InvalidRequest(f"job {j.name!r} lost its copy of its notebook: send it again")
            return path
        return self._notebook(j.notebook_path)

    def _keep(self, upload: Path, job_id: str) -> None:
        target = self._stored(job_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(upload, target)

    def parameters(self, rel: str) -> NotebookParameters:
        """A notebook's parameters, and the kernel its runs use by default."""
        return notebook_parameters(self._notebook(rel), rel)

    @staticmethod
    def _owns(user: Principal, owner: str) -> bool:
        """The owner, or a member of the team (``group:<name>``) that owns it."""
        if owner == user.name:
            return True
        return owner.startswith(GROUP_PREFIX) and owner[len(GROUP_PREFIX) :] in user.groups

    @staticmethod
    def _owned_by(user: Principal) -> list[str]:
        """The owners whose jobs and runs are this user's: theirs, and their teams'."""
        return [user.name, *(f"{GROUP_PREFIX}{g}" for g in user.groups)]

    def _visible(self, user: Principal, owner: str) -> None:
        if not self._owns(user, owner) and not self._is_admin(user):
            raise NotFound("no such run or job for you")  # do not reveal others' objects

    def _acts_as(self, user: Principal, owner: str, what: str) -> None:
        """Only the owner (for a team's job: any member) may do what makes code run as the
        owner (runs execute with the owner's data rights). Admins manage and read others'
        jobs; they do not act for them."""
        self._visible(user, owner)
        if not self._owns(user, owner):
            raise Forbidden(
                f"only {owner}, the owner, may {what}; admins may read, pause, resume, cancel "
                "and delete it",
                details={"owner": owner},
            )

    # definitions ---------------------------------------------------------------------------------
    @staticmethod
    def _check_schedule(schedule: str | None, tz: str) -> None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRequest(
                f"unknown time zone {tz!r}", details={"field": "timezone"}
            ) from None
        if schedule:
            from croniter import croniter

            if not croniter.is_valid(schedule):
                raise InvalidRequest(
                    f"invalid cron schedule {schedule!r}", details={"field": "schedule"}
                )

    def _definition_info(self, j: t.JobDefinition) -> JobDefinitionInfo:
        info = JobDefinitionInfo.model_validate(j, from_attributes=True)
        if j.schedule and not j.paused:
            from .scheduler import next_fire_time

            info.next_fire_at = next_fire_time(j.schedule, j.timezone)
        if self.notifier is not None and info.notify is not None and info.notify.webhooks:
            info.webhook_secret = self.notifier.secret_for(j.id)
        return info

    def _check_notify(self, notify: dict[str, Any] | None) -> None:
        if notify and self.notifier is None:
            raise InvalidRequest("notify: notifications are not available here")
        if self.notifier is not None:
            self.notifier.check(notify)

    def _job(self, s: Any, ref: str) -> t.JobDefinition:
        j = s.scalar(
            select(t.JobDefinition).where(
                or_(t.JobDefinition.id == ref, t.JobDefinition.name == ref)
            )
        )
        if j is None:
            raise NotFound(f"unknown job {ref!r}")
        return j

    def create_job(self, user: Principal, req: JobDefinitionRequest) -> JobDefinitionInfo:
        upload = self._upload(req.notebook) if req.notebook is not None else None
        try:
            return self._create_job(user, req, upload)
        finally:
            if upload is not None:
                upload.unlink(missing_ok=True)

    def _create_job(
        self, user: Principal, req: JobDefinitionRequest, upload: Path | None
    ) -> JobDefinitionInfo:
        path = upload or self._notebook(req.notebook_path)
        declared = infer_parameters(path)
        params = validate_parameters(declared, req.parameters)
        nb_kernel = (read_notebook(path).metadata.get("kernelspec") or {}).get("name")
        kernel = self._kernel(nb_kernel, req.kernel_name)
        self._check_schedule(req.schedule, req.timezone)
        self._check_formats(req.output_formats)
        notify = req.notify.model_dump() if req.notify is not None else None
        self._check_notify(notify)
        owner = self._team_owner(user, req.owner_group) if req.owner_group else user.name
        with self.store.session() as s:
            if s.scalar(select(t.JobDefinition).where(t.JobDefinition.name == req.name)):
                raise Conflict(f"a job named {req.name!r} exists")
            j = t.JobDefinition(
                name=req.name, description=req.description, notebook_path=req.notebook_path,
                owner=owner, parameters=params, kernel_name=kernel, executor=req.executor,
                schedule=req.schedule, timezone=req.timezone, timeout_s=req.timeout_s,
                max_retries=req.max_retries, retry_backoff_s=req.retry_backoff_s,
                concurrency=req.concurrency, tags=req.tags,
                output_formats=req.output_formats, paused=req.paused,
                catchup=req.catchup, notify=notify)  # fmt: skip
            s.add(j)
            s.flush()
            if upload is not None:
                j.stored_notebook = True
                self._keep(upload, j.id)
            self._audit(s, user, "job.create", f"job:{j.name}")
            return self._definition_info(j)

    @staticmethod
    def _team_owner(user: Principal, group: str) -> str:
        if group not in user.groups:
            raise Forbidden(
                f"only members of {group!r} may give it a job; you are in: "
                f"{', '.join(user.groups) or 'no group'}",
                details={"field": "owner_group"},
            )
        return f"{GROUP_PREFIX}{group}"

    def _audit(self, s: Any, user: Principal, action: str, target: str, reason: str = "") -> None:
        """Who changed which job or run, in the transaction of the change itself."""
        audit.record(self.store, audit.AuditEntry(user=user, action=action, decision="allowed",
                                                  target=target, reason=reason), s)  # fmt: skip

    @staticmethod
    def _check_formats(formats: list[str] | None) -> None:
        for f in formats or []:
            if f not in ("html", "pdf"):
                raise InvalidRequest(
                    f"unknown output format {f!r}: ipynb is always kept; html and pdf can be added",
                    details={"field": "output_formats"},
                )
            if f == "pdf":
                from .render import pdf_renderer

                browser, why = pdf_renderer()
                if browser is None:
                    raise InvalidRequest(f"output format 'pdf' is not available: {why}",
                                         details={"field": "output_formats"})  # fmt: skip

    def update_job(self, user: Principal, ref: str, patch: JobDefinitionPatch) -> JobDefinitionInfo:
        changes = patch.model_dump(exclude_unset=True)
        if "notebook" in changes and changes["notebook"] is None:
            raise InvalidRequest(
                "notebook: send the notebook, or a notebook_path", details={"field": "notebook"}
            )
        upload = self._upload(changes.pop("notebook")) if "notebook" in changes else None
        try:
            return self._update_job(user, ref, patch, changes, upload)
        finally:
            if upload is not None:
                upload.unlink(missing_ok=True)

    def _update_job(
        self,
        user: Principal,
        ref: str,
        patch: JobDefinitionPatch,
        changes: dict[str, Any],
        upload: Path | None,
    ) -> JobDefinitionInfo:
        with self.store.session() as s:
            j = self._job(s, ref)
            if set(changes) - {"paused"}:
                self._acts_as(user, j.owner, f"change what job {j.name!r} runs")
            self._visible(user, j.owner)
            if upload is not None:
                path = upload
            elif "notebook_path" in changes:
                path = self._notebook(changes["notebook_path"])
                changes["stored_notebook"] = False  # back to the workspace's file
            else:
                path = self._job_notebook(j)
            if "parameters" in changes:
                changes["parameters"] = validate_parameters(
                    infer_parameters(path), changes["parameters"] or {}
                )
            if "kernel_name" in changes:
                changes["kernel_name"] = self._kernel(None, changes["kernel_name"])
            self._check_schedule(
                changes.get("schedule", j.schedule), changes.get("timezone", j.timezone) or "UTC"
            )
            self._check_formats(changes.get("output_formats"))
            if "notify" in changes:
                # Whole, with its defaults: a patch replaces the notify settings.
                changes["notify"] = patch.notify.model_dump() if patch.notify else None
                self._check_notify(changes["notify"])
            if "owner_group" in changes:  # handed to a team the user is in
                group = changes.pop("owner_group")
                if group is None:
                    raise InvalidRequest(
                        "owner_group: a job stays with its team; name another group",
                        details={"field": "owner_group"},
                    )
                changes["owner"] = self._team_owner(user, group)
            for k, v in changes.items():
                setattr(j, k, v)
            if upload is not None:
                j.stored_notebook = True
                self._keep(upload, j.id)
                changes["notebook"] = "(uploaded)"
            s.flush()
            self._audit(s, user, "job.update", f"job:{j.name}", ", ".join(sorted(changes)))
            return self._definition_info(j)

    def delete_job(self, user: Principal, ref: str) -> None:
        with self.store.session() as s:
            j = self._job(s, ref)
            self._visible(user, j.owner)
            self._audit(s, user, "job.delete", f"job:{j.name}")
            if j.stored_notebook:
                self._stored(j.id).unlink(missing_ok=True)
            s.delete(j)  # its runs stay (job_id becomes NULL): history is never lost

    def get_job(self, user: Principal, ref: str) -> JobDefinitionInfo:
        with self.store.session() as s:
            j = self._job(s, ref)
            self._visible(user, j.owner)
            return self._definition_info(j)

    def list_jobs(self, user: Principal) -> list[JobDefinitionInfo]:
        with self.store.session() as s:
            q = select(t.JobDefinition).order_by(t.JobDefinition.name)
            if not self._is_admin(user):
                q = q.where(t.JobDefinition.owner.in_(self._owned_by(user)))
            return [self._definition_info(j) for j in s.scalars(q)]

    # runs ----------------------------------------------------------------------------------------
    def run_info(
        self, s: Any, r: t.Run, notifications: list[t.Notification] | None = None
    ) -> RunInfo:
        """The API view of a run; ``notifications`` when already loaded (lists of runs)."""
        if notifications is None:
            notifications = list(self._notifications(s, [r.id]).get(r.id, []))
        job_name = None
        if r.job_id:
            job_name = s.scalar(select(t.JobDefinition.name).where(t.JobDefinition.id == r.job_id))
        d = {
            c.name: getattr(r, c.name)
            for c in t.Run.__table__.columns
            if c.name in RunInfo.model_fields
        }
        d["outputs"] = sorted(r.outputs)
        notes = [NotificationInfo.model_validate(n, from_attributes=True) for n in notifications]
        return RunInfo(**d, job_name=job_name, notifications=notes)

    @staticmethod
    def _notifications(s: Any, run_ids: list[str]) -> dict[str, list[t.Notification]]:
        by_run: dict[str, list[t.Notification]] = {}
        if run_ids:
            q = select(t.Notification).where(t.Notification.run_id.in_(run_ids))
            for n in s.scalars(q.order_by(t.Notification.created_at, t.Notification.id)):
                by_run.setdefault(n.run_id, []).append(n)
        return by_run

    def submit(
        self,
        user: Principal,
        req: RunRequest,
        trigger: str = "api",
        claim: Callable[[Any, t.Run], None] | None = None,
    ) -> tuple[RunInfo, bool]:
        """Queue a run; returns (run, created). An idempotency key returns the first run.

        ``claim(session, run)`` runs in the transaction that inserts the run, before it: the
        scheduler records its fire there, and whatever it raises writes nothing.
        """
        if req.idempotency_key:
            with self.store.session() as s:
                r = s.scalar(
                    select(t.Run).where(
                        t.Run.owner == user.name, t.Run.idempotency_key == req.idempotency_key
                    )
                )
                if r is not None:
                    return self.run_info(s, r), False
        if (req.job is None) == (req.notebook_path is None and req.notebook is None):
            raise InvalidRequest("give exactly one of job or notebook_path (or notebook)")
        if req.job is not None and req.notebook is not None:
            raise InvalidRequest("a job runs its own notebook: give job or notebook, not both")
        upload = self._upload(req.notebook) if req.notebook is not None else None
        try:
            return self._submit(user, req, trigger, claim, upload)
        finally:
            if upload is not None:
                upload.unlink(missing_ok=True)

    def _submit(
        self,
        user: Principal,
        req: RunRequest,
        trigger: str,
        claim: Callable[[Any, t.Run], None] | None,
        upload: Path | None,
    ) -> tuple[RunInfo, bool]:
        job: t.JobDefinition | None = None
        if req.job is not None:
            with self.store.session() as s:
                job = self._job(s, req.job)
            self._acts_as(user, job.owner, f"run job {job.name!r}")
            rel = job.notebook_path
            path = self._job_notebook(job)
        else:
            rel = req.notebook_path or "notebook.ipynb"
            path = upload or self._notebook(rel)
        declared = infer_parameters(path)
        given = {**(job.parameters if job else {}), **req.parameters}
        params = validate_parameters(declared, given)
        nb_kernel = (read_notebook(path).metadata.get("kernelspec") or {}).get("name")
        kernel = self._kernel(nb_kernel, req.kernel_name or (job.kernel_name if job else None))
        formats = (
            req.output_formats
            if req.output_formats is not None
            else (job.output_formats if job else [])
        )
        self._check_formats(formats)
        run = t.Run(
            id=t.new_id(), job_id=job.id if job else None, status="queued",
            owner=job.owner if job else user.name, notebook_path=rel, parameters=params,
            kernel_name=kernel, executor=job.executor if job else self.default_executor,
            trigger=trigger, triggered_by=user.name, idempotency_key=req.idempotency_key,
            timeout_s=req.timeout_s or (job.timeout_s if job else None), host=self.host,
            progress={"output_formats": formats,
                      **({"uploaded": True} if upload else {})})  # fmt: skip
        run_dir = self.runs_dir / run.id
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            # The input is snapshotted now: later edits to the notebook do not change the run.
            shutil.copyfile(path, run_dir / OUTPUT_FILES["input"])
            run.notebook_hash = notebook_hash(run_dir / OUTPUT_FILES["input"])
            run.outputs = {"input": OUTPUT_FILES["input"]}
            self._share(run.id, {"input"})
            with self.store.session() as s:
                if claim is not None:
                    claim(s, run)
                s.add(run)
                s.flush()
                what = f"job:{job.name}" if job else f"notebook:{rel}"
                self._audit(s, user, "run.submit", f"run:{run.id}", f"{trigger} {what}")
                return self.run_info(s, run), True
        except IntegrityError:  # the same idempotency key, submitted concurrently
            shutil.rmtree(run_dir, ignore_errors=True)
            with self.store.session() as s:
                r = s.scalar(
                    select(t.Run).where(
                        t.Run.owner == user.name, t.Run.idempotency_key == req.idempotency_key
                    )
                )
                assert r is not None
                return self.run_info(s, r), False
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise

    def rerun(self, user: Principal, run_id: str, parameters: dict[str, Any] | None) -> RunInfo:
        with self.store.session() as s:
            r = self._run(s, run_id)
            self._acts_as(user, r.owner, f"re-run run {run_id}")
            job_ref = r.job_id
            base = dict(r.parameters)
            rel, kernel, timeout = r.notebook_path, r.kernel_name, r.timeout_s
            formats = r.progress.get("output_formats", [])
            uploaded = bool(r.progress.get("uploaded"))
        content = None
        if uploaded and not job_ref:  # it has no file to read again: the same notebook
            import json

            content = json.loads((self.runs_dir / run_id / OUTPUT_FILES["input"]).read_text())
        req = RunRequest(
            job=job_ref,
            notebook=content,
            notebook_path=None if job_ref else rel,
            parameters={**base, **(parameters or {})},
            kernel_name=kernel,
            timeout_s=timeout,
            output_formats=formats,
        )
        info, _ = self.submit(user, req, trigger="user")
        return info

    def reproduce(self, user: Principal, run_id: str) -> RunInfo:
        """Run the very notebook snapshot of run ``run_id`` again, with its parameters (not
        the notebook as it is now): a new run, ``trigger`` ``reproduce``."""
        with self.store.session() as s:
            r = self._run(s, run_id)
            self._acts_as(user, r.owner, f"reproduce run {run_id}")
            src = self.runs_dir / run_id / OUTPUT_FILES["input"]
            if not src.exists() and self.storage is not None:
                self.storage.fetch(run_id, OUTPUT_FILES["input"], src)
            if not src.exists():
                raise NotFound(f"the notebook snapshot of run {run_id} is not on this server")
            new = t.Run(
                id=t.new_id(), job_id=r.job_id, status="queued", owner=r.owner,
                notebook_path=r.notebook_path, notebook_hash=r.notebook_hash,
                parameters=dict(r.parameters), kernel_name=r.kernel_name, executor=r.executor,
                trigger="reproduce", triggered_by=user.name, timeout_s=r.timeout_s,
                host=self.host, outputs={"input": OUTPUT_FILES["input"]},
                progress={"output_formats": r.progress.get("output_formats", []),
                          "reproduces": run_id})  # fmt: skip
            new_dir = self.runs_dir / new.id
            new_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, new_dir / OUTPUT_FILES["input"])
            self._share(new.id, {"input"})
            s.add(new)
            s.flush()
            return self.run_info(s, new)

    def _run(self, s: Any, run_id: str) -> t.Run:
        r = s.get(t.Run, run_id)
        if r is None:
            raise NotFound(f"unknown run {run_id!r}")
        return r

    def get_run(self, user: Principal, run_id: str) -> RunInfo:
        with self.store.session() as s:
            r = self._run(s, run_id)
            self._visible(user, r.owner)
            return self.run_info(s, r)

    def list_runs(
        self, user: Principal, job: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[RunInfo]:
        with self.store.session() as s:
            q = select(t.Run).order_by(t.Run.created_at.desc()).limit(limit)
            if not self._is_admin(user):
                q = q.where(t.Run.owner.in_(self._owned_by(user)))
            if job:
                q = q.where(t.Run.job_id == self._job(s, job).id)
            if status:
                q = q.where(t.Run.status == status)
            runs = list(s.scalars(q))
            notes = self._notifications(s, [r.id for r in runs])
            return [self.run_info(s, r, notes.get(r.id, [])) for r in runs]

    def output_path(self, user: Principal, run_id: str, name: str) -> Path:
        with self.store.session() as s:
            r = self._run(s, run_id)
            self._visible(user, r.owner)
            if name not in r.outputs:
                raise NotFound(
                    f"run {run_id} has no output {name!r}; it has: {', '.join(sorted(r.outputs))}"
                )
        path = self.runs_dir / run_id / OUTPUT_FILES[name]
        if not path.exists() and self.storage is not None:
            self.storage.fetch(run_id, OUTPUT_FILES[name], path)  # it ran on another server
        if not path.exists():
            where = "shared storage" if self.storage else "this server (no c.DataOps.outputs_url)"
            raise NotFound(f"the {name} of run {run_id} is not on {where}")
        return path

    def _share(self, run_id: str, names: set[str]) -> None:
        """Copy these files of the run to shared storage, when there is one."""
        if self.storage is not None and names:
            run_dir = self.runs_dir / run_id
            files = {OUTPUT_FILES[n]: run_dir / OUTPUT_FILES[n] for n in names}
            try:
                self.storage.put(run_id, files)
            except Exception as e:
                raise Unavailable(
                    f"could not write run {run_id}'s files to {self.storage.url}: "
                    f"{type(e).__name__}: {e}"
                ) from None

    def request_cancel(self, user: Principal, run_id: str) -> RunInfo:
        """Mark a queued run cancelled; a running one is killed by the executor."""
        with self.store.session() as s:
            r = self._run(s, run_id)
            self._visible(user, r.owner)
            if r.status in TERMINAL:
                raise Conflict(f"run {run_id} already {r.status}")
            if r.status == "queued":
                r.status, r.finished_at = "cancelled", utcnow()
                r.error = {"reason": "cancelled", "message": f"cancelled by {user.name}"}
            self._audit(s, user, "run.cancel", f"run:{run_id}")
            return self.run_info(s, r)

    # the executor's side -------------------------------------------------------------------------
    def queued(self, limit: int = 100) -> list[tuple[str, str | None, int]]:
        """This server's queued runs that may start now: (run id, job id, job concurrency)."""
        now = utcnow()
        with self.store.session() as s:
            rows = s.execute(
                select(t.Run.id, t.Run.job_id, t.JobDefinition.concurrency)
                .outerjoin(t.JobDefinition, t.JobDefinition.id == t.Run.job_id)
                .where(
                    t.Run.status == "queued",
                    t.Run.host == self.host,
                    or_(t.Run.not_before.is_(None), t.Run.not_before <= now),
                )
                .order_by(t.Run.created_at)
                .limit(limit)
            ).all()
        return [(r[0], r[1], r[2] or 1) for r in rows]

    def next_wakeup(self) -> datetime | None:
        with self.store.session() as s:
            return s.scalar(
                select(func.min(t.Run.not_before)).where(
                    t.Run.status == "queued", t.Run.host == self.host
                )
            )

    def claim(self, run_id: str, server_url: str) -> RunSpec | None:
        """queued -> running, atomically (one claimer wins); returns what to execute."""
        with self.store.session() as s:
            res = s.execute(
                update(t.Run)
                .where(t.Run.id == run_id, t.Run.status == "queued")
                .values(status="running", started_at=utcnow())
            )
            if cast(CursorResult[Any], res).rowcount != 1:
                return None
            r = self._run(s, run_id)
            formats = r.progress.get("output_formats", [])
            kept: dict[str, Any] = {
                k: r.progress[k] for k in ("uploaded", "reproduces") if k in r.progress
            }
            r.progress = {"output_formats": formats, "cell": 0, "of": None, **kept}
            run_dir = self.runs_dir / run_id
            timeout = r.timeout_s
            token = self.tokens.mint(r.owner, f"run:{run_id}")
            env = {
                "JUPYTER_DATAOPS_URL": server_url,
                # Scoped to this run and its owner: a job reads what its owner may read, and
                # the token is refused once the run has ended (and renewed only while it runs).
                "JUPYTER_DATAOPS_TOKEN": token,
                "DATAOPS_RUN_ID": run_id,
            }
            env.update(self._start_tracking(s, r, server_url, token, run_dir))
            nb_dir = (self.root / r.notebook_path).resolve().parent
            if not nb_dir.is_dir() or not nb_dir.is_relative_to(self.root):
                nb_dir = run_dir  # an uploaded notebook from elsewhere: its run's own folder
            job = {
                "run_id": run_id, "notebook": r.notebook_path,
                "input_path": str(run_dir / OUTPUT_FILES["input"]),
                "output_path": str(run_dir / OUTPUT_FILES["notebook"]),
                "log_path": str(run_dir / OUTPUT_FILES["log"]),
                "parameters": r.parameters, "cwd": str(nb_dir), "env": env,
                "output_formats": formats,
                # Renewed well before it expires (the client library renews its own too).
                "renew_every_s": self.tokens.ttl_s / 2,
            }  # fmt: skip
            return RunSpec(run_id, r.kernel_name, timeout, job, owner=r.owner)

    def _start_tracking(
        self, s: Any, r: t.Run, server_url: str, token: str, run_dir: Path
    ) -> dict[str, str]:
        """Create the run's MLflow run; the kernel environment that logs into it."""
        if self.tracking is None:
            return {}
        job_name = None
        if r.job_id:
            job_name = s.scalar(select(t.JobDefinition.name).where(t.JobDefinition.id == r.job_id))
        try:
            mlflow_run_id = self.tracking.start_job_run(s, r, job_name)
        except Exception as e:  # the run goes on untracked, and says why
            log.warning("DataOps: run %s is not tracked in MLflow", r.id, exc_info=True)
            r.progress = {**r.progress, "tracking_error": f"{type(e).__name__}: {e}"}
            return {}
        return self.tracking.kernel_env(mlflow_run_id, server_url, token, run_dir / "spool")

    def tracking_started(self, run_id: str) -> None:
        """What the MLflow run of a started run gets while its kernel works (the executor
        calls this after handing the run over): its parameters, the lineage START event."""
        if self.tracking is not None:
            try:
                self.tracking.job_run_started(run_id)
            except Exception:
                log.warning("DataOps: run %s: its MLflow parameters were not logged", run_id,
                            exc_info=True)  # fmt: skip

    def progress(self, run_id: str, data: dict[str, Any]) -> None:
        with self.store.session() as s:
            r = self._run(s, run_id)
            if r.status == "running":
                r.progress = {**r.progress, **data}

    def is_cancelled(self, run_id: str) -> bool:
        with self.store.session() as s:
            return self._run(s, run_id).status == "cancelled"

    def finish(
        self,
        run_id: str,
        status: str,
        error: dict[str, Any] | None = None,
        outputs: dict[str, str] | None = None,
        *,
        retry_host: str | None = None,
    ) -> str | None:
        """Record the end of a run; returns the id of a retry when the policy wants one
        (queued for ``retry_host``, by default the dispatcher the run was queued for).

        A run that ends for good (no retry follows; not cancelled) is then handed to the
        notifier and the end hooks, once its final state is committed (:meth:`settle` waits
        for that).
        """
        with self._ending:
            self._ends_under_way += 1
        try:
            return self._finish(run_id, status, error, outputs, retry_host=retry_host)
        finally:
            with self._ending:
                self._ends_under_way -= 1
                self._ending.notify_all()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every run whose end is recorded has had its end handled too (MLflow's
        run ended, the notifier and the dashboards told); False when ``timeout`` passed."""
        with self._ending:
            return self._ending.wait_for(lambda: self._ends_under_way == 0, timeout)

    def _finish(
        self,
        run_id: str,
        status: str,
        error: dict[str, Any] | None,
        outputs: dict[str, str] | None,
        *,
        retry_host: str | None,
    ) -> str | None:
        assert status in TERMINAL
        with self.store.session() as s:
            r = self._run(s, run_id)
            if r.status in TERMINAL:
                return None  # already ended (cancelled while queued): that record stands
            r.status, r.finished_at = status, utcnow()
            if error is not None:
                r.error = error
            from .runner import MARKED_INPUT

            # A killed runner leaves what papermill read behind.
            (self.runs_dir / run_id / MARKED_INPUT).unlink(missing_ok=True)
            found = {
                name: OUTPUT_FILES[name]
                for name in OUTPUT_FILES
                if (self.runs_dir / run_id / OUTPUT_FILES[name]).exists()
            }
            r.outputs = found
            if self.storage is not None:
                try:
                    self._share(run_id, set(found) - {"input"})
                except Exception as e:  # the run's record stands; its files stay local
                    r.progress = {**r.progress, "storage_error": f"{type(e).__name__}: {e}"}
            retry_id = (
                self._retry(s, r, retry_host or r.host)
                if status in ("failed", "timed_out")
                else None
            )
        if self.tracking is not None:
            # After the run's own record is committed (its end is not delayed by MLflow's),
            # before anyone is notified: the MLflow run ends with the same truth.
            try:
                self.tracking.end_job_run(run_id, status, self.runs_dir / run_id)
            except Exception:  # the run's record stands; MLflow's may be behind
                log.warning("DataOps: run %s: ending its MLflow run failed", run_id,
                            exc_info=True)  # fmt: skip
        if retry_id is None and status != "cancelled":
            if self.notifier is not None:
                self.notifier.run_ended(run_id)
            for hook in self.on_run_end:
                hook(run_id)
        return retry_id

    def _retry(self, s: Any, r: t.Run, host: str) -> str | None:
        """Queue the retry of a failed attempt when its definition's policy wants one."""
        if r.job_id is None:
            return None
        job = s.get(t.JobDefinition, r.job_id)
        if job is None or r.attempt > job.max_retries:
            return None
        run_id = r.id
        backoff = job.retry_backoff_s * (2 ** (r.attempt - 1))
        retry = t.Run(
            id=t.new_id(), job_id=r.job_id, status="queued", owner=r.owner,
            notebook_path=r.notebook_path, notebook_hash=r.notebook_hash,
            parameters=r.parameters, kernel_name=r.kernel_name, executor=r.executor,
            trigger="retry", triggered_by=r.triggered_by, retry_of=r.id,
            attempt=r.attempt + 1, timeout_s=r.timeout_s, host=host,
            progress={k: r.progress[k] for k in ("output_formats", "uploaded")
                      if k in r.progress},
            not_before=utcnow() + timedelta(seconds=backoff),
            outputs={"input": OUTPUT_FILES["input"]})  # fmt: skip
        retry_dir = self.runs_dir / retry.id
        retry_dir.mkdir(parents=True, exist_ok=True)
        # The retry runs the very same input as the attempt it repeats.
        shutil.copyfile(
            self.runs_dir / run_id / OUTPUT_FILES["input"], retry_dir / OUTPUT_FILES["input"]
        )
        self._share(retry.id, {"input"})
        s.add(retry)
        return retry.id

    def recover(self, own: bool = True) -> list[str]:
        """Fail as lost the runs left running by a dispatcher of this machine and workspace
        that is gone: this one's previous incarnation (``own``, at start: a restarted server
        gets its identity back) and any other whose process ended (a killed
        ``jupyter dataops run --wait``). Live dispatchers' runs are never touched. Retries
        follow each run's policy and are queued here; returns their ids."""
        with self.store.session() as s:
            rows = s.execute(
                select(t.Run.id, t.Run.host).where(
                    t.Run.status == "running",
                    or_(
                        t.Run.host == self.base_host,
                        t.Run.host.startswith(f"{self.base_host}#", autoescape=True),
                    ),
                )
            ).all()
        gone: dict[str, bool] = {}
        retries = []
        for run_id, host in rows:
            if host not in gone:
                mine = host == self.host
                gone[host] = own if mine else not dispatchers.alive(self.dispatchers_dir, host)
            if not gone[host]:
                continue
            who = dispatchers.describe(host, self.base_host)
            retry = self.finish(
                run_id,
                "failed",
                {"reason": "lost", "message": f"{who} stopped while this run was running"},
                retry_host=self.host,
            )
            if retry:
                retries.append(retry)
        return retries
