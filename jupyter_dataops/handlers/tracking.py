"""Tracked runs of notebooks (``dops.run``), experiments, comparisons and lineage."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import InvalidRequest
from ..models import (
    EndTrackedRunRequest,
    ExperimentList,
    KernelTracking,
    LineageResponse,
    LogRequest,
    MetricHistory,
    ReproduceResponse,
    RunSearchResult,
    StartTrackedRunRequest,
    TrackedRunDetail,
    TrackedRunInfo,
)  # fmt: skip
from ..tracking.compare import Comparisons
from .base import DataOpsHandler, Operation, TokenUser

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
        user = self.current_user
        kernel_id = user.claims.get("kid") if isinstance(user, TokenUser) else None
        info = await self.platform.store.run(
            self.platform.tracking.start, self.principal(), req, kernel_id
        )
        self.write_model(info, 201)


class KernelTrackingHandler(DataOpsHandler):
    path = "tracking/kernels/(?P<kernel_id>[0-9a-f-]{1,64})"
    operations = {
        "get": Operation(
            "Whether a kernel of yours is inside a tracked run (dops.run): the notebook "
            "toolbar shows it",
            KernelTracking,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, kernel_id: str) -> None:
        run = await self.platform.store.run(
            self.platform.tracking.active_in_kernel, self.principal(), kernel_id
        )
        self.write_model(KernelTracking(kernel_id=kernel_id, run=run))


class _Reading(DataOpsHandler):
    @property
    def compare(self) -> Comparisons:
        return Comparisons(self.platform.tracking)


class TrackedRunHandler(_Reading):
    path = f"tracking/runs/{MLFLOW_RUN}"
    operations = {
        "get": Operation(
            "A run you may read (by MLflow run id or job run id): params, metrics, tags, the "
            "datasets and versions it read, its artifacts",
            TrackedRunDetail,
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, mlflow_run_id: str) -> None:
        run = self.platform.store.run
        self.write_model(await run(self.compare.detail, self.principal(), mlflow_run_id))


class MetricHistoryHandler(_Reading):
    path = f"tracking/runs/{MLFLOW_RUN}/metrics/(?P<key>[^/]+)"
    operations = {
        "get": Operation("A metric's values over steps, for charts", MetricHistory),
    }

    @web.authenticated
    @authorized
    async def get(self, mlflow_run_id: str, key: str) -> None:
        run = self.platform.store.run
        self.write_model(await run(self.compare.history, self.principal(), mlflow_run_id, key))


class ExperimentsHandler(_Reading):
    path = "experiments"
    operations = {
        "get": Operation(
            "Experiments with runs of yours (admins: all), newest first", ExperimentList
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        run = self.platform.store.run
        self.write_model(await run(self.compare.experiments, self.principal()))


class ExperimentRunsHandler(_Reading):
    path = "experiments/(?P<experiment_id>[^/]+)/runs"
    operations = {
        "get": Operation(
            "An experiment's runs you may see, searched with MLflow's syntax",
            RunSearchResult,
            params=(
                ("filter", "string", "e.g. metrics.rmse < 1 AND params.alpha = '0.1'"),
                ("order_by", "string", "comma-separated, e.g. metrics.rmse ASC"),
                ("max_results", "integer", "at most this many runs (default 1000)"),
            ),
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, experiment_id: str) -> None:
        text = self.get_query_argument("filter", "")
        order = [x.strip() for x in self.get_query_argument("order_by", "").split(",")]
        try:
            limit = int(self.get_query_argument("max_results", "1000"))
        except ValueError:
            raise InvalidRequest("max_results must be an integer") from None
        if not 1 <= limit <= 50_000:
            raise InvalidRequest("max_results must be between 1 and 50000")
        out = await self.platform.store.run(
            self.compare.runs, self.principal(), experiment_id, text, [o for o in order if o],
            limit,
        )  # fmt: skip
        self.write_model(out)


class LineageHandler(_Reading):
    path = "lineage"
    operations = {
        "get": Operation(
            "Which runs read which versions of a dataset (?dataset=), or which datasets and "
            "versions a run read and what it produced (?run=, MLflow or job run id)",
            LineageResponse,
            params=(
                ("dataset", "string", "a dataset name"),
                ("run", "string", "an MLflow run id or a job run id"),
            ),
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        dataset = self.get_query_argument("dataset", None)
        ref = self.get_query_argument("run", None)
        out = await self.platform.store.run(self.compare.lineage, self.principal(), dataset, ref)
        self.write_model(out)


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


class ReproduceHandler(_Reading):
    path = f"tracking/runs/{MLFLOW_RUN}/reproduce"
    operations = {
        "post": Operation(
            "Re-run a job run's notebook snapshot with its parameters (by MLflow or job run "
            "id), after checking whether each dataset version it read is still current",
            ReproduceResponse,
        ),
    }

    @web.authenticated
    @authorized
    async def post(self, mlflow_run_id: str) -> None:
        p = self.platform
        out = await p.store.run(
            self.compare.reproduce, self.principal(), p.jobs, p.catalog, mlflow_run_id
        )
        executor = self.settings.get("dataops_executor")
        if executor is not None:
            executor.wake()
        self.write_model(out, 201)
