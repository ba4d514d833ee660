"""Thin Tornado handlers, one module per resource, mounted under ``/dataops/api/v1``."""

from __future__ import annotations

from typing import Any

from .audit import AuditHandler
from .base import API_PREFIX, DataOpsHandler, NotFoundHandler
from .dashboards import (
    DashboardHandler,
    DashboardsHandler,
    RendersHandler,
    ShareHandler,
    SharesHandler,
    SubscriptionHandler,
)
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
from .pages import ASSETS_KWARGS, ASSETS_PATH, PAGES, PAGES_PREFIX, AssetsHandler
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
    DashboardsHandler,
    DashboardHandler,
    RendersHandler,
    SharesHandler,
    ShareHandler,
    SubscriptionHandler,
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


def handlers() -> list[tuple[Any, ...]]:
    routes: list[tuple[Any, ...]] = [(f"{API_PREFIX}/{h.path}", h) for h in RESOURCES]
    routes.append((f"{API_PREFIX}(?:/.*)?", NotFoundHandler))
    # Pages for browsers: the dashboards' index, published views, share links, and assets.
    routes.append((f"{PAGES_PREFIX}/{ASSETS_PATH}", AssetsHandler, ASSETS_KWARGS))
    routes += [(f"{PAGES_PREFIX}/{h.path}" if h.path else f"{PAGES_PREFIX}/?", h) for h in PAGES]
    from .live import live_routes

    routes += live_routes(labextensions_path())
    return routes


def labextensions_path() -> list[str]:
    """Where Voila's page finds the lab extensions (as voila.utils says, without importing
    Voila at start-up)."""
    import os

    from .live import data_dirs

    dirs = data_dirs()
    return [os.path.join(d, "labextensions") for d in dirs] + [
        os.path.join(d, "voila", "labextensions") for d in dirs
    ]
