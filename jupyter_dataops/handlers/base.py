"""The one base handler: identity, JSON bodies, and the single error translator."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import dataclass
from http.client import responses
from typing import Any, ClassVar, TypeVar

from jupyter_server.auth import IdentityProvider, User
from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web

from ..exceptions import DataOpsError, InvalidRequest, NotFound, Unauthorized
from ..identity import AUTH_SCHEME, Principal
from ..platform import Platform

M = TypeVar("M", bound=BaseModel)

API_PREFIX = "/dataops/api/v1"
AUTH_RESOURCE = "dataops"

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    502: "bad_gateway",
    503: "unavailable",
}


@dataclass(frozen=True)
class Operation:
    """One method of one route, as the OpenAPI document describes it."""

    summary: str
    response: type[BaseModel] | None
    request: type[BaseModel] | None = None
    params: tuple[tuple[str, str, str], ...] = ()  # (name, type, description) query params


@dataclass
class TokenUser(User):
    """A user authenticated by a DataOps token (a kernel or a job), not by Jupyter's auth."""

    scope: str = "kernel"


class _INVALID:
    pass


class DataOpsIdentity:
    """Jupyter's identity provider, plus ``Authorization: DataOps <token>`` for kernels/jobs."""

    def __init__(self, inner: IdentityProvider, platform: Platform) -> None:
        self._inner = inner
        self._platform = platform

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _claims(self, handler: web.RequestHandler) -> dict[str, Any] | type[_INVALID] | None:
        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != AUTH_SCHEME.lower():
            return None
        return self._platform.tokens.verify(token.strip()) or _INVALID

    def get_user(self, handler: web.RequestHandler) -> User | Awaitable[User | None] | None:
        claims = self._claims(handler)
        if claims is _INVALID:
            return None  # a bad DataOps token never falls back to other credentials
        if isinstance(claims, dict):
            return TokenUser(username=claims["sub"], scope=str(claims.get("scope", "kernel")))
        return self._inner.get_user(handler)

    def is_token_authenticated(self, handler: web.RequestHandler) -> bool:
        # Header tokens cannot be sent cross-site by a browser, so no XSRF check is needed.
        if isinstance(self._claims(handler), dict):
            return True
        return self._inner.is_token_authenticated(handler)


class DataOpsHandler(ExtensionHandlerMixin, APIHandler):
    """Parse the body into a model, call one service method, write a model."""

    auth_resource = AUTH_RESOURCE
    path: ClassVar[str] = ""
    operations: ClassVar[dict[str, Operation]] = {}

    @property
    def platform(self) -> Platform:
        return self.settings["dataops"]

    @property
    def identity_provider(self) -> Any:
        return DataOpsIdentity(self.settings["identity_provider"], self.platform)

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            await super().prepare()
        except web.HTTPError as e:
            if e.status_code == 403 and self.current_user is None:
                raise Unauthorized(
                    "authentication required: send 'Authorization: token <server token>' "
                    "or a DataOps kernel token"
                ) from None
            raise

    # identity --------------------------------------------------------------------------------
    def principal(self) -> Principal:
        """The DataOps user for this request (see ``c.DataOps.local_user``)."""
        user = self.current_user
        if isinstance(user, TokenUser):
            return self.platform.principal(user.username, scope=user.scope)
        idp = self.settings["identity_provider"]
        if type(idp) in (IdentityProvider, PasswordIdentityProvider):
            # A personal server: Jupyter only knows anonymous token users here.
            return self.platform.principal(self.platform.settings.local_user)
        hub_user = getattr(user, "hub_user", None) or {}
        hub_groups = tuple(hub_user.get("groups") or ())
        return self.platform.principal(user.username, user.display_name, hub_groups)

    # bodies ----------------------------------------------------------------------------------
    def parse_body(self, model: type[M]) -> M:
        ctype = self.request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if ctype not in ("application/json", ""):
            raise InvalidRequest(
                f"expected a JSON body (Content-Type: application/json), got {ctype}"
            )
        try:
            data = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidRequest(f"request body is not valid JSON: {e}") from None
        if data is None:
            raise InvalidRequest("request body is empty; expected a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as e:
            errors = [
                {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
                for err in e.errors(include_input=False, include_url=False)
            ]
            summary = "; ".join(f"{x['field']}: {x['message']}" for x in errors[:5])
            raise InvalidRequest(
                f"invalid request body: {summary}", details={"errors": errors}
            ) from None

    def write_model(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(model.model_dump_json())

    # errors ----------------------------------------------------------------------------------
    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DataOpsError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, DataOpsError):
            self.log.info(
                "%s %s -> %s: %s",
                self.request.method,
                self.request.path,
                value.status,
                value.message,
            )
        else:
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DataOpsError):
            body = exc.to_dict()
        elif isinstance(exc, web.HTTPError):
            message = (
                exc.log_message % exc.args if exc.log_message and exc.args else exc.log_message
            )
            body = {
                "error": {
                    "code": _HTTP_CODES.get(status_code, "http_error"),
                    "message": message or exc.reason or responses.get(status_code, "error"),
                    "details": {},
                }
            }
        else:
            body = {
                "error": {
                    "code": "internal_error",
                    "message": "internal server error; the server log has the traceback",
                    "details": {},
                }
            }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class NotFoundHandler(DataOpsHandler):
    """Any other path under the API prefix: a JSON 404, never an HTML page."""

    def _missing(self, *args: Any) -> None:
        raise NotFound(f"no such endpoint: {self.request.method} {self.request.path}")

    @web.authenticated
    def get(self, *args: Any) -> None:
        self._missing()

    post = put = patch = delete = get
