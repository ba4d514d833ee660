"""The subset of MLflow's REST API 2.0 that MLflow's own client uses to log into a run and
read it back, served by the DataOps API with its checks (handlers/mlflow.py is the shell).

Who may do what: a job run's token reads and writes only the MLflow run of its own job run;
a kernel's token or a user reads their own runs (admins: all runs) and writes their own
running runs; nobody but the platform writes ``dataops.*`` tags or ends a job's run (the
server ends it with the truth when the job run ends, whatever the kernel's ``atexit`` says).
Requests and responses are MLflow's protobuf messages in JSON, parsed and written with
MLflow's own helpers, so the client cannot tell this endpoint from an MLflow server.

Blocking: call through the platform's pools.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..exceptions import Conflict, DataOpsError, Forbidden, InvalidRequest, NotFound
from ..identity import Principal
from ..store import tables as t
from .service import ENDED, Tracking, check_user_tags, proxied_artifact_uri, temp_copy

READS = ("runs/get", "metrics/get-history", "experiments/get", "experiments/get-by-name")
WRITES = (
    "runs/log-metric", "runs/log-parameter", "runs/set-tag", "runs/delete-tag",
    "runs/log-batch", "runs/log-inputs", "runs/update", "runs/outputs",
)  # fmt: skip
USER_ONLY = ("runs/create", "experiments/create", "runs/search")
OPERATIONS = {**{op: "GET" for op in READS}, **{op: "POST" for op in (*WRITES, *USER_ONLY)}}
_MESSAGES = {
    "runs/get": "GetRun", "metrics/get-history": "GetMetricHistory",
    "experiments/get": "GetExperiment", "experiments/get-by-name": "GetExperimentByName",
    "runs/log-metric": "LogMetric", "runs/log-parameter": "LogParam", "runs/set-tag": "SetTag",
    "runs/delete-tag": "DeleteTag", "runs/log-batch": "LogBatch", "runs/log-inputs": "LogInputs",
    "runs/update": "UpdateRun", "runs/create": "CreateRun", "runs/outputs": "LogOutputs",
    "experiments/create": "CreateExperiment", "runs/search": "SearchRuns",
}  # fmt: skip


@contextlib.contextmanager
def mlflow_errors() -> Iterator[None]:
    """MLflow's exceptions as the DataOps errors of the same meaning."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as e:
        code = getattr(e, "error_code", "")
        message = getattr(e, "message", str(e))
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(message) from None
        if code in ("RESOURCE_ALREADY_EXISTS",):
            raise Conflict(message) from None
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"):
            raise InvalidRequest(message) from None
        raise


def mlflow_error_code(e: DataOpsError) -> str:
    return {
        400: "INVALID_PARAMETER_VALUE",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "RESOURCE_DOES_NOT_EXIST",
        409: "INVALID_STATE",
    }.get(e.status, "INTERNAL_ERROR")


def _parse(op: str, args: dict[str, Any]) -> Any:
    from mlflow.protos import service_pb2
    from mlflow.utils.proto_json_utils import parse_dict

    msg = getattr(service_pb2, _MESSAGES[op])()
    try:
        parse_dict(args, msg)
    except Exception as e:
        raise InvalidRequest(f"invalid {op} request: {e}") from None
    return msg


def _json(message: Any) -> dict[str, Any]:
    from mlflow.utils.proto_json_utils import message_to_json

    return dict(json.loads(message_to_json(message)))


def _run_id(msg: Any) -> str:
    rid = getattr(msg, "run_id", "") or getattr(msg, "run_uuid", "")
    if not rid:
        raise InvalidRequest("run_id is required")
    return str(rid)


