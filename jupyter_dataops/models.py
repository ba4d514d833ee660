"""The API contract: pydantic models for every request and response.

This module imports nothing else of jupyter_dataops, so the OpenAPI document, the TypeScript
types and the handlers all derive from one place (see ``jupyter_dataops/api``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # Responses always carry every field, so the generated TypeScript marks them required.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


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
