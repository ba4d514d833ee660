"""The API contract: pydantic models for every request and response.

This module imports nothing else of jupyter_dataops, so the OpenAPI document, the TypeScript
types and the handlers all derive from one place (see ``jupyter_dataops/api``).
"""

from __future__ import annotations

import re
import types
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class _Model(BaseModel):
    # Responses always carry every field, so the generated TypeScript marks them required.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


def _nullable(annotation: Any) -> bool:
    if annotation is None or annotation is Any:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_nullable(a) for a in get_args(annotation))
    return annotation is type(None)


class _Patch(_Model):
    """A partial update of ``patches``: every field may be left out, and sent as null only
    where ``patches`` itself allows null (null then clears it). A null for a field that
    cannot be empty is a 400 naming the field, never a half-applied change."""

    patches: ClassVar[type[BaseModel]]

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_allowed(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name is not None:
            target = cls.patches.model_fields.get(info.field_name)
            if target is None or not _nullable(target.annotation):
                raise ValueError("may not be null: leave the field out to keep its value")
        return value


class ErrorDetail(_Model):
    code: str = Field(description="Machine-readable error code, e.g. `invalid_request`.")
    message: str = Field(description="What went wrong, in words a user can act on.")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(_Model):
    """The body of every failed request."""

    error: ErrorDetail


class UserInfo(_Model):
    name: str = Field(description="The DataOps user name policies are evaluated for.")
    display_name: str
    groups: list[str] = Field(default_factory=list)


class StoreInfo(_Model):
    url: str = Field(description="Metadata store URL with any password replaced by `***`.")
    dialect: str
    revision: str | None = Field(description="Alembic revision the store is at.")


class ConfigProblem(_Model):
    message: str
    file: str
    line: int | None = None
    field: str | None = None


class WorkspaceInfo(_Model):
    root: str
    config_path: str
    config_loaded: bool = Field(description="Whether a valid dataops.yaml is in force.")
    config_error: ConfigProblem | None = Field(
        default=None,
        description="Why the file on disk was rejected; the last good config stays in force.",
    )


class Counts(_Model):
    datasets: int
    jobs: int
    runs: int
    dashboards: int


class TokenInfo(_Model):
    token: str = Field(description="The fresh DataOps token (send as `Authorization: DataOps`).")
    expires_at: float = Field(description="When it expires, in seconds since the epoch.")
    scope: str = Field(description="`kernel` or `run:<id>`, as the token renewed.")


class StatusResponse(_Model):
    version: str
    user: UserInfo
    store: StoreInfo
    workspace: WorkspaceInfo
    counts: Counts


class ValidateConfigRequest(_Model):
    """A candidate dataops.yaml, checked without being saved."""

    text: str = Field(description="The YAML text to check.", max_length=5_000_000)


class ValidateConfigResponse(_Model):
    valid: bool
    problems: list[ConfigProblem] = Field(default_factory=list)


# -- catalog ------------------------------------------------------------------------------------


class ColumnInfo(_Model):
    name: str
    type: str = Field(description="Arrow type, e.g. `int64`, `string`, `timestamp[us]`.")
    kind: str = Field(description="string | integer | float | decimal | boolean | temporal | other")
    description: str = ""
    classification: list[str] = Field(default_factory=list)
    masked: bool = Field(default=False, description="Whether *you* see this column masked.")
    mask: str | None = Field(default=None, description="The mask function applied for you.")


class VersionInfo(_Model):
    fingerprint: str
    row_count: int | None
    observed_at: datetime


class AccessInfo(_Model):
    allowed: bool
    reason: str
    row_filter: bool = Field(description="Whether a row filter limits the rows you see.")
    masked_columns: list[str] = Field(default_factory=list)


class DatasetSummary(_Model):
    name: str
    title: str
    description: str
    owner: str
    tags: list[str]
    origin: str = Field(description="`config` (dataops.yaml) or `api` (registered by its owner)")
    source_type: str
    access: AccessInfo


class DatasetDetail(DatasetSummary):
    columns: list[ColumnInfo]
    versions: list[VersionInfo] = Field(description="Newest first.")
    source: dict[str, Any] = Field(description="The source, with any password hidden.")


class DatasetList(_Model):
    datasets: list[DatasetSummary]


class ReadRequest(_Model):
    """Which part of a dataset to read; the policy still decides what you get."""

    columns: list[str] | None = Field(default=None, description="Default: every column.")
    where: str | None = Field(
        default=None,
        max_length=10_000,
        description="A SQL condition on the dataset's columns, e.g. `dep_delay > 60`.",
    )
    limit: int | None = Field(default=None, ge=0, le=1_000_000_000)


class PreviewResponse(_Model):
    dataset: str
    version: str
    columns: list[ColumnInfo]
    rows: list[dict[str, Any]]
    masked_columns: list[str]


class RegisterDatasetRequest(_Model):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
    title: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    source: dict[str, Any] = Field(
        description="`{type: parquet|csv, path}` under the workspace root, or "
        "`{type: sql, url, table|query}`."
    )
    columns: dict[str, dict[str, Any]] = Field(default_factory=dict)


# -- audit ----------------------------------------------------------------------------------------


class AuditEventInfo(_Model):
    id: int
    at: datetime
    user: str = Field(description="Whose rights were used: a user, or `group:<name>`.")
    actor: str | None = Field(
        default=None, description="The person who acted, when `user` is a group's job run."
    )
    scope: str
    action: str = Field(
        description="read, preview; job.create, job.update, job.delete, run.submit, "
        "run.cancel, run.rerun"
    )
    target: str | None = Field(default=None, description="job:<name> or run:<id>.")
    dataset: str
    version: str | None
    columns: list[str]
    filter: str | None
    row_count: int | None
    decision: str
    reason: str
    masked: list[str]
    duration_ms: float


class AuditPage(_Model):
    events: list[AuditEventInfo]
    next_before: int | None = Field(
        default=None, description="Pass as `before` to get the next (older) page."
    )


# -- jobs -----------------------------------------------------------------------------------------

RunState = Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out"]
RUN_STATES: tuple[str, ...] = RunState.__args__  # type: ignore[attr-defined]


class ParameterInfo(_Model):
    name: str
    type: str = Field(description="int | float | str | bool | list | dict | any")
    default: Any = None
    help: str = ""


class NotebookParameters(_Model):
    notebook_path: str
    parameters: list[ParameterInfo]
    notebook_kernel: str | None = Field(
        default=None, description="The kernel the notebook's metadata names (its kernelspec)."
    )
    kernel_name: str | None = Field(
        default=None,
        description="The installed kernel a run of the notebook uses unless told otherwise "
        "(`python` is the native kernel, case does not matter); null when none is installed.",
    )


def _webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    return url


_EMAIL = re.compile(
    r"^[^@\s<>(),;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)


def _email(address: str) -> str:
    if not _EMAIL.match(address):
        raise ValueError(f"{address!r} is not an e-mail address")
    return address


NotifyEvent = Literal["success", "failure"]


def _on_failure() -> list[NotifyEvent]:
    return ["failure"]


class NotifySettings(_Model):
    """Who hears about a definition's runs when they end for good (after their last retry)."""

    on: list[NotifyEvent] = Field(
        default_factory=_on_failure,
        max_length=2,
        description="success: the run succeeded; failure: it failed or timed out. "
        "Cancelled runs notify no one.",
    )
    webhooks: list[Annotated[str, AfterValidator(_webhook_url)]] = Field(
        default_factory=list,
        max_length=10,
        description="http(s) URLs that get a signed JSON POST (X-DataOps-Signature).",
    )
    emails: list[Annotated[str, AfterValidator(_email)]] = Field(
        default_factory=list,
        max_length=10,
        description="Addresses that get a plain-text e-mail (needs c.DataOps.smtp_host).",
    )


class NotificationInfo(_Model):
    """The outcome of one delivery of a run's notification."""

    channel: str = Field(description="webhook | email")
    target: str = Field(description="The URL or the address.")
    event: str = Field(description="success | failure | render (a dashboard's subscriber)")
    status: str = Field(description="sent | failed")
    attempts: int
    error: str | None
    created_at: datetime


class JobDefinitionRequest(_Model):
    """Create a job definition (PATCH takes the same fields, all optional)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
    notebook_path: str = Field(max_length=1024, description="Relative to the workspace root.")
    notebook: dict[str, Any] | None = Field(
        default=None,
        description="The notebook itself, kept with the definition (nbformat 4 JSON), instead "
        "of a file of the server's workspace; notebook_path is then where it came from. What a "
        "user's server sends the team's service, whose workspace holds no user's notebooks.",
    )

    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict, description="Default values.")
    kernel_name: str | None = Field(default=None, description="Default: the notebook's.")
    executor: str = Field(default="local", pattern=r"^(local|dask)$")
    schedule: str | None = Field(default=None, description="A cron expression.")
    timezone: str = "UTC"
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    max_retries: int = Field(default=0, ge=0, le=20)
    retry_backoff_s: float = Field(default=30.0, ge=0, le=24 * 3600)
    concurrency: int = Field(default=1, ge=1, le=64)
    tags: list[str] = Field(default_factory=list)
    output_formats: list[str] = Field(
        default_factory=list,
        description="Extra formats besides ipynb: html, pdf (pdf needs Chromium on the server).",
    )
    paused: bool = False
    catchup: str = Field(
        default="once",
        pattern=r"^(once|skip)$",
        description="Fire times missed while no scheduler ran: once (run the latest) or skip.",
    )
    notify: NotifySettings | None = Field(
        default=None, description="Webhooks and e-mails when a run ends for good."
    )
    owner_group: str | None = Field(
        default=None,
        description="A group you are in: the job then belongs to the team (owner "
        "`group:<name>`). Any member may change, pause or run it; its runs act with the "
        "group's grants, never the union of its members'; it outlives its author.",
    )


class JobDefinitionPatch(_Patch):
    patches = JobDefinitionRequest

    description: str | None = None
    notebook_path: str | None = None
    notebook: dict[str, Any] | None = Field(
        default=None, description="A new copy of the notebook the job keeps."
    )
    parameters: dict[str, Any] | None = None
    kernel_name: str | None = None
    schedule: str | None = None
    timezone: str | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    max_retries: int | None = Field(default=None, ge=0, le=20)
    retry_backoff_s: float | None = Field(default=None, ge=0, le=24 * 3600)
    concurrency: int | None = Field(default=None, ge=1, le=64)
    tags: list[str] | None = None
    output_formats: list[str] | None = None
    paused: bool | None = None
    catchup: str | None = Field(default=None, pattern=r"^(once|skip)$")
    notify: NotifySettings | None = Field(default=None, description="null removes it.")
    owner_group: str | None = Field(default=None, description="Hand the job to a team you are in.")


class JobDefinitionInfo(_Model):
    id: str
    name: str
    description: str
    notebook_path: str
    owner: str
    parameters: dict[str, Any]
    kernel_name: str
    executor: str
    schedule: str | None
    timezone: str
    timeout_s: float | None
    max_retries: int
    retry_backoff_s: float
    concurrency: int
    tags: list[str]
    output_formats: list[str]
    paused: bool
    catchup: str
    notify: NotifySettings | None
    webhook_secret: str | None = Field(
        default=None,
        description="Key of the X-DataOps-Signature HMAC-SHA256 on this job's webhooks "
        "(null without webhooks). Shown to the job's owner and admins only.",
    )
    next_fire_at: datetime | None = Field(
        default=None,
        description="The schedule's next fire time (UTC); null without a schedule or paused.",
    )
    created_at: datetime
    updated_at: datetime


class JobList(_Model):
    jobs: list[JobDefinitionInfo]


class RunRequest(_Model):
    """Run a job definition, or a notebook directly."""

    job: str | None = Field(default=None, description="A job definition's name or id.")
    notebook_path: str | None = Field(
        default=None, max_length=1024, description="Or a notebook to run once."
    )
    notebook: dict[str, Any] | None = Field(
        default=None,
        description="The notebook itself (nbformat 4 JSON) instead of a file of the server's "
        "workspace; notebook_path is then where it came from. What a user's server sends the "
        "team's service, whose workspace holds no user's notebooks.",
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    kernel_name: str | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    output_formats: list[str] | None = None
    idempotency_key: str | None = Field(
        default=None,
        max_length=128,
        description="Submitting the same key again returns the first run, not a new one.",
    )


class RerunRequest(_Model):
    parameters: dict[str, Any] | None = Field(
        default=None, description="Changes to the original run's parameters."
    )


class RunInfo(_Model):
    id: str
    job_id: str | None
    job_name: str | None
    status: RunState
    owner: str
    notebook_path: str
    notebook_hash: str
    parameters: dict[str, Any]
    kernel_name: str
    executor: str
    trigger: str
    triggered_by: str
    retry_of: str | None
    attempt: int
    timeout_s: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: dict[str, Any] | None
    progress: dict[str, Any]
    outputs: list[str] = Field(description="Names to download from /runs/{id}/outputs/{name}")
    notifications: list[NotificationInfo] = Field(
        default_factory=list, description="Deliveries of this run's notifications, oldest first."
    )


class RunList(_Model):
    runs: list[RunInfo]


# -- dashboards -----------------------------------------------------------------------------------

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class Viewers(_Model):
    """Who may open a dashboard, besides its owner (and admins): users and groups."""

    users: list[str] = Field(default_factory=list, max_length=500)
    groups: list[str] = Field(default_factory=list, max_length=100)


class DashboardRequest(_Model):
    """Publish a job definition's results, or a notebook (run as a job on publish)."""

    slug: str = Field(
        pattern=SLUG,
        description="Its stable name in URLs: lower-case letters, digits and dashes.",
    )
    title: str = Field(default="", max_length=256, description="Default: the slug.")
    description: str = Field(default="", max_length=5000)
    job: str | None = Field(
        default=None,
        description="A job definition you own (name or id): the dashboard shows its latest "
        "successful run, re-rendered when a new run succeeds.",
    )
    notebook_path: str | None = Field(
        default=None,
        description="Or a notebook: it becomes the job `dashboard-<slug>` and runs now.",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="With notebook_path: the parameters of its runs."
    )
    schedule: str | None = Field(
        default=None, description="With notebook_path: a cron expression that refreshes it."
    )
    timezone: str = "UTC"
    template: str = Field(
        default="lab", description="An installed nbconvert HTML template: lab, classic..."
    )
    viewers: Viewers = Field(default_factory=Viewers)
    live: bool = Field(
        default=False,
        description="Offer the live view: the notebook run for each viewer, as the viewer, "
        "with parameters from the query string.",
    )
    run_now: bool = Field(
        default=False, description="With job: also run the job now (a notebook always runs)."
    )


class DashboardPatch(_Patch):
    patches = DashboardRequest

    title: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=5000)
    template: str | None = None
    viewers: Viewers | None = None
    live: bool | None = None


class RenderInfo(_Model):
    """One run of the dashboard's job, rendered as its published view."""

    run_id: str
    status: str = Field(description="rendered | failed (the run succeeded; its render did not)")
    error: str | None
    rendered_at: datetime
    run_finished_at: datetime | None
    parameters: dict[str, Any]


class StaleInfo(_Model):
    """A run newer than the view failed: the view is the last good one."""

    since: datetime = Field(description="When the first failed run since the view ended.")
    reason: str
    run_id: str = Field(description="The latest failed run.")
    failed_runs: int


class DashboardInfo(_Model):
    id: str
    slug: str
    title: str
    description: str
    owner: str
    published_by: str
    source: str = Field(description="job | notebook")
    job_name: str | None = Field(description="null once its job was deleted (renders stay).")
    notebook_path: str | None
    template: str
    viewers: Viewers
    live: bool
    url: str = Field(
        description="The published view: a path of the server that serves it (the team's "
        "service in team mode), relative to its base URL for the Python API."
    )
    live_url: str | None
    created_at: datetime
    updated_at: datetime
    last_render: RenderInfo | None
    stale: StaleInfo | None
    pending_run: str | None = Field(description="A run of its job queued or running now.")
    can_manage: bool = Field(description="Whether you may change, share or unpublish it.")
    subscribed: bool = Field(description="Whether you get an e-mail for each new render.")


class DashboardList(_Model):
    dashboards: list[DashboardInfo]


class RenderList(_Model):
    renders: list[RenderInfo] = Field(description="Newest first.")


class ShareLinkRequest(_Model):
    label: str = Field(default="", max_length=256, description="Who it is for.")
    expires_in_s: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        le=90 * 24 * 3600,
        description="Seconds until it stops working (at most 90 days).",
    )


