"""Reading tracked runs back: experiments, searches, metric histories, lineage.

A user sees the runs they own (their jobs' and notebooks'); admins see all. Blocking: call
through the platform's pools.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, or_, select

from ..exceptions import InvalidRequest, NotFound
from ..identity import Principal
from ..models import (
    DatasetCheck,
    DatasetRead,
    ExperimentInfo,
    ExperimentList,
    LineageResponse,
    MetricHistory,
    MetricPoint,
    ReproduceResponse,
    RunSearchResult,
    RunSummary,
    TrackedRunDetail,
)  # fmt: skip
from ..store import tables as t
from .rest import mlflow_errors
from .service import Tracking

# An AND between clauses, outside quoted strings and backquoted names.
_SEPARATOR = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|`[^`]*`|\s+and\s+", re.IGNORECASE)


def check_filter(text: str) -> None:
    """A 400 naming the clause and the position (1-based) where an MLflow filter is wrong."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    clauses, start = [], 0
    for m in _SEPARATOR.finditer(text):
        if m.group(0)[0] not in "'\"`":
            clauses.append((start, text[start : m.start()]))
            start = m.end()
    clauses.append((start, text[start:]))
    for offset, clause in clauses:
        lead = len(clause) - len(clause.lstrip())
        try:
            SearchUtils.parse_search_filter(clause)
        except MlflowException as e:
            position = offset + lead + 1
            raise InvalidRequest(
                f"filter: {e.message} (at position {position}, in {clause.strip()!r}); write "
                "clauses such as metrics.rmse < 1 AND params.alpha = '0.1', joined by AND",
                details={"field": "filter", "position": position, "clause": clause.strip()},
            ) from None


def check_order_by(items: list[str]) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    for i, item in enumerate(items):
        try:
            SearchUtils.parse_order_by_for_search_runs(item)
        except MlflowException as e:
            raise InvalidRequest(
                f"order_by: {e.message} (item {i + 1}, {item!r}); e.g. metrics.rmse ASC",
                details={"field": "order_by", "position": i + 1, "clause": item},
            ) from None


def _ms(v: int | None) -> datetime | None:
    return datetime.fromtimestamp(v / 1000, timezone.utc) if v else None


