"""The one base handler: identity, JSON bodies, and the single error translator."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from http.client import responses
from typing import Any, ClassVar, TypeVar

from jupyter_server.auth import IdentityProvider, User
from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web

from ..exceptions import DataOpsError, Forbidden, InvalidRequest, NotFound, Unauthorized
from ..identity import AUTH_SCHEME, GROUP_PREFIX, Principal, TokenError
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
    """One method of one route, as the OpenAPI document describes it, and who may call it.

    Every caller is a user (a browser or a REST client with Jupyter's credentials), a kernel
    of this server (a ``kernel`` DataOps token: it may do what its user may do from a
    notebook) or a job run (a ``run:<id>`` token). Run tokens are refused unless
    ``run_token`` is set, and on a route with a ``run_id`` they may name only their own run.
    """

    summary: str
    response: type[BaseModel] | None
    request: type[BaseModel] | None = None
    params: tuple[tuple[str, str, str], ...] = ()  # (name, type, description) query params
    run_token: bool = False
    kernel_token: bool = True


@dataclass
class TokenUser(User):
    """A user authenticated by a DataOps token (a kernel or a job), not by Jupyter's auth."""

    scope: str = "kernel"
    claims: dict[str, Any] = field(default_factory=dict)


class DataOpsIdentity:
    """Jupyter's identity provider, plus ``Authorization: DataOps <token>`` for kernels/jobs.

    A DataOps token is good only while what it is bound to lives: its kernel (a live kernel of
    this server) or its run (running). A bad DataOps token never falls back to other
    credentials; why it was refused is kept for the 401.
    """

    def __init__(self, inner: IdentityProvider, platform: Platform) -> None:
        self._inner = inner
        self._platform = platform

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @staticmethod
    def _token(handler: web.RequestHandler) -> str | None:
        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == AUTH_SCHEME.lower():
            return token.strip()
        # MLflow's client sends MLFLOW_TRACKING_TOKEN as a Bearer token (handlers/mlflow.py).
        if scheme.lower() == "bearer" and getattr(handler, "accepts_bearer", False):
            return token.strip()
        return None

    async def get_user(self, handler: web.RequestHandler) -> User | None:
        token = self._token(handler)
        if token is None:
            user = self._inner.get_user(handler)
            if isinstance(user, Awaitable):
                user = await user
            return user
        try:
            expired_ok = getattr(handler, "accepts_expired_tokens", False)
            claims = self._platform.tokens.verify(token, allow_expired=expired_ok)
            if not await self._platform.store.run(self._platform.token_lives, claims):
                raise TokenError("gone", _GONE[claims["scope"].split(":")[0]])
        except TokenError as e:
            handler._dataops_auth_error = e  # type: ignore[attr-defined]
            return None
        return TokenUser(username=claims["sub"], scope=claims["scope"], claims=claims)

    def is_token_authenticated(self, handler: web.RequestHandler) -> bool:
        # Header tokens cannot be sent cross-site by a browser, so no XSRF check is needed.
        if self._token(handler) is not None:
            return True
        return self._inner.is_token_authenticated(handler)


class _TokenAuthorizer:
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource == AUTH_RESOURCE


_GONE = {
    "kernel": "the DataOps token's kernel is no longer running",
    "live": "the DataOps token's kernel is no longer running",
    "run": "the DataOps token's run is no longer running",
}


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

    @property
    def authorizer(self) -> Any:
        # A DataOps token is this server's own credential, checked (and scoped) here: the
        # server's authorizer knows only its identity provider's users (JupyterHub's reads
        # `user.hub_user`, which a token's user has not).
        if isinstance(self.current_user, TokenUser):
            return _TokenAuthorizer()
        return super().authorizer

    def check_xsrf_cookie(self) -> None:
        # Tornado calls this before prepare() (and JupyterHub's identity provider replaces
        # Jupyter Server's version, which waits for the user): the check belongs after
        # authentication, and header tokens (no cookie a site could send) need none.
        if not hasattr(self, "_jupyter_current_user") or self.token_authenticated:
            return None
        return super().check_xsrf_cookie()

    async def prepare(self) -> None:  # type: ignore[override]
        """Authenticate (401), check the credential's scope (403), resolve the principal.

        401: no credentials, or credentials that are invalid, expired or whose kernel or run
        has ended. 403: good credentials without the right to this route or object.
        """
        try:
            await super().prepare()
        except web.HTTPError as e:
            if e.status_code != 403 or self.current_user is not None:
                raise
        if self.current_user is None:
            err: TokenError | None = getattr(self, "_dataops_auth_error", None)
            if err is not None:
                raise Unauthorized(err.message, details={"reason": err.reason})
            raise Unauthorized(
                "authentication required: send 'Authorization: token <server token>' "
                "or a DataOps kernel token",
                details={"reason": "missing"},
            )
        self._principal = await self.platform.store.run(self._resolve_principal)
        self._check_scope(self._principal)

    def _check_scope(self, user: Principal) -> None:
        op = self.operations.get((self.request.method or "").lower())
        if op is None or user.kind == "user":
            return  # 405s and users: the route's own checks decide
        if user.kind == "kernel" and not op.kernel_token:
            raise Forbidden("a kernel's DataOps token may not call this endpoint")
        # A dashboard's live kernel runs its owner's code as its viewer: reads only, as a run.
        if user.kind in ("run", "live"):
            if not op.run_token:
                raise Forbidden(
                    "a live dashboard's token may only read governed data"
                    if user.kind == "live"
                    else "a job run's token may only read governed data, its own run and its input"
                )
            asked = (self.path_kwargs or {}).get("run_id")
            if asked is not None and asked != user.run_id:
                raise Forbidden("a job run's token may only read its own run")

    # identity --------------------------------------------------------------------------------
    def _resolve_principal(self) -> Principal:
        # Blocking: reading dataops.yaml (when it changed) happens here, off the event loop.
        user = self.current_user
        if isinstance(user, TokenUser):
            return self.platform.run_principal(user.username, user.scope)
        idp = self.settings["identity_provider"]
        if type(idp) in (IdentityProvider, PasswordIdentityProvider):
            # A personal server: Jupyter only knows anonymous token users here.
            return self.platform.principal(self.platform.settings.local_user)
        if user.username.startswith(GROUP_PREFIX):
            # That name is how a team's jobs act: no person may take it.
            raise Forbidden(f"user names may not start with {GROUP_PREFIX!r}")
        groups = getattr(user, "groups", None)  # the service's standalone users
        if groups is None:
            groups = (getattr(user, "hub_user", None) or {}).get("groups") or ()
        return self.platform.principal(user.username, user.display_name, tuple(groups))

    def principal(self) -> Principal:
        """The DataOps user for this request (see ``c.DataOps.local_user``)."""
        return self._principal

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
        if status_code == 401:
            self.set_header("WWW-Authenticate", f'{AUTH_SCHEME} realm="jupyter-dataops", token')
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class NotFoundHandler(DataOpsHandler):
    """Any other path under the API prefix: a JSON 404, never an HTML page."""

    def _missing(self, *args: Any) -> None:
        raise NotFound(f"no such endpoint: {self.request.method} {self.request.path}")

    @web.authenticated
    @authorized
    def get(self, *args: Any) -> None:
        self._missing()

    post = put = patch = delete = get