class ShareLinkInfo(_Model):
    id: str
    label: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool
    url: str | None = Field(
        default=None,
        description="The link, with its secret after `#`: returned once, when it is made. "
        "Browsers never send what follows `#`, so the secret stays out of server logs.",
    )


class ShareLinkList(_Model):
    links: list[ShareLinkInfo]


class SubscriptionRequest(_Model):
    email: Annotated[str, AfterValidator(_email)] = Field(
        description="Where the e-mails go (a link to the new render, and its PDF when "
        "the server can make one)."
    )
    pdf: bool = True


class SubscriptionInfo(_Model):
    slug: str
    user: str
    email: str
    pdf: bool
    created_at: datetime


# tracking -----------------------------------------------------------------------------------
TrackedStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]


class StartTrackedRunRequest(_Model):
    experiment: str = Field(min_length=1, max_length=500, description="Experiment name.")
    run_name: str | None = Field(default=None, max_length=250)
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    notebook_path: str = Field(default="", description="The notebook the run is made in.")
    notebook_hash: str = Field(default="", description="sha256 of the notebook's saved file.")


class TrackedRunInfo(_Model):
    mlflow_run_id: str
    experiment_id: str
    experiment: str
    owner: str
    kind: str = Field(description="`job` (a job run's) or `interactive` (dops.run).")
    run_id: str | None = Field(description="The DataOps job run it tracks, if a job's.")
    notebook_path: str
    status: TrackedStatus
    created_at: datetime
    ended_at: datetime | None