class MlflowApi:
    """One method per MLflow operation; ``call`` checks the caller first."""

    def __init__(self, tracking: Tracking) -> None:
        self.tracking = tracking

    def call(self, user: Principal, op: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
        want = OPERATIONS.get(op)
        if want is None:
            raise NotFound(
                f"the DataOps MLflow endpoint does not serve {op!r}; it serves: "
                f"{', '.join(sorted(OPERATIONS))}",
                details={"operation": op},
            )
        if want != method:
            raise InvalidRequest(f"{op} is called with {want}, not {method}")
        if op in USER_ONLY and user.kind == "run":
            raise Forbidden("a job run's token may only log into its own MLflow run")
        msg = _parse(op, args)
        with mlflow_errors():
            return dict(getattr(self, "_" + op.replace("/", "_").replace("-", "_"))(user, msg))

    # reads -----------------------------------------------------------------------------------
    def _run_json(self, run: Any) -> Any:
        proto = run.to_proto()
        # The client sends artifacts here too, never to the store's own location.
        proto.info.artifact_uri = proxied_artifact_uri(run.info.run_id)
        return proto

    def _runs_get(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.protos.service_pb2 import GetRun

        rid = _run_id(msg)
        self.tracking.readable(user, rid)
        run = self.tracking.client().get_run(rid)
        return _json(GetRun.Response(run=self._run_json(run)))

    def _metrics_get_history(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.protos.service_pb2 import GetMetricHistory

        rid = _run_id(msg)
        self.tracking.readable(user, rid)
        history = self.tracking.client().get_metric_history(rid, msg.metric_key)
        return _json(GetMetricHistory.Response(metrics=[m.to_proto() for m in history]))

    def _visible_experiment(self, user: Principal, experiment_id: str) -> None:
        if user.kind != "run":
            return  # experiment names are shared; their runs are what is guarded
        with self.tracking.store.session() as s:
            own = s.scalar(
                select(t.TrackedRun.experiment_id).where(t.TrackedRun.run_id == user.run_id)
            )
        if own != experiment_id:
            raise Forbidden("a job run's token may only read its own run's experiment")

    def _experiments_get(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.protos.service_pb2 import GetExperiment

        self._visible_experiment(user, msg.experiment_id)
        exp = self.tracking.client().get_experiment(msg.experiment_id)
        return _json(GetExperiment.Response(experiment=exp.to_proto()))

    def _experiments_get_by_name(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.protos.service_pb2 import GetExperimentByName

        exp = self.tracking.client().get_experiment_by_name(msg.experiment_name)
        if exp is None:
            raise NotFound(f"no experiment named {msg.experiment_name!r}")
        self._visible_experiment(user, exp.experiment_id)
        return _json(GetExperimentByName.Response(experiment=exp.to_proto()))

    # writes ----------------------------------------------------------------------------------
    def _runs_log_metric(self, user: Principal, msg: Any) -> dict[str, Any]:
        rid = _run_id(msg)
        self.tracking.writable(user, rid)
        self.tracking.client().log_metric(
            rid, msg.key, msg.value, timestamp=msg.timestamp or None, step=msg.step or 0
        )
        return {}

    def _runs_log_parameter(self, user: Principal, msg: Any) -> dict[str, Any]:
        rid = _run_id(msg)
        self.tracking.writable(user, rid)
        self.tracking.client().log_param(rid, msg.key, msg.value)
        return {}

    def _runs_set_tag(self, user: Principal, msg: Any) -> dict[str, Any]:
        rid = _run_id(msg)
        self.tracking.writable(user, rid)
        check_user_tags([msg.key])
        self.tracking.client().set_tag(rid, msg.key, msg.value)
        return {}

    def _runs_delete_tag(self, user: Principal, msg: Any) -> dict[str, Any]:
        rid = _run_id(msg)
        self.tracking.writable(user, rid)
        check_user_tags([msg.key])
        self.tracking.client().delete_tag(rid, msg.key)
        return {}

    def _runs_log_batch(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.entities import Metric, Param, RunTag

        rid = _run_id(msg)
        self.tracking.writable(user, rid)
        check_user_tags([tag.key for tag in msg.tags])
        self.tracking.client().log_batch(
            rid,
            metrics=[Metric.from_proto(m) for m in msg.metrics],
            params=[Param.from_proto(p) for p in msg.params],
            tags=[RunTag.from_proto(g) for g in msg.tags],
        )
        return {}

    def _runs_log_inputs(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.entities import DatasetInput

        rid = _run_id(msg)
        self.tracking.writable(user, rid)
        datasets = [DatasetInput.from_proto(d) for d in msg.datasets]
        self.tracking.client().log_inputs(rid, datasets=datasets)
        return {}

    def _runs_outputs(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.entities import LoggedModelOutput

        rid = _run_id(msg)
        self.tracking.writable(user, rid)
        models = [LoggedModelOutput.from_proto(m) for m in msg.models]
        for m in models:
            self._model(user, m.model_id, write=True)  # its own models only
        self.tracking.client()._tracking_client.store.log_outputs(rid, models)
        return {}

    def _runs_update(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.entities import RunStatus
        from mlflow.protos.service_pb2 import UpdateRun

        rid = _run_id(msg)
        tr = self.tracking.writable(user, rid)
        c = self.tracking.client()
        status = RunStatus.to_string(msg.status) if msg.HasField("status") else None
        if tr.kind == "job":
            # A job's run is ended by the server, with the job run's real outcome: the
            # kernel's MLflow client marks it FINISHED at exit, failed or not (issue #3932).
            status = None
        if status is None:
            if msg.run_name:
                c.update_run(rid, name=msg.run_name)
        else:
            end = msg.end_time if msg.HasField("end_time") else None
            c.update_run(rid, status=status, name=msg.run_name or None)
            if status in ENDED:
                c.set_terminated(rid, status, end_time=end)
                self.tracking.mark_ended(rid, status)
        info = c.get_run(rid)
        proto = self._run_json(info)
        return _json(UpdateRun.Response(run_info=proto.info))

    # users' own runs -------------------------------------------------------------------------
    def _experiments_create(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.protos.service_pb2 import CreateExperiment

        if not msg.name:
            raise InvalidRequest("name is required")
        if self.tracking.client().get_experiment_by_name(msg.name) is not None:
            raise Conflict(f"experiment {msg.name!r} already exists")
        eid = self.tracking.experiment(msg.name)
        return _json(CreateExperiment.Response(experiment_id=eid))

    def _runs_create(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.protos.service_pb2 import CreateRun

        tags = {tag.key: tag.value for tag in msg.tags}
        check_user_tags(list(tags))
        exp = self.tracking.client().get_experiment(msg.experiment_id or "0")
        run = self.tracking.create_user_run(
            user,
            exp.name,
            run_name=msg.run_name or None,
            tags=tags,
            start_time=msg.start_time or None,
            notebook_path=tags.get("mlflow.source.name", ""),
        )
        return _json(CreateRun.Response(run=self._run_json(run)))

    def _runs_search(self, user: Principal, msg: Any) -> dict[str, Any]:
        from mlflow.protos.service_pb2 import SearchRuns

        runs = self.tracking.search_runs(
            user,
            list(msg.experiment_ids),
            msg.filter,
            list(msg.order_by),
            msg.max_results or 1000,
        )
        return _json(SearchRuns.Response(runs=[self._run_json(r) for r in runs]))

    # logged models (MLflow 3's log_model, autolog) -----------------------------------------
    def _store(self) -> Any:
        return self.tracking.client()._tracking_client.store

    def _model(self, user: Principal, model_id: str, *, write: bool = False) -> Any:
        """A logged model the caller may read (or write): one of a run they may."""
        with mlflow_errors():
            model = self._store().get_logged_model(model_id)
        if not model.source_run_id:
            if user.kind == "run" or not self.tracking._is_admin(user):
                raise NotFound(f"unknown logged model {model_id!r}")
            if write:
                raise Forbidden("a logged model without a run is not writable here")
            return model
        try:
            (self.tracking.writable if write else self.tracking.readable)(user, model.source_run_id)
        except NotFound:
            raise NotFound(f"unknown logged model {model_id!r}") from None
        return model

    @staticmethod
    def _model_json(model: Any) -> Any:
        proto = model.to_proto()
        # Its artifacts go through this endpoint too, never to the store's own location.
        proto.info.artifact_uri = f"mlflow-artifacts:/models/{model.model_id}/artifacts"
        return proto

    def logged_models(
        self, user: Principal, method: str, rest: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        """``logged-models[/...]``: create, get, finalize, tags, params, search, list."""
        from mlflow.entities import LoggedModelParameter, LoggedModelStatus, LoggedModelTag
        from mlflow.protos import service_pb2 as sp
        from mlflow.utils.proto_json_utils import parse_dict

        parts = [p for p in rest.strip("/").split("/") if p] if rest else []

        def parse(message: Any) -> Any:
            try:
                parse_dict(args, message)
            except Exception as e:
                raise InvalidRequest(f"invalid logged-models request: {e}") from None
            return message

        store = self._store()
        with mlflow_errors():
            if method == "POST" and not parts:
                msg = parse(sp.CreateLoggedModel())
                if not msg.source_run_id and user.kind == "run":
                    # A job's kernel logs into its job's run, active in MLflow's client or not.
                    msg.source_run_id = self.tracking.job_run_of(user.run_id or "") or ""
                if not msg.source_run_id:
                    raise Forbidden("log models inside a run (source_run_id is required here)")
                tr = self.tracking.writable(user, msg.source_run_id)
                model = store.create_logged_model(
                    tr.experiment_id if user.kind == "run" else msg.experiment_id,
                    name=msg.name or None,
                    source_run_id=msg.source_run_id,
                    tags=[LoggedModelTag.from_proto(x) for x in msg.tags],
                    params=[LoggedModelParameter.from_proto(x) for x in msg.params],
                    model_type=msg.model_type or None,
                )
                return _json(sp.CreateLoggedModel.Response(model=self._model_json(model)))
            if method == "POST" and parts == ["search"]:
                msg = parse(sp.SearchLoggedModels())
                found = store.search_logged_models(
                    list(msg.experiment_ids), msg.filter or None,
                    max_results=msg.max_results or None,
                )  # fmt: skip
                visible = []
                for m in found:
                    try:
                        visible.append(self._model(user, m.model_id))
                    except (NotFound, Forbidden):
                        continue
                return _json(sp.SearchLoggedModels.Response(
                    models=[self._model_json(m) for m in visible]))  # fmt: skip
            if not parts:
                raise NotFound("no such logged-models operation")
            model_id, tail = parts[0], parts[1:]
            if method == "GET" and not tail:
                model = self._model(user, model_id)
                return _json(sp.GetLoggedModel.Response(model=self._model_json(model)))
            if method == "GET" and tail == ["artifacts", "directories"]:
                model = self._model(user, model_id)
                files = self._model_repo(model).list_artifacts(
                    args.get("artifact_directory_path") or None
                )
                return {"files": [
                    {"path": f.path, "is_dir": f.is_dir, "file_size": f.file_size or 0}
                    for f in files
                ]}  # fmt: skip
            self._model(user, model_id, write=True)
            if method == "PATCH" and not tail:
                msg = parse(sp.FinalizeLoggedModel())
                model = store.finalize_logged_model(
                    model_id, LoggedModelStatus.from_int(msg.status)
                )
                return _json(sp.FinalizeLoggedModel.Response(model=self._model_json(model)))
            if method == "PATCH" and tail == ["tags"]:
                msg = parse(sp.SetLoggedModelTags())
                store.set_logged_model_tags(
                    model_id, [LoggedModelTag.from_proto(x) for x in msg.tags]
                )
                return {}
            if method == "DELETE" and len(tail) == 2 and tail[0] == "tags":
                store.delete_logged_model_tag(model_id, tail[1])
                return {}
            if method == "POST" and tail == ["params"]:
                msg = parse(sp.LogLoggedModelParamsRequest())
                store.log_logged_model_params(
                    model_id, [LoggedModelParameter.from_proto(x) for x in msg.params]
                )
                return {}
            if method == "DELETE" and not tail:
                store.delete_logged_model(model_id)
                return {}
        raise NotFound(f"no such logged-models operation: {method} {rest}")

    def _model_repo(self, model: Any) -> Any:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(model.artifact_location, tracking_uri=self.tracking.uri)

    # artifacts -------------------------------------------------------------------------------
    @staticmethod
    def _artifact_path(path: str) -> tuple[str, str, str]:
        """``runs|models/<id>/artifacts/<rel>`` -> (kind, id, rel); nothing can climb out."""
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] not in ("runs", "models") or parts[2] != "artifacts":
            raise NotFound(
                f"no such artifact path {path!r}: expected runs/<id>/artifacts/... or "
                "models/<id>/artifacts/..."
            )
        rel = "/".join(parts[3:])
        norm = posixpath.normpath(rel) if rel else ""
        if norm.startswith("..") or norm.startswith("/") or "\\" in rel or "\0" in rel:
            raise InvalidRequest(f"invalid artifact path {rel!r}")
        return parts[0], parts[1], "" if norm == "." else norm

    def upload(self, user: Principal, path: str, data: bytes) -> None:
        kind, rid, rel = self._artifact_path(path)
        model = self._model(user, rid, write=True) if kind == "models" else None
        if model is None:
            self.tracking.writable(user, rid)
        if not rel:
            raise InvalidRequest("an artifact upload names a file")
        local = temp_copy(data, posixpath.basename(rel))
        try:
            with mlflow_errors():
                directory = posixpath.dirname(rel) or None
                if model is not None:
                    self._model_repo(model).log_artifact(str(local), directory)
                else:
                    self.tracking.client().log_artifact(rid, str(local), directory)
        finally:
            shutil.rmtree(local.parent, ignore_errors=True)

    def download(self, user: Principal, path: str) -> bytes:
        kind, rid, rel = self._artifact_path(path)
        model = self._model(user, rid) if kind == "models" else None
        if model is None:
            self.tracking.readable(user, rid)
        if not rel:
            raise InvalidRequest("an artifact download names a file; list the run's artifacts")
        dst = Path(tempfile.mkdtemp(prefix="dataops-artifact-"))
        try:
            with mlflow_errors():
                if model is not None:
                    local = Path(self._model_repo(model).download_artifacts(rel, str(dst)))
                else:
                    local = Path(self.tracking.client().download_artifacts(rid, rel, str(dst)))
            if local.is_dir():
                raise InvalidRequest(f"{rel} is a directory; list it instead")
            return local.read_bytes()
        except OSError:
            raise NotFound(f"{rid} has no artifact {rel!r}") from None
        finally:
            shutil.rmtree(dst, ignore_errors=True)

    def list(self, user: Principal, path: str) -> dict[str, Any]:
        kind, rid, rel = self._artifact_path(path)
        model = self._model(user, rid) if kind == "models" else None
        if model is None:
            self.tracking.readable(user, rid)
        with mlflow_errors():
            if model is not None:
                infos = self._model_repo(model).list_artifacts(rel or None)
            else:
                infos = self.tracking.client().list_artifacts(rid, rel or None)
        files = []
        for f in infos:
            entry: dict[str, Any] = {"path": posixpath.basename(f.path), "is_dir": f.is_dir}
            if f.file_size is not None:
                entry["file_size"] = f.file_size
            files.append(entry)
        return {"files": files}
