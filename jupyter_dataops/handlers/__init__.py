"""Thin Tornado handlers, one module per resource, mounted under ``/dataops/api/v1``."""

from __future__ import annotations

from typing import Any

from .audit import AuditHandler
from .base import API_PREFIX, DataOpsHandler, NotFoundHandler
from .datasets import (
    DatasetHandler,
    DatasetsHandler,
    PreviewHandler,
    PullHandler,
    RefreshHandler,
)
from .jobs import (
    CancelHandler,
    JobHandler,
    JobsHandler,
    LogHandler,
    OutputHandler,
    ParametersHandler,
    RerunHandler,
    RunHandler,
    RunsHandler,
)
from .mlflow import (
    LoggedModelHandler,
    LoggedModelsHandler,
    MlflowArtifactHandler,
    MlflowArtifactListHandler,
    MlflowHandler,
)
from .openapi import OpenAPIHandler
from .status import StatusHandler
from .token import TokenRenewHandler
from .tracking import (
    ExperimentRunsHandler,
    ExperimentsHandler,
    KernelTrackingHandler,
    LineageHandler,
    MetricHistoryHandler,
    ReproduceHandler,
    TrackedRunEndHandler,
    TrackedRunHandler,
    TrackedRunLogHandler,
    TrackedRunsHandler,
)
from .workspace import ValidateConfigHandler

RESOURCES: list[type[DataOpsHandler]] = [
    StatusHandler,
    ValidateConfigHandler,
    DatasetsHandler,
    DatasetHandler,
    RefreshHandler,
    PreviewHandler,
    PullHandler,
    AuditHandler,
    ParametersHandler,
    JobsHandler,
    JobHandler,
    RunsHandler,
    RunHandler,
    CancelHandler,
    RerunHandler,
    LogHandler,
    OutputHandler,
    TokenRenewHandler,
    TrackedRunsHandler,
    KernelTrackingHandler,
    TrackedRunHandler,
    TrackedRunLogHandler,
    TrackedRunEndHandler,
    MetricHistoryHandler,
    ReproduceHandler,
    ExperimentsHandler,
    ExperimentRunsHandler,
    LineageHandler,
    LoggedModelsHandler,  # before MlflowHandler, whose {op} would match logged-models/search
    LoggedModelHandler,
    MlflowHandler,
    MlflowArtifactListHandler,
    MlflowArtifactHandler,
    OpenAPIHandler,
]


def handlers() -> list[tuple[str, type[Any]]]:
    routes: list[tuple[str, type[Any]]] = [(f"{API_PREFIX}/{h.path}", h) for h in RESOURCES]
    routes.append((f"{API_PREFIX}(?:/.*)?", NotFoundHandler))
    return routes