class LogRecord(_Model):
    t: Literal["m", "p", "g"] = Field(description="metric, param or tag")
    k: str = Field(min_length=1, max_length=250)
    v: Any
    ts: int | None = Field(default=None, description="metric timestamp, ms since the epoch")
    s: int | None = Field(default=None, description="metric step")


class LogRequest(_Model):
    records: list[LogRecord] = Field(max_length=100_000)


class EndTrackedRunRequest(_Model):
    status: Literal["FINISHED", "FAILED", "KILLED"] = "FINISHED"


class DatasetRead(_Model):
    dataset: str
    version: str = Field(description="The version (content fingerprint) the run read.")
    current_version: str | None = Field(description="The dataset's latest observed version.")
    is_current: bool
    columns: list[str]
    filter: str | None
    row_count: int | None
    at: datetime
    mlflow_run_id: str
    run_id: str | None
    experiment: str
    owner: str


class LineageResponse(_Model):
    dataset: str | None = Field(description="The dataset asked about (?dataset=).")
    run: TrackedRunInfo | None = Field(description="The run asked about (?run=).")
    reads: list[DatasetRead] = Field(description="Which runs read which versions, newest first.")
    outputs: list[str] = Field(description="What the run produced: its artifacts.")


class ExperimentInfo(_Model):
    id: str
    name: str
    runs: int = Field(description="Runs of it you may see.")
    last_run_at: datetime | None


