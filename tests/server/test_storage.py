"""Run files on shared storage (c.DataOps.outputs_url, fsspec), read back by any server.

The storage is fsspec's real local file system (a ``file://`` URL), standing in for the
s3:// or gs:// bucket a team would share: the code path is fsspec's either way.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from jupyter_dataops.exceptions import Unavailable
from jupyter_dataops.models import RunRequest
from jupyter_dataops.platform import Platform
from jupyter_dataops.settings import DataOps
from tests.server.conftest import server_config
from tests.server.test_jobs import jobs, notebook, wait_for  # noqa: F401

pytestmark = pytest.mark.kernel


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    return tmp_path / "shared" / "runs"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jp_server_config(store_url: str, shared: Path) -> dict[str, Any]:
    return server_config(store_url, DataOps={"outputs_url": shared.as_uri()})


@pytest.fixture
def server(jobs):  # type: ignore[no-untyped-def]  # noqa: F811
    return jobs


async def test_outputs_are_shared_and_read_back_by_any_server(
    server, api, jp_fetch, jp_root_dir, shared, store_url, tmp_path
):
    code, run = await api(
        "POST",
        "runs",
        {
            "notebook_path": "nb/hello.ipynb",
            "parameters": {"name": "bo"},
            "output_formats": ["html"],
        },
    )
    assert code == 201, run
    # The input is on shared storage from submission on.
    assert (shared / run["id"] / "input.ipynb").read_bytes() == (
        jp_root_dir / ".dataops" / "runs" / run["id"] / "input.ipynb"
    ).read_bytes()
    done = await wait_for(api, run["id"])
    assert done["status"] == "succeeded", done
    local = jp_root_dir / ".dataops" / "runs" / run["id"]
    for name in ("output.ipynb", "output.html", "run.log"):
        assert (shared / run["id"] / name).read_bytes() == (local / name).read_bytes(), name
    notebook_bytes = (local / "output.ipynb").read_bytes()

    # This server loses its disk (a culled, re-created pod): outputs come from storage.
    shutil.rmtree(local)
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "notebook")
    assert resp.body == notebook_bytes
    resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "log")
    assert "hello bo" in resp.body.decode()

    # Another server of the same store, with its own root, serves them too.
    other = tmp_path / "other-root"
    other.mkdir()
    p = Platform(DataOps(db_url=store_url, outputs_url=shared.as_uri(), local_user="ada"), other)
    try:
        path = p.jobs.output_path(p.principal("ada"), run["id"], "html")
        assert path.is_relative_to(other) and "hello bo" in path.read_text()
    finally:
        p.close()


def test_unwritable_storage_refuses_the_submission_and_writes_nothing(tmp_path, store_url):
    root = tmp_path / "ws"
    notebook(root / "nb" / "plain.ipynb", "x = 0", "print(x)")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the storage folder should be")
    url = (blocker / "runs").as_uri()
    p = Platform(DataOps(db_url=store_url, outputs_url=url, local_user="ada"), root)
    try:
        with pytest.raises(Unavailable) as e:
            p.jobs.submit(p.principal("ada"), RunRequest(notebook_path="nb/plain.ipynb"), "api")
        assert url in e.value.message
        assert p.jobs.list_runs(p.principal("ada")) == []
        assert not any((root / ".dataops" / "runs").iterdir())
    finally:
        p.close()
