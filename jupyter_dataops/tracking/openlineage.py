"""OpenLineage run events of job runs (START, then COMPLETE / FAIL / ABORT), through
openlineage-python to a file (by default) or an HTTP endpoint (Marquez-compatible).

Events are sent by one background thread, in order: an HTTP endpoint that is slow or down
never delays a run, and an event that cannot be sent is logged, never raised. Inputs are the
dataset versions the run read (name, version, the columns read: never a value); the output is
the run's executed notebook.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__

log = logging.getLogger(__name__)
PRODUCER = f"https://github.com/jupyter-dataops/jupyter-dataops/tree/{__version__}"
EVENT_TYPES = {
    "running": "START",
    "succeeded": "COMPLETE",
    "failed": "FAIL",
    "timed_out": "FAIL",
    "cancelled": "ABORT",
}
DATASET_NAMESPACE = "dataops"


class LineageEvents:
    def __init__(self, namespace: str, file: Path, url: str = "") -> None:
        self.namespace = namespace
        self.file = file
        self.url = url
        self._client: Any = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataops-openlineage")

    @property
    def target(self) -> str:
        return self.url or str(self.file)

    def client(self) -> Any:
        if self._client is None:
            from openlineage.client import OpenLineageClient

            if self.url:
                from openlineage.client.transport.http import HttpConfig, HttpTransport

                transport: Any = HttpTransport(HttpConfig(url=self.url))
            else:
                from openlineage.client.transport.file import FileConfig, FileTransport

                self.file.parent.mkdir(parents=True, exist_ok=True)
                transport = FileTransport(FileConfig(log_file_path=str(self.file), append=True))
            self._client = OpenLineageClient(transport=transport)
        return self._client

    def event(
        self,
        status: str,
        run_id: str,
        job_name: str,
        *,
        at: datetime | None = None,
        reads: list[Any] = (),  # type: ignore[assignment]
        output: str | None = None,
        error: str | None = None,
    ) -> Any:
        """The RunEvent of job run ``run_id`` reaching ``status`` (an OpenLineage object)."""
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent
        from openlineage.client.event_v2 import RunState as EventType
        from openlineage.client.generated.dataset_version_dataset import (
            DatasetVersionDatasetFacet,
        )
        from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
        from openlineage.client.generated.schema_dataset import (
            SchemaDatasetFacet,
            SchemaDatasetFacetFields,
        )

        inputs = []
        seen: set[tuple[str, str]] = set()
        for r in reads:
            if (r.dataset, r.version) in seen:
                continue
            seen.add((r.dataset, r.version))
            inputs.append(
                InputDataset(
                    namespace=DATASET_NAMESPACE,
                    name=r.dataset,
                    facets={
                        "version": DatasetVersionDatasetFacet(datasetVersion=r.version),
                        "schema": SchemaDatasetFacet(
                            fields=[SchemaDatasetFacetFields(name=c) for c in r.columns]
                        ),
                    },
                )
            )
        run_facets: dict[str, Any] = {}
        if error:
            run_facets["errorMessage"] = ErrorMessageRunFacet(
                message=error[:1000], programmingLanguage="python"
            )
        when = (at or datetime.now(timezone.utc)).isoformat()
        return RunEvent(
            eventType=getattr(EventType, EVENT_TYPES[status]),
            eventTime=when,
            run=Run(runId=str(uuid.UUID(hex=run_id)), facets=run_facets),
            job=Job(namespace=self.namespace, name=job_name),
            producer=PRODUCER,
            inputs=inputs,
            outputs=[OutputDataset(namespace=DATASET_NAMESPACE, name=output)] if output else [],
        )

    def emit(self, status: str, run_id: str, job_name: str, **kw: Any) -> None:
        """Queue the event; it is built and sent by the background thread."""

        def send() -> None:
            try:
                self.client().emit(self.event(status, run_id, job_name, **kw))
            except Exception:
                log.warning("DataOps: OpenLineage event of run %s not sent to %s", run_id,
                            self.target, exc_info=True)  # fmt: skip

        self._pool.submit(send)

    def close(self) -> None:
        self._pool.shutdown(wait=True)  # what was queued is sent
