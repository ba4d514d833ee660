"""The Dask executor: runs go to a ``distributed`` cluster as tasks.

The local executor's dispatch loop stays the only dispatcher; a claimed run whose
``executor`` is ``"dask"`` is executed here instead of on a warm runner. The task
(:func:`jupyter_dataops.jobs.runner.run_on_worker`) gets the job and the input notebook as
bytes (workers need not share the server's disk), runs papermill in a fresh kernel in a
temporary directory on the worker, and returns the output notebook, the log and the html;
the server writes them into the run's directory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..service import OUTPUT_FILES, RunSpec

log = logging.getLogger(__name__)
PROGRESS_TOPIC = "dataops-progress"  # one topic for all runs: the scheduler keeps a log per topic
Result = tuple[str, dict[str, Any] | None, dict[str, str] | None]


class DaskBackend:
    """Submits runs to the scheduler at ``address``; one asynchronous client, made lazily."""

    def __init__(self, address: str, connect_timeout: float = 30.0) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._lock = asyncio.Lock()
        self._futures: dict[str, Any] = {}
        self._cancelled: set[str] = set()
        self._progress: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}

    async def client(self) -> Any:
        if not self.address:
            raise RuntimeError(
                "this run's executor is 'dask' but c.DataOps.dask_scheduler_address is not set"
            )
        async with self._lock:
            if self._client is None:
                from distributed import Client

                self._client = await Client(
                    self.address, asynchronous=True, timeout=self.connect_timeout
                )
                self._client.subscribe_topic(PROGRESS_TOPIC, self._on_progress)
            return self._client

    async def _on_progress(self, event: tuple[float, Any]) -> None:
        """A worker's report that a cell started (``Worker.log_event``), as it happens."""
        msg = event[1]
        handler = self._progress.get(str(msg.get("run_id"))) if isinstance(msg, dict) else None
        if handler is not None:
            # (the scheduler sets "worker" to the worker's address: the name travels as "on")
            data = {k: v for k, v in msg.items() if k not in ("run_id", "worker", "on")}
            data["worker"] = msg.get("on")
            try:
                await handler(data)
            except Exception:
                log.debug("DataOps: recording Dask progress failed", exc_info=True)

    async def close(self) -> None:
        for run_id in list(self._futures):
            await self.cancel(run_id)
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.close()
            except Exception:
                log.debug("DataOps: closing the Dask client failed", exc_info=True)

    async def run(
        self, spec: RunSpec, on_progress: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    ) -> Result:
        """Execute ``spec`` on the cluster; raises ``asyncio.TimeoutError`` past its timeout.

        Progress arrives as cells start, through the scheduler's event log (a worker's
        ``log_event``, the client's ``subscribe_topic``), and once more at the end.
        """
        from ..runner import run_on_worker

        client = await self.client()
        run_dir = Path(spec.job["output_path"]).parent
        notebook = Path(spec.job["input_path"]).read_bytes()
        event = f"dataops-cancel-{spec.run_id}"
        future = client.submit(
            run_on_worker,
            spec.job,
            notebook,
            spec.kernel_name,
            spec.timeout_s,
            event,
            key=f"dataops-run-{spec.run_id}-{uuid.uuid4().hex[:8]}",
            pure=False,
            retries=0,  # DataOps retries per the job's policy, never Dask
        )
        self._futures[spec.run_id] = future
        if on_progress is not None:
            self._progress[spec.run_id] = on_progress
        try:
            if spec.run_id in self._cancelled:  # cancelled while connecting
                await self._kill(spec.run_id, future, event)
            result = await asyncio.wait_for(future.result(), spec.timeout_s)
        except asyncio.TimeoutError:
            await self._kill(spec.run_id, future, event)
            raise
        except asyncio.CancelledError:  # the server is stopping
            await self._kill(spec.run_id, future, event)
            raise
        except concurrent.futures.CancelledError:  # the Dask future was cancelled
            self._cancelled.add(spec.run_id)
        finally:
            self._futures.pop(spec.run_id, None)
            self._progress.pop(spec.run_id, None)
            cancelled = spec.run_id in self._cancelled
            self._cancelled.discard(spec.run_id)
        if cancelled:
            return "cancelled", {"reason": "cancelled", "message": "cancelled while running"}, None
        if on_progress is not None and result.get("progress"):
            await on_progress({**result["progress"], "worker": result.get("worker")})
        return await asyncio.to_thread(self._save, run_dir, result)

    @staticmethod
    def _save(run_dir: Path, result: dict[str, Any]) -> Result:
        run_dir.mkdir(parents=True, exist_ok=True)
        outputs: dict[str, str] = {}
        for name in ("notebook", "html", "pdf"):
            if result.get(name) is not None:
                path = run_dir / OUTPUT_FILES[name]
                path.write_bytes(result[name])
                outputs[name] = str(path)
        spool = result.get("spool") or {}
        if spool:
            (run_dir / "spool").mkdir(exist_ok=True)
            for name, data in spool.items():
                (run_dir / "spool" / Path(name).name).write_bytes(data)
        log_path = run_dir / OUTPUT_FILES["log"]
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(result.get("log") or "")
        outputs["log"] = str(log_path)
        status = result["status"]
        return status, result.get("error"), (outputs if status == "succeeded" else None)

    async def _kill(self, run_id: str, future: Any, event: str) -> None:
        """Cancel the task and tell its watchdog to kill the kernel (a running task's thread
        cannot be stopped by Dask itself)."""
        try:
            client = await self.client()
            from distributed import Event

            for res in (Event(event, client=client).set(), future.cancel()):
                if inspect.isawaitable(res):
                    await res
        except Exception:
            log.warning("DataOps: could not cancel Dask task of run %s", run_id, exc_info=True)

    async def cancel(self, run_id: str) -> bool:
        """Cancel a run this backend executes (or is about to submit)."""
        self._cancelled.add(run_id)
        future = self._futures.get(run_id)
        if future is not None:
            await self._kill(run_id, future, f"dataops-cancel-{run_id}")
        return True
