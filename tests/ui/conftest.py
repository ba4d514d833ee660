"""Fixtures for the UI tests: Debian Chromium, a real `jupyter lab` and Playwright.

The tests drive the system Chromium (/usr/bin/chromium) with Playwright's sync API; they never
run `playwright install`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
SERVER_START_TIMEOUT = 60.0

VALID_CONFIG = """\
groups:
  analysts:
    members: [root]
"""

# A small governed catalog: root (an analyst) may read the EU customers with emails masked,
# the reference regions in full, and nothing of `secret`.
CATALOG_CONFIG = """\
groups:
  analysts:
    members: [root]
datasets:
  customers:
    title: Customers
    description: One row per customer account, from the CRM export.
    owner: ada
    tags: [crm, pii]
    source: {type: parquet, path: data/customers.parquet}
    columns:
      id: {description: Account id}
      email: {description: Contact address, classification: [pii]}
      region: {description: Sales region}
  secret:
    title: Customer credit scores
    description: Scores from the credit bureau; restricted.
    owner: ada
    tags: [finance]
    source: {type: parquet, path: data/scores.parquet}
  regions:
    title: Sales regions
    owner: ada
    tags: [reference]
    source: {type: parquet, path: data/regions.parquet}
grants:
  - description: Analysts see the EU customers
    groups: [analysts]
    datasets: [customers]
    row_filter: region = 'EU'
  - groups: [analysts]
    datasets: [regions]
masks:
  - description: Personal data stays masked
    classifications: [pii]
    function: partial
"""

CUSTOMERS: dict[str, list[Any]] = {
    "id": [1, 2, 3, 4, 5, 6],
    "email": [
        "ann.lee@example.com",
        "bob.ray@example.org",
        "cyd.kim@example.net",
        "dan.fox@example.com",
        "eve.ng@example.org",
        "fay.oh@example.net",
    ],
    "region": ["EU", "US", "EU", "APAC", "EU", "US"],
}


def write_catalog_workspace(root: Path) -> None:
    """Write CATALOG_CONFIG and its Parquet files into a workspace root."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = root / "data"
    data.mkdir(exist_ok=True)
    customers = pa.table(
        {
            "id": pa.array(CUSTOMERS["id"], pa.int64()),
            "email": pa.array(CUSTOMERS["email"], pa.string()),
            "region": pa.array(CUSTOMERS["region"], pa.string()),
        }
    )
    pq.write_table(customers, data / "customers.parquet")
    pq.write_table(
        pa.table({"id": pa.array([1, 2], pa.int64()), "score": [712, 655]}),
        data / "scores.parquet",
    )
    pq.write_table(
        pa.table({"region": ["EU", "US", "APAC"], "name": ["Europe", "Americas", "Asia"]}),
        data / "regions.parquet",
    )
    (root / "dataops.yaml").write_text(CATALOG_CONFIG)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Lets fixtures see in their teardown whether the test failed (to print the server log).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