class Comparisons:
    def __init__(self, tracking: Tracking) -> None:
        self.tracking = tracking
        self.store = tracking.store

    def _mine(self, user: Principal) -> Any:
        q = select(t.TrackedRun)
        return q if self.tracking._is_admin(user) else q.where(t.TrackedRun.owner == user.name)

    def experiments(self, user: Principal) -> ExperimentList:
        with self.store.session() as s:
            q = select(
                t.TrackedRun.experiment_id,
                func.max(t.TrackedRun.experiment_name),
                func.count(),
                func.max(t.TrackedRun.created_at),
            ).group_by(t.TrackedRun.experiment_id)
            if not self.tracking._is_admin(user):
                q = q.where(t.TrackedRun.owner == user.name)
            rows = s.execute(q).all()
        exps = [ExperimentInfo(id=r[0], name=r[1], runs=r[2], last_run_at=r[3]) for r in rows]
        oldest = datetime.min.replace(tzinfo=timezone.utc)
        exps.sort(key=lambda e: e.last_run_at or oldest, reverse=True)
        return ExperimentList(experiments=exps, mlflow_ui_url=self.tracking.ui_url or None)

    def _experiment(self, user: Principal, experiment_id: str) -> ExperimentInfo:
        for e in self.experiments(user).experiments:
            if e.id == experiment_id or e.name == experiment_id:
                return e
        raise NotFound(
            f"unknown experiment {experiment_id!r}", details={"experiment": experiment_id}
        )

    def summary(self, run: Any, tr: t.TrackedRun | None) -> RunSummary:
        tags = dict(run.data.tags)
        return RunSummary(
            mlflow_run_id=run.info.run_id,
            name=run.info.run_name or "",
            status=run.info.status,
            start_time=_ms(run.info.start_time),
            end_time=_ms(run.info.end_time),
            params=dict(run.data.params),
            metrics={k: float(v) for k, v in run.data.metrics.items()},
            tags={k: v for k, v in tags.items() if not k.startswith("mlflow.log-model")},
            owner=tr.owner if tr else tags.get("dataops.owner", ""),
            run_id=tr.run_id if tr else None,
            notebook_path=tr.notebook_path if tr else tags.get("mlflow.source.name", ""),
        )

    def runs(
        self,
        user: Principal,
        experiment_id: str,
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int = 1000,
    ) -> RunSearchResult:
        exp = self._experiment(user, experiment_id)
        if filter_string.strip():
            check_filter(filter_string)
        check_order_by(order_by or [])
        found = self.tracking.search_runs(user, [exp.id], filter_string, order_by, max_results)
        ids = [r.info.run_id for r in found]
        with self.store.session() as s:
            tracked = {
                tr.mlflow_run_id: tr
                for tr in s.scalars(select(t.TrackedRun).where(t.TrackedRun.mlflow_run_id.in_(ids)))
            }
        visible = [r for r in found if r.info.run_id in tracked]
        return RunSearchResult(
            experiment=exp, runs=[self.summary(r, tracked[r.info.run_id]) for r in visible]
        )

    def history(self, user: Principal, mlflow_run_id: str, key: str) -> MetricHistory:
        self.tracking.readable(user, mlflow_run_id)
        with mlflow_errors():
            points = self.tracking.client().get_metric_history(mlflow_run_id, key)
        if not points:
            run = self.tracking.client().get_run(mlflow_run_id)
            if key not in run.data.metrics:
                raise NotFound(
                    f"run {mlflow_run_id} has no metric {key!r}; it has: "
                    f"{', '.join(sorted(run.data.metrics)) or 'none'}",
                    details={"metric": key},
                )
        return MetricHistory(
            mlflow_run_id=mlflow_run_id,
            key=key,
            points=[MetricPoint(step=p.step, value=p.value, timestamp=p.timestamp) for p in points],
        )

    # lineage ---------------------------------------------------------------------------------
    @staticmethod
    def _rows(s: Any, mlflow_run_id: str) -> list[t.LineageRead]:
        q = select(t.LineageRead).where(t.LineageRead.mlflow_run_id == mlflow_run_id)
        return list(s.scalars(q.order_by(t.LineageRead.id)))

    def _reads(self, s: Any, rows: list[t.LineageRead]) -> list[DatasetRead]:
        names = {r.dataset for r in rows}
        current: dict[str, str] = {}
        for name in names:
            ds = s.scalar(select(t.Dataset).where(t.Dataset.name == name))
            if ds is None:
                continue
            v = s.scalar(
                select(t.DatasetVersion.fingerprint)
                .where(t.DatasetVersion.dataset_id == ds.id)
                .order_by(t.DatasetVersion.id.desc())
                .limit(1)
            )
            if v:
                current[name] = v
        exps = {
            tr.mlflow_run_id: tr.experiment_name
            for tr in s.scalars(
                select(t.TrackedRun).where(
                    t.TrackedRun.mlflow_run_id.in_({r.mlflow_run_id for r in rows})
                )
            )
        }
        return [
            DatasetRead(
                dataset=r.dataset, version=r.version, current_version=current.get(r.dataset),
                is_current=current.get(r.dataset) == r.version, columns=r.columns,
                filter=r.filter, row_count=r.row_count, at=r.at, mlflow_run_id=r.mlflow_run_id,
                run_id=r.run_id, experiment=exps.get(r.mlflow_run_id, ""), owner=r.owner)
            for r in rows
        ]  # fmt: skip

    def resolve(self, user: Principal, ref: str) -> t.TrackedRun:
        """A tracked run by its MLflow run id or its job run's id."""
        with self.store.session() as s:
            tr = s.scalar(
                select(t.TrackedRun).where(
                    or_(t.TrackedRun.mlflow_run_id == ref, t.TrackedRun.run_id == ref)
                )
            )
            if tr is None:
                raise NotFound(f"unknown run {ref!r}", details={"run": ref})
        self.tracking.check_read(user, tr)
        return tr

    def lineage(self, user: Principal, dataset: str | None, run: str | None) -> LineageResponse:
        if (dataset is None) == (run is None):
            raise InvalidRequest("give exactly one of ?dataset= and ?run=")
        with self.store.session() as s:
            if run is not None:
                tr = self.resolve(user, run)
                reads = self._reads(s, self._rows(s, tr.mlflow_run_id))
                return LineageResponse(
                    dataset=None, run=self.tracking.info(tr), reads=reads,
                    outputs=self.artifacts(tr.mlflow_run_id),
                )  # fmt: skip
            if s.scalar(select(t.Dataset.id).where(t.Dataset.name == dataset)) is None:
                raise NotFound(f"unknown dataset {dataset!r}", details={"dataset": dataset})
            q = select(t.LineageRead).where(t.LineageRead.dataset == dataset)
            if not self.tracking._is_admin(user):
                q = q.where(t.LineageRead.owner == user.name)
            rows = list(s.scalars(q.order_by(t.LineageRead.id.desc()).limit(500)))
            return LineageResponse(
                dataset=dataset, run=None, reads=self._reads(s, rows), outputs=[]
            )

    def artifacts(self, mlflow_run_id: str, path: str | None = None) -> list[str]:
        out: list[str] = []
        try:
            for f in self.tracking.client().list_artifacts(mlflow_run_id, path):
                if f.is_dir:
                    out.extend(self.artifacts(mlflow_run_id, f.path))
                else:
                    out.append(f.path)
        except Exception:
            return out
        return sorted(out)

    def detail(self, user: Principal, ref: str) -> TrackedRunDetail:
        tr = self.resolve(user, ref)
        with mlflow_errors():
            run = self.tracking.client().get_run(tr.mlflow_run_id)
        with self.store.session() as s:
            reads = self._reads(s, self._rows(s, tr.mlflow_run_id))
        return TrackedRunDetail(
            info=self.tracking.info(tr),
            summary=self.summary(run, tr),
            datasets=reads,
            artifacts=self.artifacts(tr.mlflow_run_id),
        )

    # reproduce ------------------------------------------------------------------------------
    def datasets_now(self, user: Principal, catalog: Any, mlflow_run_id: str) -> list[DatasetCheck]:
        """Each dataset version a run read, against the version observed now."""
        from ..exceptions import DataOpsError

        seen: dict[tuple[str, str], DatasetCheck] = {}
        for read in self.tracking.reads_of(mlflow_run_id):
            if (read.dataset, read.version) in seen:
                continue
            try:
                versions = catalog.describe(user, read.dataset, refresh=True).versions
                current = versions[0].fingerprint if versions else None
            except DataOpsError:
                current = None  # gone, or unreachable now: not the version it read
            seen[(read.dataset, read.version)] = DatasetCheck(
                dataset=read.dataset, version=read.version, current_version=current,
                is_current=current == read.version,
            )  # fmt: skip
        return list(seen.values())

    def reproduce(self, user: Principal, jobs: Any, catalog: Any, ref: str) -> ReproduceResponse:
        """Check the run's dataset versions, then re-run its notebook snapshot with its
        parameters (``jupyter dataops reproduce`` and the Experiments tab's button)."""
        tr = self.resolve(user, ref)
        if tr.run_id is None:
            raise InvalidRequest(
                f"{ref} is a notebook's run (dops.run), not a job run: there is no snapshot "
                "to re-run"
            )
        checks = self.datasets_now(user, catalog, tr.mlflow_run_id)
        run = jobs.reproduce(user, tr.run_id)
        return ReproduceResponse(
            run=run, reproduces=tr.run_id, datasets=checks,
            changed=[c.dataset for c in checks if not c.is_current],
        )  # fmt: skip
