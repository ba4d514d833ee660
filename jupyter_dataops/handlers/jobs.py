"""Jobs and runs: definitions, submission, state, cancel, re-run, logs and outputs."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..exceptions import Forbidden, InvalidRequest, Unavailable
from ..jobs.service import TERMINAL
from ..models import (
    RUN_STATES,
    JobDefinitionInfo,
    JobDefinitionPatch,
    JobDefinitionRequest,
    JobList,
    NotebookParameters,
    RerunRequest,
    RunInfo,
    RunList,
    RunRequest,
)  # fmt: skip
from .base import DataOpsHandler, Operation

LOG_POLL_S = 0.25


def _read_from(path: Path, offset: int) -> bytes:
    """What was appended to ``path`` since ``offset`` (file I/O stays off the event loop)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


class _JobsBase(DataOpsHandler):
    @property
    def executor(self) -> Any:
        executor = self.settings.get("dataops_executor")
        if executor is None:
            raise Unavailable("the job executor is not running yet")
        return executor


class ParametersHandler(_JobsBase):
    path = "notebooks/parameters"
    operations = {
        "get": Operation(
            "A notebook's parameters, from its `parameters` cell",
            NotebookParameters,
            params=(("path", "string", "notebook path in the workspace"),),
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", None)
        if not path:
            raise InvalidRequest("path is required")
        self.write_model(await self.platform.store.run(self.platform.jobs.parameters, path))


class JobsHandler(_JobsBase):
    path = "jobs"
    operations = {
        "get": Operation("Your job definitions (admins: all)", JobList),
        "post": Operation(
            "Create a job definition", JobDefinitionInfo, request=JobDefinitionRequest
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        jobs = await self.platform.store.run(self.platform.jobs.list_jobs, self.principal())
        self.write_model(JobList(jobs=jobs))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        req = self.parse_body(JobDefinitionRequest)
        job = await self.platform.store.run(self.platform.jobs.create_job, self.principal(), req)
        self.write_model(job, status=201)


class JobHandler(_JobsBase):
    path = "jobs/(?P<ref>[^/]+)"
    operations = {
        "get": Operation("A job definition (by name or id)", JobDefinitionInfo),
        "patch": Operation(
            "Change a job definition", JobDefinitionInfo, request=JobDefinitionPatch
        ),
        "delete": Operation("Delete a job definition (its runs are kept)", None),
    }

    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        self.write_model(
            await self.platform.store.run(self.platform.jobs.get_job, self.principal(), ref)
        )

    @web.authenticated
    @authorized
    async def patch(self, ref: str) -> None:
        patch = self.parse_body(JobDefinitionPatch)
        self.write_model(
            await self.platform.store.run(
                self.platform.jobs.update_job, self.principal(), ref, patch
            )
        )

    @web.authenticated
    @authorized
    async def delete(self, ref: str) -> None:
        await self.platform.store.run(self.platform.jobs.delete_job, self.principal(), ref)
        self.set_status(204)
        self.finish()


class RunsHandler(_JobsBase):
    path = "runs"
    operations = {
        "get": Operation(
            "Runs, newest first (yours; admins: all)",
            RunList,
            params=(
                ("job", "string", "job name or id"),
                ("status", "string", " | ".join(RUN_STATES)),
                ("limit", "integer", "at most 500, default 50"),
            ),
        ),
        "post": Operation(
            "Submit a run (201; 200 with the first run for a repeated idempotency key)",
            RunInfo,
            request=RunRequest,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        status = self.get_query_argument("status", None)
        if status is not None and status not in RUN_STATES:
            raise InvalidRequest(f"status must be one of {', '.join(RUN_STATES)}")
        try:
            limit = int(self.get_query_argument("limit", "50"))
        except ValueError:
            raise InvalidRequest("limit must be an integer") from None
        if not 1 <= limit <= 500:
            raise InvalidRequest("limit must be between 1 and 500")
        runs = await self.platform.store.run(
            self.platform.jobs.list_runs,
            self.principal(),
            self.get_query_argument("job", None),
            status,
            limit,
        )
        self.write_model(RunList(runs=runs))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        req = self.parse_body(RunRequest)
        executor = self.executor
        run, created = await self.platform.store.run(
            self.platform.jobs.submit, self.principal(), req
        )
        executor.wake()
        self.write_model(run, status=201 if created else 200)


class RunHandler(_JobsBase):
    path = "runs/(?P<run_id>[0-9a-f]{32})"
    operations = {
        "get": Operation("A run: state, progress, error, outputs", RunInfo, run_token=True)
    }

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.write_model(
            await self.platform.store.run(self.platform.jobs.get_run, self.principal(), run_id)
        )


class CancelHandler(_JobsBase):
    path = "runs/(?P<run_id>[0-9a-f]{32})/cancel"
    operations = {"post": Operation("Cancel a queued or running run", RunInfo)}

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        jobs, user = self.platform.jobs, self.principal()
        run = await self.platform.store.run(jobs.request_cancel, user, run_id)
        if run.status == "running":
            await self.executor.cancel(run_id)
            for _ in range(100):  # the executor records the end right after the kill
                run = await self.platform.store.run(jobs.get_run, user, run_id)
                if run.status in TERMINAL:
                    break
                await asyncio.sleep(0.05)
        self.write_model(run)


class RerunHandler(_JobsBase):
    path = "runs/(?P<run_id>[0-9a-f]{32})/rerun"
    operations = {
        "post": Operation(
            "Run again, with the same or changed parameters", RunInfo, request=RerunRequest
        ),
    }

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        req = self.parse_body(RerunRequest) if self.request.body else RerunRequest()
        run = await self.platform.store.run(
            self.platform.jobs.rerun, self.principal(), run_id, req.parameters
        )
        self.executor.wake()
        self.write_model(run, status=201)


class OutputHandler(_JobsBase):
    path = "runs/(?P<run_id>[0-9a-f]{32})/outputs/(?P<name>[a-z]+)"
    operations = {
        "get": Operation(
            "Download an output: notebook, html, pdf, log or input (a run's own token: its "
            "input only)",
            None,
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        if self.principal().kind == "run" and name != "input":
            raise Forbidden("a job run's token may read only its own run's input")
        path = await self.platform.store.run(
            self.platform.jobs.output_path, self.principal(), run_id, name
        )
        data = await self.platform.store.run(path.read_bytes)
        ctype = {
            "log": "text/plain; charset=utf-8",
            "notebook": "application/x-ipynb+json",
            "input": "application/x-ipynb+json",
        }.get(name, mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        self.set_header("Content-Disposition", f'inline; filename="{run_id}-{path.name}"')
        self.finish(data, set_content_type=ctype)


class LogHandler(_JobsBase):
    path = "runs/(?P<run_id>[0-9a-f]{32})/log"
    operations = {
        "get": Operation(
            "Follow a run's log as server-sent events (`data:` lines; an "
            "`end` event carries the final status)",
            None,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        jobs, user = self.platform.jobs, self.principal()
        run = await self.platform.store.run(jobs.get_run, user, run_id)
        path = jobs.runs_dir / run_id / "run.log"
        if run.status in TERMINAL and "log" in run.outputs:
            path = await self.platform.store.run(jobs.output_path, user, run_id, "log")
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        offset = 0
        try:
            while True:
                chunk = await self.platform.store.run(_read_from, path, offset)
                if chunk:
                    offset += len(chunk)
                    for line in chunk.decode("utf-8", "replace").splitlines():
                        self.write(f"data: {line}\n\n")
                    await self.flush()
                if run.status in TERMINAL:
                    self.write(f"event: end\ndata: {run.status}\n\n")
                    break
                await asyncio.sleep(LOG_POLL_S)
                run = await self.platform.store.run(jobs.get_run, user, run_id)
        except StreamClosedError:
            return
        self.finish(set_content_type="text/event-stream")
