"""The catalog service: list, describe, register, refresh, and plan governed reads.

Blocking code (store, DuckDB, source databases): call it through the platform's pools.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..config import ColumnMeta, CsvSource, DatasetSpec, ParquetSource, Source
from ..exceptions import (
    BadGateway,
    Conflict,
    DataOpsError,
    Forbidden,
    InvalidRequest,
    NotFound,
)  # fmt: skip
from ..governance import audit
from ..governance.compiler import GovernedSelect, compile_read
from ..governance.filters import parse_user_filter
from ..governance.policy import DatasetFacts, Decision, decide
from ..identity import Principal
from ..models import (
    AccessInfo,
    ColumnInfo,
    DatasetDetail,
    DatasetSummary,
    ReadRequest,
    RegisterDatasetRequest,
    VersionInfo,
)  # fmt: skip
from ..paths import fixed_prefix, workspace_path
from ..store import Store, redact_url
from ..store import tables as t
from .sources import FileSource, Snapshot, SqlTableSource, columns_of, open_source

_SOURCE = TypeAdapter(Source)
log = logging.getLogger(__name__)


_SQLSTATE = re.compile(r"SQLSTATE:? ?([0-9A-Z]{5})")
_PG_DATA_EXCEPTION = re.compile(
    r"ERROR:\s+(division by zero|\w+ out of range|invalid input syntax|numeric field overflow"
    r"|value too long|invalid regular expression)"
)


def engine_error(e: BaseException, dataset: str = "") -> DataOpsError:
    """An engine failure as a user error: the one path for every read (pull and preview).

    Engine messages can quote values, even of rows or columns the user may not see, so they
    reach neither the user nor the server log: both get the error's type only.
    """
    if isinstance(e, DataOpsError):
        return e
    name = type(e).__name__
    # Drivers give the SQLSTATE as an attribute, or (through Arrow streams) only in their text;
    # only the code is kept from it.
    sqlstate = str(getattr(e, "sqlstate", "") or "")
    if not sqlstate and (m := _SQLSTATE.search(str(e))):
        sqlstate = m.group(1)
    if not sqlstate and _PG_DATA_EXCEPTION.search(str(e)):
        sqlstate = "22000"  # libpq's text through an Arrow stream carries no code
    log.warning(
        "governed read of %r failed in the engine: %s%s",
        dataset,
        name,
        f" (SQLSTATE {sqlstate})" if sqlstate else "",
    )
    # SQL's class 22 is "data exception" (division by zero, overflow, bad cast): the read's
    # own expression failed on some row, not the source.
    if sqlstate.startswith("22") or name in (
        "ConversionException",
        "BinderException",
        "InvalidInputException",
        "OutOfRangeException",
        "NotImplementedException",
        "ParserException",
    ):
        return InvalidRequest(
            f"the filter could not be evaluated ({name}): check that it "
            "compares columns with values of their type"
        )
    return BadGateway(f"the source failed while being read ({name})")


@dataclass
class Plan:
    """A read the policy allowed, ready to run."""

    dataset: str
    version: str
    sql: GovernedSelect  # what ``source.execute`` runs
    source: FileSource | SqlTableSource
    columns: list[str]
    decision: Decision
    masked: list[str]
    filter: str | None
    started: float
    kinds: dict[str, str] = field(default_factory=dict)  # the columns read: their kinds

    def open(self) -> pa.RecordBatchReader:
        """Run the statement; engine errors become user errors without engine text."""
        try:
            reader = self.source.execute(self.sql)
        except Exception as e:
            raise engine_error(e, self.dataset) from None

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except Exception as e:
                raise engine_error(e, self.dataset) from None

        return pa.RecordBatchReader.from_batches(reader.schema, batches())


class Catalog:
    def __init__(
        self,
        store: Store,
        config_loader: Any,
        root: Path,
        salt: str,
        source_env: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.config = config_loader
        self.root = root
        self.salt = salt
        self.source_env = tuple(source_env)  # c.DataOps.source_url_env
        from .fingerprints import FingerprintCache

        self.digests = FingerprintCache(store)
        self._synced_generation = -1
        self._sync_lock = threading.Lock()

    # dataops.yaml -> store -------------------------------------------------------------------
    def sync(self) -> None:
        """Mirror the datasets of dataops.yaml into the store when the file changed."""
        cfg, gen = self.config.snapshot()
        if gen == self._synced_generation:
            return
        with self._sync_lock:
            if gen == self._synced_generation:
                return
            with self.store.session() as s:
                rows = {d.name: d for d in s.scalars(select(t.Dataset))}
                for name, spec in cfg.datasets.items():
                    row = rows.get(name)
                    if row is None:
                        row = t.Dataset(name=name, owner=spec.owner)
                        s.add(row)
                    elif row.origin == "api" and row.retired_at is None:
                        continue  # registered through the API first: the API owner keeps it
                    row.origin = "config"
                    row.retired_at = None
                    self._apply(row, spec)
                for name, row in rows.items():
                    if row.origin == "config" and name not in cfg.datasets and not row.retired_at:
                        row.retired_at = t.utcnow()
            self._synced_generation = gen

    @staticmethod
    def _apply(row: t.Dataset, spec: DatasetSpec) -> None:
        row.title, row.description, row.owner = spec.title, spec.description, spec.owner
        row.tags = list(spec.tags)
        row.source = spec.source.model_dump()
        row.columns = {k: v.model_dump() for k, v in spec.columns.items()}

    def _open(self, spec: Source) -> FileSource | SqlTableSource:
        return open_source(spec, self.root, self.source_env, self.digests)

    # lookups ------------------------------------------------------------------------------------
    def _row(self, s: Any, name: str) -> t.Dataset:
        row = s.scalar(
            select(t.Dataset).where(t.Dataset.name == name, t.Dataset.retired_at.is_(None))
        )
        if row is None:
            names = list(s.scalars(select(t.Dataset.name).where(t.Dataset.retired_at.is_(None))))
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise NotFound(
                f"unknown dataset {name!r}{hint}", details={"dataset": name, "close_matches": close}
            )
        return row

    def _spec(self, row: t.Dataset) -> DatasetSpec:
        return DatasetSpec(
            title=row.title,
            description=row.description,
            owner=row.owner,
            tags=row.tags,
            source=_SOURCE.validate_python(row.source),
            columns={k: ColumnMeta(**v) for k, v in row.columns.items()},
        )

    def _latest(self, s: Any, row: t.Dataset) -> t.DatasetVersion | None:
        return s.scalar(
            select(t.DatasetVersion)
            .where(t.DatasetVersion.dataset_id == row.id)
            .order_by(t.DatasetVersion.id.desc())
            .limit(1)
        )

    def _record_version(self, dataset_id: str, snap: Snapshot) -> t.DatasetVersion:
        def existing(s: Any) -> t.DatasetVersion | None:
            return s.scalar(
                select(t.DatasetVersion).where(
                    t.DatasetVersion.dataset_id == dataset_id,
                    t.DatasetVersion.fingerprint == snap.fingerprint,
                )
            )

        try:
            with self.store.session() as s:
                found = existing(s)
                if found is not None:
                    return found
                v = t.DatasetVersion(
                    dataset_id=dataset_id,
                    fingerprint=snap.fingerprint,
                    row_count=snap.row_count,
                    schema=snap.schema,
                )
                s.add(v)
                return v
        except IntegrityError:
            # Another reader (a request, a pull, another server) recorded it meanwhile.
            with self.store.session() as s:
                found = existing(s)
            if found is None:
                raise
            return found

    def _current(self, row: t.Dataset, source: FileSource | SqlTableSource) -> t.DatasetVersion:
        """The version a read made now sees; observes and records it when new."""
        with self.store.session() as s:
            latest = self._latest(s, row)
        if isinstance(source, FileSource) and latest is not None:
            if source.fingerprint() == latest.fingerprint:
                return latest  # unchanged files: no need to scan them again
        return self._record_version(row.id, source.snapshot())

    def observe(self) -> int:
        """Look at every file dataset now and record the versions that changed (blocking).

        The server calls this in the background (c.DataOps.observe_interval), so a file's
        content is hashed when it changes, not when someone pulls it. Returns how many files
        were hashed."""
        self.sync()
        before = self.digests.hashed
        with self.store.session() as s:
            rows = list(s.scalars(select(t.Dataset).where(t.Dataset.retired_at.is_(None))))
        for row in rows:
            try:
                source = self._open(self._spec(row).source)
                if isinstance(source, FileSource) and source.needs_hashing():
                    self._current(row, source)
            except DataOpsError:
                continue  # unreachable now; a read says so
            except Exception:
                log.warning("DataOps: observing dataset %s failed", row.name, exc_info=True)
        return self.digests.hashed - before

    def _facts(self, row: t.Dataset, version: t.DatasetVersion | None) -> DatasetFacts:
        cols = [c["name"] for c in version.schema] if version else None
        meta = {k: ColumnMeta(**v) for k, v in row.columns.items()}
        return DatasetFacts(row.name, row.tags, cols, meta, row.owner)

    def _access(self, decision: Decision) -> AccessInfo:
        return AccessInfo(
            allowed=decision.allowed,
            reason=decision.reason,
            row_filter=decision.row_filter is not None,
            masked_columns=sorted(decision.masks),
        )

    def _summary(self, row: t.Dataset, decision: Decision) -> dict[str, Any]:
        return dict(
            name=row.name,
            title=row.title,
            description=row.description,
            owner=row.owner,
            tags=row.tags,
            origin=row.origin,
            source_type=row.source.get("type", "?"),
            access=self._access(decision),
        )

    # public -------------------------------------------------------------------------------------
    def list(
        self, user: Principal, q: str | None = None, tag: str | None = None
    ) -> list[DatasetSummary]:
        self.sync()
        cfg = self.config.get()
        needle = (q or "").strip().lower()
        out = []
        with self.store.session() as s:
            rows = list(
                s.scalars(
                    select(t.Dataset).where(t.Dataset.retired_at.is_(None)).order_by(t.Dataset.name)
                )
            )
            latest = {r.id: self._latest(s, r) for r in rows}
        for row in rows:
            if latest[row.id] is None:  # never observed: look once, so access is accurate
                try:
                    latest[row.id] = self._current(row, self._open(self._spec(row).source))
                except DataOpsError:
                    pass  # unreachable now; listed without its schema
        for row in rows:
            if tag and tag not in row.tags:
                continue
            if needle:
                seen = latest[row.id]
                cols = seen.schema if seen is not None else []
                text = " ".join(
                    [
                        row.name,
                        row.title,
                        row.description,
                        *row.tags,
                        *(c["name"] for c in cols),
                        *(f"{k} {v.get('description', '')}" for k, v in row.columns.items()),
                    ]
                ).lower()
                if needle not in text:
                    continue
            decision = decide(cfg, user, self._facts(row, latest[row.id]))
            out.append(DatasetSummary(**self._summary(row, decision)))
        return out

    def describe(self, user: Principal, name: str, refresh: bool = True) -> DatasetDetail:
        self.sync()
        with self.store.session() as s:
            row = self._row(s, name)
        spec = self._spec(row)
        if refresh:
            self._current(row, self._open(spec.source))
        with self.store.session() as s:
            versions = list(
                s.scalars(
                    select(t.DatasetVersion)
                    .where(t.DatasetVersion.dataset_id == row.id)
                    .order_by(t.DatasetVersion.id.desc())
                    .limit(20)
                )
            )
        latest = versions[0] if versions else None
        decision = decide(self.config.get(), user, self._facts(row, latest))
        columns = []
        for c in latest.schema if latest else []:
            meta = spec.columns.get(c["name"], ColumnMeta())
            mask = decision.masks.get(c["name"])
            columns.append(
                ColumnInfo(
                    name=c["name"],
                    type=c["type"],
                    kind=c["kind"],
                    description=meta.description,
                    classification=meta.classification,
                    masked=mask is not None,
                    mask=mask.function if mask else None,
                )
            )
        source = dict(row.source)
        if "url" in source:
            source["url"] = redact_url(source["url"]) if "://" in source["url"] else "***"
        return DatasetDetail(
            **self._summary(row, decision),
            columns=columns,
            source=source,
            versions=[
                VersionInfo(
                    fingerprint=v.fingerprint, row_count=v.row_count, observed_at=v.created_at
                )
                for v in versions
            ],
        )

    def refresh(self, user: Principal, name: str) -> VersionInfo:
        self.sync()
        admins = self.config.get().admins
        with self.store.session() as s:
            row = self._row(s, name)
        if user.name != row.owner and user.name not in admins:
            raise Forbidden(f"only the owner ({row.owner}) or an admin may refresh {name!r}")
        v = self._record_version(row.id, self._open(self._spec(row).source).snapshot())
        return VersionInfo(
            fingerprint=v.fingerprint, row_count=v.row_count, observed_at=v.created_at
        )

    def register(self, user: Principal, req: RegisterDatasetRequest) -> DatasetDetail:
        self.sync()
        try:
            source = _SOURCE.validate_python(req.source)
            columns = {k: ColumnMeta(**v) for k, v in req.columns.items()}
        except (ValidationError, TypeError) as e:
            raise InvalidRequest(f"invalid dataset source or columns: {e}") from None
        if isinstance(source, ParquetSource | CsvSource):
            workspace_path(self.root, fixed_prefix(source.path), "file sources")
        elif not self.config.get().may_register_sql(user.name, user.groups):
            # Before anything connects: a SQL source reaches the network with the URL's (or
            # the server's) credentials.
            raise Forbidden(
                f"{user.name} may not register SQL sources: that is for admins and the users "
                f"and groups of sql_source_registrars in {self.config.path}",
                details={"field": "source.type"},
            )
        spec = DatasetSpec(
            title=req.title,
            description=req.description,
            owner=user.name,
            tags=req.tags,
            source=source,
            columns=columns,
        )
        src = self._open(spec.source)
        snap = src.snapshot()  # proves the source is readable before anything is written
        unknown = sorted(set(columns) - {c["name"] for c in snap.schema})
        if unknown:
            raise InvalidRequest(f"columns not in the source: {', '.join(unknown)}")
        with self.store.session() as s:
            if s.scalar(select(t.Dataset).where(t.Dataset.name == req.name)) is not None:
                raise Conflict(f"dataset {req.name!r} already exists")
            row = t.Dataset(name=req.name, owner=user.name, origin="api")
            self._apply(row, spec)
            s.add(row)
            s.flush()
            s.add(
                t.DatasetVersion(
                    dataset_id=row.id,
                    fingerprint=snap.fingerprint,
                    row_count=snap.row_count,
                    schema=snap.schema,
                )
            )
        return self.describe(user, req.name, refresh=False)

    # governed reads ----------------------------------------------------------------------------
    def plan(self, user: Principal, name: str, req: ReadRequest, action: str) -> Plan:
        """Decide and compile a read; denials and invalid requests are audited here."""
        started = time.perf_counter()
        self.sync()
        filter_text = req.where
        version = None
        try:
            with self.store.session() as s:
                row = self._row(s, name)
            spec = self._spec(row)
            source = self._open(spec.source)
            current = self._current(row, source)
            version = current.fingerprint
            facts = self._facts(row, current)
            decision = decide(self.config.get(), user, facts)
            if not decision.allowed:
                raise Forbidden(decision.reason, details={"dataset": name, "user": user.name})
            known = list(facts.columns or [])
            columns = list(req.columns) if req.columns is not None else known
            if not columns:
                raise InvalidRequest("columns is empty; omit it to read every column")
            unknown = [c for c in columns if c not in known]
            if unknown:
                close = {c: difflib.get_close_matches(c, known, n=3) for c in unknown}
                hints = "; ".join(
                    f"{c!r}" + (f" (did you mean {', '.join(m)}?)" if m else "")
                    for c, m in close.items()
                )
                raise InvalidRequest(
                    f"unknown column {hints} in dataset {name!r}",
                    details={"unknown_columns": unknown, "close_matches": close},
                )
            if len(set(columns)) != len(columns):
                raise InvalidRequest("columns lists a column twice")
            kinds = {c["name"]: c["kind"] for c in current.schema}
            where = parse_user_filter(req.where, kinds) if req.where else None
            sql = compile_read(
                source.relation(),
                columns_of(current.schema),
                decision,
                columns,
                where,
                req.limit,
                source.dialect,
                self.salt,
            )
        except DataOpsError as e:
            denied = isinstance(e, Forbidden)
            audit.record(self.store, audit.AuditEntry(
                user=user, action=action, dataset=name,
                decision="denied" if denied else "error", reason=e.message, version=version,
                columns=req.columns or [], filter=filter_text,
                duration_ms=(time.perf_counter() - started) * 1000))  # fmt: skip
            raise
        masked = sorted(c for c in columns if c in decision.masks)
        read_kinds = {c: kinds[c] for c in columns}
        return Plan(
            name, version, sql, source, columns, decision, masked, filter_text, started, read_kinds
        )

    def finish(
        self, user: Principal, plan: Plan, action: str, rows: int | None, error: str | None = None
    ) -> None:
        audit.record(self.store, audit.AuditEntry(
            user=user, action=action, dataset=plan.dataset,
            decision="error" if error else "allowed",
            reason=error or plan.decision.reason, version=plan.version, columns=plan.columns,
            filter=plan.filter, row_count=rows, masked=plan.masked,
            duration_ms=(time.perf_counter() - plan.started) * 1000))  # fmt: skip
