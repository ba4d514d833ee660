"""The one error hierarchy of jupyter-dataops.

Services raise these; the base handler turns them into HTTP statuses with the JSON body
``{"error": {"code", "message", "details"}}`` and the CLI prints them. Nothing else maps
errors, so a new failure mode needs a new subclass here, not a new ``except`` elsewhere.
"""

from __future__ import annotations

from typing import Any


class DataOpsError(Exception):
    """Base class: a failure the user can act on."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidRequest(DataOpsError):
    status = 400
    code = "invalid_request"


class Unauthorized(DataOpsError):
    status = 401
    code = "unauthorized"


class Forbidden(DataOpsError):
    status = 403
    code = "forbidden"


class NotFound(DataOpsError):
    status = 404
    code = "not_found"


class Conflict(DataOpsError):
    status = 409
    code = "conflict"


class Unavailable(DataOpsError):
    """A part we depend on (store, source, cluster) did not answer."""

    status = 503
    code = "unavailable"


class BadGateway(DataOpsError):
    """An upstream data source failed while we talked to it."""

    status = 502
    code = "bad_gateway"


class ConfigError(InvalidRequest):
    """``dataops.yaml`` is not valid; details name the file, line and field."""

    code = "invalid_config"
