"""Sources: where a dataset's data lives, how to read it, and its current version.

File sources (Parquet, CSV) are read by DuckDB. SQL sources are read by the database itself:
the governed statement is rendered in the source's dialect, so masks and filters run there
and only allowed rows travel. PostgreSQL is read through ADBC straight into Arrow; other
SQLAlchemy databases through SQLAlchemy.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from ..config import CsvSource, ParquetSource, SqlSource
from ..exceptions import BadGateway, Forbidden, InvalidRequest
from ..governance.compiler import (
    BOOLEAN,
    DECIMAL,
    FLOAT,
    INTEGER,
    OTHER,
    STRING,
    TEMPORAL,
    Column,
    GovernedSelect,
)  # fmt: skip
from ..governance.filters import SQLGLOT_DIALECTS, check_source_query
from ..paths import GLOB_CHARS, STATE_DIR, in_state_dir

if TYPE_CHECKING:
    from .fingerprints import FingerprintCache

BATCH_ROWS = 256 * 1024
# The governed relation of one PostgreSQL read (a session's temporary schema is its own).
BARRIER_VIEW = exp.table_("dops_governed", db="pg_temp", quoted=True)
# SQLSTATEs of a session that may not create a temporary view: read-only, no TEMP privilege.
NO_TEMP_OBJECTS = ("25006", "42501")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def kind_of(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return STRING
    if pa.types.is_integer(t):
        return INTEGER
    if pa.types.is_floating(t):
        return FLOAT
    if pa.types.is_decimal(t):
        return DECIMAL
    if pa.types.is_boolean(t):
        return BOOLEAN
    if pa.types.is_temporal(t):
        return TEMPORAL
    return OTHER


@dataclass(frozen=True)
class Snapshot:
    """What a refresh observes."""

    fingerprint: str
    row_count: int | None
    schema: list[dict[str, Any]]  # [{"name", "type", "kind"}]


def schema_of(arrow_schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": str(f.type), "kind": kind_of(f.type)} for f in arrow_schema]


def duckdb_connect() -> Any:
    """An in-memory DuckDB that never downloads extensions."""
    import duckdb

    return duckdb.connect(config={
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "extension_directory": os.path.join(tempfile.gettempdir(), "dataops-no-extensions"),
    })  # fmt: skip


class FileSource:
    """Parquet or CSV files under the workspace root, read by DuckDB."""

    dialect = "duckdb"

    def __init__(
        self, spec: ParquetSource | CsvSource, root: Path, digests: FingerprintCache | None = None
    ) -> None:
        self.spec = spec
        self.root = root
        self.digests = digests  # content digests cached by file identity
        path = Path(spec.path)
        self.path = path if path.is_absolute() else (root / path)

    def files(self) -> list[Path]:
        """The files the source names, none of them in the workspace's state directory
        (a directory or a glob may reach into it, through a symlink too)."""
        p = self.path
        if p.is_dir():
            pattern = "*.parquet" if isinstance(self.spec, ParquetSource) else "*.csv*"
            found = sorted(x for x in p.rglob(pattern) if x.is_file())
        elif any(ch in str(p) for ch in GLOB_CHARS):
            found = sorted(Path(x) for x in glob.glob(str(p), recursive=True) if os.path.isfile(x))
        else:
            found = [p] if p.exists() else []
        kept = [f for f in found if not in_state_dir(self.root, f)]
        if found and not kept:
            raise Forbidden(
                f"{self.spec.path}: every file it names is in {STATE_DIR}/, the platform's "
                "state directory, which no dataset may read",
                details={"path": self.spec.path, "state_dir": STATE_DIR},
            )
        if not kept:
            raise BadGateway(
                f"source unreachable: no files at {self.spec.path}",
                details={"path": self.spec.path},
            )
        return kept

    def relation(self) -> exp.Expression:
        # DuckDB reads exactly the files checked above: its own globbing would enter hidden
        # directories, .dataops/ included.
        files = exp.Array(expressions=[exp.Literal.string(str(f)) for f in self.files()])
        if isinstance(self.spec, ParquetSource):
            opts = [
                exp.EQ(
                    this=exp.column("hive_partitioning"),
                    expression=exp.Boolean(this=self.spec.hive_partitioning),
                )
            ]
            fn = exp.Anonymous(this="read_parquet", expressions=[files, *opts])
        else:
            opts = [
                exp.EQ(
                    this=exp.column("delim"), expression=exp.Literal.string(self.spec.delimiter)
                ),
                exp.EQ(this=exp.column("header"), expression=exp.Boolean(this=self.spec.header)),
            ]
            fn = exp.Anonymous(this="read_csv", expressions=[files, *opts])
        return exp.Table(this=fn)

    def fingerprint(self) -> str:
        """The version of the files' content: each file's sha256 (cached while its identity
        holds, see fingerprints.py) and its name; never its size or mtime alone."""
        from .fingerprints import file_digest

        h = hashlib.sha256()
        for f in self.files():
            digest = self.digests.digest(f) if self.digests is not None else file_digest(f)
            name = f.relative_to(self.root) if f.is_relative_to(self.root) else f
            h.update(f"{name}\0{digest}\n".encode())
        return h.hexdigest()[:16]

    def needs_hashing(self) -> bool:
        """Whether some file changed since it was last hashed."""
        if self.digests is None:
            return True
        return not all(self.digests.known(f) for f in self.files())

    def snapshot(self) -> Snapshot:
        fp = self.fingerprint()
        con = duckdb_connect()
        try:
            rel = self.relation().sql(dialect="duckdb")
            arrow_schema = con.sql(f"SELECT * FROM {rel} LIMIT 0").to_arrow_table().schema
            rows = con.execute(f"SELECT count(*) FROM {rel}").fetchone()
        except Exception as e:
            raise BadGateway(
                f"source unreachable: cannot read {self.spec.path}: {type(e).__name__}"
            ) from e
        finally:
            con.close()
        return Snapshot(fp, int(rows[0]) if rows else None, schema_of(arrow_schema))

    def execute(self, statement: GovernedSelect) -> pa.RecordBatchReader:
        con = duckdb_connect()
        try:
            reader = con.sql(statement.sql()).to_arrow_reader(BATCH_ROWS)
        except Exception:
            con.close()
            raise
        return _closing_reader(reader, con)


def _closing_reader(reader: pa.RecordBatchReader, resource: Any) -> pa.RecordBatchReader:
    """A reader that closes ``resource`` once drained (or garbage-collected)."""

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            resource.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def expand_env(url: str, allowed: Sequence[str] = ()) -> str:
    """``${NAME}`` replaced from the server's environment, for names the server's settings
    allow (``c.DataOps.source_url_env``): whoever writes a source URL must not be able to
    read the rest of the server's environment through it (its tokens, its keys)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in allowed:
            raise InvalidRequest(
                f"source URL uses ${{{name}}}, which is not in c.DataOps.source_url_env "
                f"(the environment variables source URLs may use: "
                f"{', '.join(allowed) or 'none'})",
                details={"field": "source.url", "variable": name},
            )
        if name not in os.environ:
            raise InvalidRequest(
                f"source URL uses ${{{name}}}, which is not set",
                details={"field": "source.url", "variable": name},
            )
        return os.environ[name]

    return _ENV.sub(sub, url)