class ExperimentList(_Model):
    experiments: list[ExperimentInfo]
    mlflow_ui_url: str | None = Field(description="c.DataOps.mlflow_ui_url, for links.")


class RunSummary(_Model):
    mlflow_run_id: str
    name: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    owner: str
    run_id: str | None = Field(description="The job run it tracks, if a job's.")
    notebook_path: str


class RunSearchResult(_Model):
    experiment: ExperimentInfo
    runs: list[RunSummary]


class MetricPoint(_Model):
    step: int
    value: float
    timestamp: int


class MetricHistory(_Model):
    mlflow_run_id: str
    key: str
    points: list[MetricPoint]


class TrackedRunDetail(_Model):
    info: TrackedRunInfo
    summary: RunSummary
    datasets: list[DatasetRead]
    artifacts: list[str]


class KernelTracking(_Model):
    kernel_id: str
    run: TrackedRunInfo | None = Field(description="The running run it logs into, if any.")


class DatasetCheck(_Model):
    dataset: str
    version: str = Field(description="The version the run read.")
    current_version: str | None = Field(description="The version observed now.")
    is_current: bool


class ReproduceResponse(_Model):
    run: RunInfo = Field(description="The new run: the snapshot, the same parameters.")
    reproduces: str = Field(description="The job run it reproduces.")
    datasets: list[DatasetCheck] = Field(description="Each dataset version the run read.")
    changed: list[str] = Field(description="Datasets whose version changed since.")
