"""MLflow's REST API (the subset its client logs and reads runs with), checked per caller.

Job kernels get ``MLFLOW_TRACKING_URI=<server>/dataops/api/v1/mlflow`` and their run's token
as ``MLFLOW_TRACKING_TOKEN``, so plain ``mlflow.log_metric`` lands in their own run and
nowhere else. The logic is in tracking/rest.py; these are its Tornado shells.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import DataOpsError, InvalidRequest
from ..tracking.rest import MlflowApi, mlflow_error_code
from .base import DataOpsHandler, Operation

PREFIX = "mlflow/api/2.0"


class _MlflowBase(DataOpsHandler):
    accepts_bearer = True

    @property
    def api(self) -> MlflowApi:
        return MlflowApi(self.platform.tracking)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # MLflow's client reads error_code and message; DataOps clients read "error".
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(exc, DataOpsError):
            return super().write_error(status_code, **kwargs)
        body = {**exc.to_dict(), "error_code": mlflow_error_code(exc), "message": exc.message}
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="jupyter-dataops"')
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class MlflowHandler(_MlflowBase):
    path = f"{PREFIX}/mlflow/(?P<op>[a-z-]+/[a-z-]+)"
    operations = {
        "get": Operation(
            "MLflow REST API 2.0 reads (runs/get, metrics/get-history, experiments/get, "
            "experiments/get-by-name) of runs the caller may read",
            None,
            run_token=True,
        ),
        "post": Operation(
            "MLflow REST API 2.0 writes (runs/log-metric, log-parameter, log-batch, set-tag, "
            "delete-tag, log-inputs, update; users also runs/create, runs/search, "
            "experiments/create) to runs the caller may write",
            None,
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, op: str) -> None:
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        out = await self.platform.store.run(self.api.call, self.principal(), op, "GET", args)
        self.finish(out)

    @web.authenticated
    @authorized
    async def post(self, op: str) -> None:
        try:
            args = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidRequest(f"request body is not valid JSON: {e}") from None
        if not isinstance(args, dict):
            raise InvalidRequest("request body must be a JSON object")
        out = await self.platform.store.run(self.api.call, self.principal(), op, "POST", args)
        self.finish(out)


class MlflowArtifactListHandler(_MlflowBase):
    path = f"{PREFIX}/mlflow-artifacts/artifacts"
    operations = {
        "get": Operation(
            "List a run's artifacts (MLflow's artifact proxy: ?path=runs/<id>/artifacts/...)",
            None,
            params=(("path", "string", "runs/<mlflow run id>/artifacts[/<dir>]"),),
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", "")
        out = await self.platform.store.run(self.api.list, self.principal(), path)
        self.finish(out)


class MlflowArtifactHandler(_MlflowBase):
    path = f"{PREFIX}/mlflow-artifacts/artifacts/(?P<path>.+)"
    operations = {
        "get": Operation("Download an artifact of a run the caller may read", None, run_token=True),
        "put": Operation(
            "Upload an artifact to a run the caller may write (its own running run)",
            None,
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        data = await self.platform.store.run(self.api.download, self.principal(), path)
        self.set_header("Content-Type", "application/octet-stream")
        self.finish(data)

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        await self.platform.store.run(
            self.api.upload, self.principal(), path, self.request.body or b""
        )
        self.finish({})


class _LoggedModelsBase(_MlflowBase):
    async def _call(self, method: str, rest: str) -> None:
        args: Any
        if method in ("GET", "DELETE"):
            args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        else:
            try:
                args = json.loads(self.request.body or b"{}")
            except (ValueError, UnicodeDecodeError) as e:
                raise InvalidRequest(f"request body is not valid JSON: {e}") from None
        if not isinstance(args, dict):
            raise InvalidRequest("request body must be a JSON object")
        out = await self.platform.store.run(
            self.api.logged_models, self.principal(), method, rest, args
        )
        self.finish(out)


class LoggedModelsHandler(_LoggedModelsBase):
    path = f"{PREFIX}/mlflow/logged-models"
    operations = {
        "post": Operation(
            "MLflow 3's logged models: create one of a run the caller may write (log_model, "
            "autolog)",
            None,
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self._call("POST", "")


class LoggedModelHandler(_LoggedModelsBase):
    path = f"{PREFIX}/mlflow/logged-models/(?P<rest>.+)"
    operations = {
        "get": Operation(
            "A logged model of a run the caller may read; its artifacts", None, run_token=True
        ),
        "post": Operation("Search logged models; log a model's params", None, run_token=True),
        "patch": Operation("Finalize a model, set its tags", None, run_token=True),
        "delete": Operation("Delete a model or one of its tags", None, run_token=True),
    }

    @web.authenticated
    @authorized
    async def get(self, rest: str) -> None:
        await self._call("GET", rest)

    @web.authenticated
    @authorized
    async def post(self, rest: str) -> None:
        await self._call("POST", rest)

    @web.authenticated
    @authorized
    async def patch(self, rest: str) -> None:
        await self._call("PATCH", rest)

    @web.authenticated
    @authorized
    async def delete(self, rest: str) -> None:
        await self._call("DELETE", rest)