class SqlTableSource:
    """A table or query of a SQL database.

    PostgreSQL runs the whole governed statement itself (masks, row filter, the user's filter
    and the limit), read through ADBC straight into Arrow. Other SQLAlchemy databases lack
    the functions masks need (SQLite has no md5), so their rows are read into the server and
    DuckDB governs them there, before anything leaves the server.
    """

    GOVERNED_IN_DUCKDB = "source_rows"

    def __init__(self, spec: SqlSource, env: Sequence[str] = ()) -> None:
        import sqlalchemy as sa

        self.spec = spec
        try:
            self.url = sa.make_url(expand_env(spec.url, env))
        except sa.exc.ArgumentError as e:
            raise InvalidRequest(
                f"invalid source URL: {e}", details={"field": "source.url"}
            ) from None
        self.backend = self.url.get_backend_name()
        self.source_dialect = SQLGLOT_DIALECTS.get(self.backend, self.backend)
        # The dialect the governed statement is compiled for.
        self.dialect = "postgres" if self.backend == "postgresql" else "duckdb"
        # What runs on the source is the checked tree, rendered again: never the text as given.
        self.query = (
            check_source_query(spec.query, self.source_dialect, "source.query")
            if spec.query is not None
            else None
        )
        self.version_query = (
            check_source_query(spec.version_query, self.source_dialect, "source.version_query")
            if spec.version_query
            else None
        )

    def native_relation(self) -> str:
        """The table or query, in the source's own SQL."""
        if self.query is None:
            return exp.to_table(self.spec.table or "", dialect=self.source_dialect).sql(
                dialect=self.source_dialect
            )
        sub = exp.Subquery(
            this=self.query.copy(), alias=exp.TableAlias(this=exp.to_identifier("source"))
        )
        return sub.sql(dialect=self.source_dialect)

    def relation(self) -> exp.Expression:
        """What the governed statement reads from."""
        if self.dialect == "postgres":
            return (
                sqlglot.parse_one(f"SELECT * FROM {self.native_relation()}", read="postgres")
                .args["from_"]
                .this
            )
        return exp.to_table(self.GOVERNED_IN_DUCKDB)

    def _redacted(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def _unreachable(self, e: Exception) -> BadGateway:
        # Engine messages can quote data; keep them in the server log only.
        return BadGateway(
            f"source unreachable: {self._redacted()} ({type(e).__name__})",
            details={"source": self._redacted()},
        )

    # connections ------------------------------------------------------------------------------
    def _adbc_uri(self) -> str:
        from urllib.parse import quote, urlencode

        u = self.url.set(drivername="postgresql", query={})
        uri = u.render_as_string(hide_password=False)
        # libpq decodes %20, not the "+" SQLAlchemy writes for a space (options=-c ...).
        query = urlencode(dict(self.url.query), doseq=True, quote_via=quote)
        return f"{uri}?{query}" if query else uri

    def _fetch(self, sql: str) -> pa.RecordBatchReader:
        if self.backend == "postgresql":
            import adbc_driver_postgresql.dbapi as pg

            conn = pg.connect(self._adbc_uri())
            try:
                cur = conn.cursor()
                cur.execute(sql)
                reader = cur.fetch_record_batch()
            except Exception:
                conn.close()
                raise

            class _Both:
                def close(self) -> None:
                    cur.close()
                    conn.close()

            return _closing_reader(reader, _Both())
        import sqlalchemy as sa

        engine = sa.create_engine(self.url)
        conn = engine.connect()
        try:
            result = conn.exec_driver_sql(sql)
            names = list(result.keys())
            first = result.fetchmany(BATCH_ROWS)
        except Exception:
            conn.close()
            engine.dispose()
            raise
        first_batch = pa.RecordBatch.from_pylist([dict(zip(names, r, strict=True)) for r in first])
        if first_batch.num_columns == 0:
            first_batch = pa.RecordBatch.from_pydict({n: pa.array([], pa.null()) for n in names})
        schema = first_batch.schema

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield first_batch
                while rows := result.fetchmany(BATCH_ROWS):
                    yield pa.RecordBatch.from_pylist(
                        [dict(zip(names, r, strict=True)) for r in rows], schema=schema
                    )
            finally:
                conn.close()
                engine.dispose()

        return pa.RecordBatchReader.from_batches(schema, batches())

    def _native(self, sql: str) -> pa.RecordBatchReader:
        try:
            return self._fetch(sql)
        except Exception as e:
            raise self._unreachable(e) from e

    def _fetch_governed(self, statement: GovernedSelect) -> pa.RecordBatchReader:
        """PostgreSQL: the governed relation as a ``security_barrier`` view of this session.

        The planner then evaluates the user's filter on the view's rows only, except for
        conditions built of leakproof operators (comparisons), which still reach indexes.
        Where the session may not create temporary objects (a read-only standby, no TEMP
        privilege), the statement is fenced with OFFSET 0 instead: as safe, without indexes.
        """
        import adbc_driver_postgresql.dbapi as pg

        conn = pg.connect(self._adbc_uri())
        try:
            cur = conn.cursor()
            try:
                cur.execute(
                    f"CREATE TEMPORARY VIEW {BARRIER_VIEW.sql(dialect='postgres')} "
                    f"WITH (security_barrier) AS {statement.governed_sql()}"
                )
                sql = statement.read_sql(BARRIER_VIEW)
            except pg.Error as e:
                if getattr(e, "sqlstate", None) not in NO_TEMP_OBJECTS:
                    raise
                conn.rollback()
                sql = statement.fenced_sql()
            cur.execute(sql)
            reader = cur.fetch_record_batch()
        except Exception:
            conn.close()
            raise

        class _Both:
            def close(self) -> None:
                cur.close()
                conn.close()  # the view ends with the session

        return _closing_reader(reader, _Both())

    def execute(self, statement: GovernedSelect) -> pa.RecordBatchReader:
        """Run a governed read compiled for :attr:`dialect`."""
        if self.dialect == "postgres":
            try:
                return self._fetch_governed(statement)
            except Exception as e:
                raise self._unreachable(e) from e
        rows = self._native(f"SELECT * FROM {self.native_relation()}")
        con = duckdb_connect()
        try:
            con.register(self.GOVERNED_IN_DUCKDB, rows)
            reader = con.sql(statement.sql()).to_arrow_reader(BATCH_ROWS)
        except Exception:
            con.close()
            raise
        return _closing_reader(reader, con)

    def _scalar_row(self, sql: str) -> list[Any]:
        table = self._native(sql).read_all()
        return [table.column(i)[0].as_py() for i in range(table.num_columns)] if len(table) else []

    def snapshot(self) -> Snapshot:
        rel = self.native_relation()
        # A few rows, so drivers that type by value (SQLAlchemy) report real types.
        table = self._native(f"SELECT * FROM {rel} LIMIT 100").read_all()
        schema = schema_of(table.schema)
        (count,) = self._scalar_row(f"SELECT COUNT(*) FROM {rel}") or [None]
        if self.version_query is not None:
            marker: Any = self._scalar_row(self.version_query.sql(dialect=self.source_dialect))
        elif self.backend == "postgresql" and self.spec.table:
            # Insert/update/delete counters change with every committed write.
            marker = self._scalar_row(
                "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_all_tables "
                f"WHERE relid = to_regclass({exp.Literal.string(self.spec.table).sql()})"
            )
        else:
            marker = []
        fp = hashlib.sha256(json.dumps([count, marker, schema], default=str).encode())
        return Snapshot(fp.hexdigest()[:16], int(count) if count is not None else None, schema)


def open_source(
    spec: ParquetSource | CsvSource | SqlSource,
    root: Path,
    env: Sequence[str] = (),
    digests: FingerprintCache | None = None,
) -> FileSource | SqlTableSource:
    """The source of a spec; ``env``: the environment variables SQL URLs may use."""
    if isinstance(spec, SqlSource):
        return SqlTableSource(spec, env)
    return FileSource(spec, root, digests)


def columns_of(schema: list[dict[str, Any]]) -> list[Column]:
    return [Column(c["name"], c["kind"]) for c in schema]
