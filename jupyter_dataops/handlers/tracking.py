"""Tracked runs of notebooks (``dops.run``), experiments, comparisons and lineage."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..models import EndTrackedRunRequest, LogRequest, StartTrackedRunRequest, TrackedRunInfo
from .base import DataOpsHandler, Operation

MLFLOW_RUN = "(?P<mlflow_run_id>[0-9A-Za-z-]{1,64})"


class TrackedRunsHandler(DataOpsHandler):
    path = "tracking/runs"
    operations = {
        "post": Operation(
            "Start an MLflow run of yours (dops.run): experiment, params, the notebook",
            TrackedRunInfo,
            request=StartTrackedRunRequest,
        ),
    }

    @web.authenticated
    @authorized
    async def post(self) -> None:
        req = self.parse_body(StartTrackedRunRequest)
        info = await self.platform.store.run(self.platform.tracking.start, self.principal(), req)
        self.write_model(info, 201)


class TrackedRunHandler(DataOpsHandler):
    path = f"tracking/runs/{MLFLOW_RUN}"
    operations = {
        "get": Operation(
            "An MLflow run you may read: whose, which job run", TrackedRunInfo, run_token=True
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, mlflow_run_id: str) -> None:
        t = self.platform.tracking
        self.write_model(await self.platform.store.run(t.get, self.principal(), mlflow_run_id))


class TrackedRunLogHandler(DataOpsHandler):
    path = f"tracking/runs/{MLFLOW_RUN}/log"
    operations = {
        "post": Operation(
            "Log a batch of metrics, params and tags into a running run you may write "
            "(a job run's token: its own run only); 409 once the run has ended",
            None,
            request=LogRequest,
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def post(self, mlflow_run_id: str) -> None:
        req = self.parse_body(LogRequest)
        records = [r.model_dump(exclude_none=True) for r in req.records]
        await self.platform.store.run(
            self.platform.tracking.log_batch, self.principal(), mlflow_run_id, records
        )
        self.set_status(204)
        self.finish()


class TrackedRunEndHandler(DataOpsHandler):
    path = f"tracking/runs/{MLFLOW_RUN}/end"
    operations = {
        "post": Operation(
            "End a run of yours (a job's run is ended by the server)",
            TrackedRunInfo,
            request=EndTrackedRunRequest,
        ),
    }

    @web.authenticated
    @authorized
    async def post(self, mlflow_run_id: str) -> None:
        req = self.parse_body(EndTrackedRunRequest)
        info = await self.platform.store.run(
            self.platform.tracking.end_user_run, self.principal(), mlflow_run_id, req.status
        )
        self.write_model(info)
