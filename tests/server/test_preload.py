"""c.DataOps.kernel_preload: modules imported once by the fork server, for every kernel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import server_config
from tests.server.test_jobs import jobs, notebook, wait_for  # noqa: F401

pytestmark = pytest.mark.kernel

PROBE = (
    "import sys, json\n"
    "preloaded = 'numpy' in sys.modules\n"
    "import numpy\n"
    "print('PROBE', json.dumps({'preloaded': preloaded, 'random': numpy.random.random()}))"
)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jp_server_config(store_url: str) -> dict[str, Any]:
    # A module that does not exist is reported by the fork server and skipped.
    return server_config(
        store_url, DataOps={"kernel_preload": ["numpy.random", "no_such_module_x"]}
    )


async def test_preloaded_modules_are_there_and_random_state_is_not_shared(
    jobs,  # noqa: F811
    api,
    jp_fetch,
    jp_root_dir,
):
    notebook(jp_root_dir / "nb" / "probe.ipynb", "x = 0", PROBE)
    seen = []
    for _ in range(2):
        code, run = await api("POST", "runs", {"notebook_path": "nb/probe.ipynb"})
        assert code == 201, run
        done = await wait_for(api, run["id"])
        assert done["status"] == "succeeded", done
        resp = await jp_fetch("dataops", "api", "v1", "runs", run["id"], "outputs", "log")
        seen.append(json.loads(resp.body.decode().split("PROBE ", 1)[1].splitlines()[0]))
    assert all(s["preloaded"] for s in seen)
    # Forked from one parent, the kernels would draw the same numbers without a re-seed.
    assert seen[0]["random"] != seen[1]["random"]
