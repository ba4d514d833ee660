"""The catalog: list, describe, register, refresh, preview and pull (Arrow IPC stream)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pyarrow as pa
from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..catalog.service import engine_error
from ..exceptions import InvalidRequest
from ..models import (
    DatasetDetail,
    DatasetList,
    PreviewResponse,
    ReadRequest,
    RegisterDatasetRequest,
    VersionInfo,
)  # fmt: skip
from .base import DataOpsHandler, Operation

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PREVIEW_MAX = 1000
_EOS = object()


class DatasetsHandler(DataOpsHandler):
    path = "datasets"
    operations = {
        "get": Operation(
            "Search and browse the catalog",
            DatasetList,
            params=(
                ("q", "string", "text in name, title, description, columns"),
                ("tag", "string", "only datasets with this tag"),
            ),
            run_token=True,
        ),
        "post": Operation(
            "Register a dataset you own", DatasetDetail, request=RegisterDatasetRequest
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        q, tag = self.get_query_argument("q", None), self.get_query_argument("tag", None)
        items = await self.platform.store.run(self.platform.catalog.list, self.principal(), q, tag)
        self.write_model(DatasetList(datasets=items))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        req = self.parse_body(RegisterDatasetRequest)
        detail = await self.platform.run_query(
            self.platform.catalog.register, self.principal(), req
        )
        self.write_model(detail, status=201)


class DatasetHandler(DataOpsHandler):
    path = "datasets/(?P<name>[^/]+)"
    operations = {
        "get": Operation(
            "A dataset: schema, versions, owner, and your access", DatasetDetail, run_token=True
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        detail = await self.platform.run_query(
            self.platform.catalog.describe, self.principal(), name
        )
        self.write_model(detail)


class RefreshHandler(DataOpsHandler):
    path = "datasets/(?P<name>[^/]+)/refresh"
    operations = {
        "post": Operation(
            "Observe the source now and record its version (owner, admins)", VersionInfo
        ),
    }

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        v = await self.platform.run_query(self.platform.catalog.refresh, self.principal(), name)
        self.write_model(v)


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, int | float | str | bool) or v is None:
        return v
    return str(v)


class PreviewHandler(DataOpsHandler):
    path = "datasets/(?P<name>[^/]+)/preview"
    operations = {
        "get": Operation(
            "The first rows you may see, as JSON",
            PreviewResponse,
            params=(
                ("limit", "integer", f"rows, at most {PREVIEW_MAX}; default 20"),
                ("where", "string", "a SQL condition on the columns"),
            ),
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        try:
            limit = int(self.get_query_argument("limit", "20"))
        except ValueError:
            raise InvalidRequest("limit must be an integer") from None
        if not 0 <= limit <= PREVIEW_MAX:
            raise InvalidRequest(f"limit must be between 0 and {PREVIEW_MAX}")
        req = ReadRequest(where=self.get_query_argument("where", None), limit=limit)
        user, catalog = self.principal(), self.platform.catalog
        plan = await self.platform.run_query(catalog.plan, user, name, req, "preview")

        def run() -> pa.Table:
            try:
                table = plan.open().read_all()
            except Exception as e:
                catalog.finish(user, plan, "preview", None, error=type(e).__name__)
                raise
            catalog.finish(user, plan, "preview", table.num_rows)
            return table

        table = await self.platform.run_query(run)
        detail = await self.platform.run_query(catalog.describe, user, name, False)
        rows = [{k: _json_safe(v) for k, v in r.items()} for r in table.to_pylist()]
        self.write_model(
            PreviewResponse(
                dataset=name,
                version=plan.version,
                columns=detail.columns,
                rows=rows,
                masked_columns=plan.masked,
            )
        )


class _Chunks:
    """A write-only file for pyarrow that hands out what was written since the last take."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class PullHandler(DataOpsHandler):
    path = "datasets/(?P<name>[^/]+)/pull"
    operations = {
        "post": Operation(
            f"Read governed data as an Arrow IPC stream ({ARROW_STREAM}); the response "
            "headers X-DataOps-Version and X-DataOps-Masked say what you got",
            None,
            request=ReadRequest,
            run_token=True,
        ),
    }

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        req = self.parse_body(ReadRequest)
        user, catalog = self.principal(), self.platform.catalog
        tracking = self.platform.tracking
        tracked_run = self.request.headers.get("X-DataOps-MLflow-Run") or None
        plan = await self.platform.run_query(catalog.plan, user, name, req, "read")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=4)
        cancelled = False

        def put(item: Any) -> None:
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

        def produce() -> None:
            rows = 0
            try:
                reader = plan.open()
                sink = _Chunks()
                with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), reader.schema) as writer:
                    # Headers go out with the first batch, not the schema: an engine that
                    # fails on its first rows (PostgreSQL evaluates as it streams) is then a
                    # JSON error like any other, not a broken stream.
                    for batch in reader:
                        if cancelled:
                            raise ConnectionAbortedError("client went away")
                        writer.write_batch(batch)
                        rows += batch.num_rows
                        put(sink.take())
                put(sink.take())  # end-of-stream marker (with the schema, if no rows)
                catalog.finish(user, plan, "read", rows)
                # Lineage, before the kernel gets the end of the stream: a run's inputs are
                # recorded by the time its pull returns.
                tracking.record_read(user, plan, rows, tracked_run)
                put(_EOS)
            except BaseException as e:  # the handler turns it into a JSON error or an abort
                catalog.finish(user, plan, "read", rows, error=type(e).__name__)
                put(engine_error(e, plan.dataset))

        task = self.platform.start_query(produce)
        first = await queue.get()
        if isinstance(first, BaseException):
            await task
            raise first
        self.set_header("Content-Type", ARROW_STREAM)
        self.set_header("X-DataOps-Dataset", plan.dataset)
        self.set_header("X-DataOps-Version", plan.version)
        self.set_header("X-DataOps-Masked", json.dumps(plan.masked))
        self.set_header("Cache-Control", "no-store")
        self.write(first)
        try:
            await self.flush()
            while True:
                item = await queue.get()
                if item is _EOS:
                    break
                if isinstance(item, BaseException):
                    # Headers are out: break the stream so the client sees it is incomplete.
                    self.log.error(
                        "pull of %s failed mid-stream: %s", name, getattr(item, "message", "")
                    )
                    if self.request.connection is not None:
                        self.request.connection.close()  # type: ignore[attr-defined]
                    return
                self.write(item)
                await self.flush()
        except StreamClosedError:
            cancelled = True
            # The producer always ends with _EOS or an exception: drain until then.
            while (item := await queue.get()) is not _EOS and not isinstance(item, BaseException):
                pass
            await task
            return
        await task
        self.finish(set_content_type=ARROW_STREAM)