# -- Chromium ---------------------------------------------------------------------------------
def _install_chromium() -> str:
    """apt-get the Debian Chromium; returns the output for the failure message."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not root, cannot apt-get install"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    out = []
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium", "chromium-driver"],
    ):
        try:
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=900, check=False
            )
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` timed out"
        out.append(f"$ {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        if proc.returncode != 0:
            break
    return "\n".join(out)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """The system Chromium, installed with apt-get if missing. Never skipped."""
    if not CHROMIUM.exists():
        log = _install_chromium()
        if not CHROMIUM.exists():
            where = "in CI" if os.environ.get("CI") else "locally"
            pytest.fail(
                f"{CHROMIUM} is missing and could not be installed ({where}). Install it with "
                "`apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium "
                f"chromium-driver` (as root). Installer output:\n{log}",
                pytrace=False,
            )
    return CHROMIUM


# pytest-jupyter (loaded by tests/conftest.py) has autouse fixtures that close "the" asyncio
# loop after every test. Between calls, Playwright's sync API leaves its own loop marked as
# running in this thread, so closing it fails. These tests run jupyter lab out of process and
# need neither fixture, so they opt out by overriding both.
@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    yield None


# Package scope: Playwright is stopped before tests outside tests/ui run, so its loop is never
# seen as running by their asyncio code.
@pytest.fixture(scope="package")
def browser(chromium_path: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:  # pragma: no cover - depends on the environment
        pytest.fail(f"playwright is not installed (pip install -e '.[test]'): {e}", pytrace=False)
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
    except Exception:
        pw.stop()
        raise
    yield browser
    browser.close()
    pw.stop()


# -- a real jupyter lab -----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    base_url: str
    token: str
    root: Path
    log_path: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    @property
    def config_file(self) -> Path:
        return self.root / "dataops.yaml"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def get_json(self, path: str, timeout: float = 10.0) -> Any:
        """GET a server path, authenticated with the token, and decode the JSON answer."""
        req = urllib.request.Request(
            f"{self.base_url}/{path.lstrip('/')}",
            headers={"Authorization": f"token {self.token}", "Accept": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode())

    def send_json(self, method: str, path: str, body: Any, timeout: float = 30.0) -> Any:
        """POST/PATCH/PUT a JSON body to a server path, authenticated with the token."""
        req = urllib.request.Request(
            f"{self.base_url}/{path.lstrip('/')}",
            data=json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode())

    def status(self) -> dict[str, Any]:
        return self.get_json("dataops/api/v1/status")

    def get_error(self, path: str, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
        """GET a path that must fail; its status and JSON body (`{"error": {...}}`)."""
        try:
            self.get_json(path, timeout)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())
        raise AssertionError(f"GET {path} succeeded")


def _wait_until_up(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {server.proc.returncode}")
        try:
            server.get_json("api/status", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as e:
            last_error = e
            time.sleep(0.25)
    raise RuntimeError(
        f"jupyter lab did not answer within {SERVER_START_TIMEOUT:.0f} s: {last_error}"
    )


@pytest.fixture
def lab_workspace(tmp_path: Path) -> Path:
    """The lab's root dir, with a dataops.yaml making root an analyst.

    Override it (requesting it by the same name) to seed more before the server starts.
    """
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "dataops.yaml").write_text(VALID_CONFIG)
    return root


@pytest.fixture
def lab_server(
    lab_workspace: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[LabServer]:
    """A real `jupyter lab` on a free port, serving `lab_workspace`."""
    root = lab_workspace
    config_dir = tmp_path / "jupyter_config"
    runtime_dir = tmp_path / "jupyter_runtime"
    # No "news" toast over the screenshots; this page config lives only in the temp config dir.
    (config_dir / "labconfig").mkdir(parents=True)
    (config_dir / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # These tests start from JupyterLab's own first layout (the file browser), not with the
    # sidebar opened on the Catalog as a new workspace opens by default (test_first_start.py).
    settings = config_dir / "lab" / "user-settings" / "jupyter-dataops"
    settings.mkdir(parents=True)
    (settings / "sidebar.jupyterlab-settings").write_text(json.dumps({"openOnFirstStart": False}))
    # Only CONFIG and RUNTIME are redirected: the labextension installed in sys.prefix stays
    # visible (JUPYTER_DATA_DIR is left alone on purpose).
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
    }
    port = _free_port()
    token = secrets.token_hex(16)
    log_path = tmp_path / "jupyter-lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log_path, proc)
    try:
        try:
            _wait_until_up(server)
        except RuntimeError as e:
            pytest.fail(f"{e}\n--- jupyter lab log ---\n{server.log()}", pytrace=False)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if _failed(request):
            print(f"--- jupyter lab log ({log_path}) ---\n{server.log()}")


# -- the browser page -------------------------------------------------------------------------
@pytest.fixture
def lab(browser: Any, lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context on /lab, wrapped in the LabPage page object."""
    from .pages import LabPage

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    page.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    try:
        yield LabPage(page, lab_server.base_url, lab_server.token).open()
    finally:
        if _failed(request):
            ARTIFACTS.mkdir(exist_ok=True)
            try:
                page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
            except Exception as e:  # the page may be gone
                print(f"no failure screenshot: {e}")
            print("--- browser console ---\n" + "\n".join(console))
        context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
