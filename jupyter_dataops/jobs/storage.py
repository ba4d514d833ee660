"""Run files on shared storage: an fsspec URL next to each server's local run directory.

Every server keeps a run's files under ``<root>/.dataops/runs/<run_id>/``. With
``c.DataOps.outputs_url`` set (``s3://bucket/dataops/runs``, ``gs://...``,
``file:///mnt/shared/runs`` ...), the input notebook is also written there when the run is
submitted and every output when it ends, so any server sharing the metadata store can execute
the run and serve its outputs, whichever server it was submitted to. The local directory stays
the working copy: the runner writes there, and it is read first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class OutputStorage:
    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as e:  # unknown protocol, its package missing
            raise ValueError(f"c.DataOps.outputs_url {url!r} cannot be used: {e}") from None
        self.base = self.base.rstrip("/")

    def location(self, run_id: str, filename: str = "") -> str:
        return f"{self.url}/{run_id}/{filename}"

    def _path(self, run_id: str, filename: str) -> str:
        return f"{self.base}/{run_id}/{filename}"

    def put(self, run_id: str, files: dict[str, Path]) -> None:
        """Copy ``{filename: local path}`` to the run's folder (raises on failure)."""
        self.fs.makedirs(f"{self.base}/{run_id}", exist_ok=True)
        for filename, local in files.items():
            self.fs.put_file(str(local), self._path(run_id, filename))

    def fetch(self, run_id: str, filename: str, local: Path) -> bool:
        """Download one file of the run to ``local``; False when storage does not have it."""
        try:
            if not self.fs.exists(self._path(run_id, filename)):
                return False
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(local.name + ".part")
            self.fs.get_file(self._path(run_id, filename), str(tmp))
            tmp.replace(local)  # never a half-written file under the real name
            return True
        except OSError:
            log.warning("DataOps: could not fetch %s of run %s", filename, run_id, exc_info=True)
            return False

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "protocol": self.fs.protocol}
