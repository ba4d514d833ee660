"""The README's first command, `make lab`, as it stands: it starts for root and for a normal
user, prints the welcome notebook's URL, and a newcomer who opens it lands on the notebook with
the DataOps sidebar open on the Catalog. Real make (the Makefile's own `lab` recipe), a real
`jupyter lab` on a copy of notebooks/, real Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import ARTIFACTS, CHROMIUM_ARGS, _free_port  # noqa: F401
from .pages import SIDEBAR_ID

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)  # the environment `make lab` set up, which runs these tests
START_TIMEOUT = 180.0  # the demo data is written first
UNPRIVILEGED = 1000  # the uid (and gid) of "a normal user" in a user namespace


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class MadeLab:
    base_url: str
    token: str
    url: str  # the URL the server printed for the user to open
    root: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any, Any]:
        """(status, headers, decoded body) of a request with the token, redirects not followed."""
        req = urllib.request.Request(
            f"{self.base_url}/{path.lstrip('/')}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=10) as resp:
                status, headers, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, e.headers, e.read()
        text = raw.decode(errors="replace")
        try:
            return status, headers, json.loads(text)
        except ValueError:
            return status, headers, text


def _as(kind: str) -> list[str]:
    """How to run a command as root or as a normal user from here: as it is when this process
    is that already, else in a user namespace that maps this uid to root or to an unprivileged
    uid (jupyter decides on the effective uid)."""
    if (kind == "root") == (os.geteuid() == 0):
        return []
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--user", "true"], check=False).returncode:
        pytest.skip(f"cannot run as {kind} here: no user namespaces (unshare --user)")
    if kind == "root":
        return [unshare, "--user", "--map-root-user"]
    return [unshare, "--user", f"--map-user={UNPRIVILEGED}", f"--map-group={UNPRIVILEGED}"]


def _start_make_lab(tmp: Path, kind: str, *extra: str) -> MadeLab:
    """`make lab` in a copy of notebooks/, with a fresh Jupyter config (no saved workspace);
    ``extra``: more of jupyter lab's arguments, through the Makefile's LAB_ARGS."""
    root = tmp / "notebooks"
    shutil.copytree(
        REPO / "notebooks", root, ignore=shutil.ignore_patterns(".dataops", "data", ".ipynb_*")
    )
    port = _free_port()
    home = tmp / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
    }
    env.pop("MAKEFLAGS", None)
    # The token is jupyter's own: the URL it prints is the one a user copies.
    lab_args = " ".join(
        ["--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0", *extra]
    )
    # The Makefile's `lab` recipe as it stands; its set-up step is what runs these tests.
    cmd = [
        "make", "-s", "-f", str(REPO / "Makefile"), "-o", f"{VENV}/.lab", f"VENV={VENV}",
        "lab", f"LAB_ARGS={lab_args}",
    ]  # fmt: skip
    prefix = _as(kind)
    uid = subprocess.run(
        [*prefix, sys.executable, "-c", "import os; print(os.geteuid())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert (uid == "0") == (kind == "root"), uid
    log_path = tmp / "make-lab.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*prefix, *cmd], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # one killpg ends make, its shell and jupyter
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    lab = MadeLab(base, "", "", root, log_path, proc)
    deadline = time.monotonic() + START_TIMEOUT
    printed = re.compile(rf"(http://127\.0\.0\.1:{port}/\S*\?token=(\w+))")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"make lab exited ({proc.returncode}):\n{lab.log()}", pytrace=False)
        found = printed.search(lab.log())
        if found:
            lab.url, lab.token = found.group(1), found.group(2)
            try:
                if lab.request("api/status")[0] == 200:
                    return lab
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        time.sleep(0.25)
    _stop(lab)
    pytest.fail(f"make lab did not serve within {START_TIMEOUT:.0f} s:\n{lab.log()}", pytrace=False)


def _stop(lab: MadeLab) -> None:
    try:
        os.killpg(lab.proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        lab.proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(lab.proc.pid, signal.SIGKILL)
        lab.proc.wait(10)


@pytest.fixture(params=["root", "user"], ids=["as-root", "as-a-normal-user"])
def made_lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MadeLab]:
    lab = _start_make_lab(tmp_path, request.param)
    try:
        yield lab
    finally:
        _stop(lab)
        if any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
               for w in ("setup", "call")):  # fmt: skip
            print(f"--- make lab ---\n{lab.log()}")


def test_make_lab_serves_the_welcome_notebook(made_lab: MadeLab) -> None:
    lab = made_lab
    assert "Running as root is not recommended" not in lab.log()
    assert lab.proc.poll() is None
    # The URL it prints opens the welcome notebook; so does the server's root.
    assert lab.url == f"{lab.base_url}/lab/tree/welcome.ipynb?token={lab.token}"
    status, headers, _ = lab.request("/")
    assert status == 302 and headers["Location"].rstrip("?").endswith("/lab/tree/welcome.ipynb")
    status, _, page = lab.request("lab/tree/welcome.ipynb")
    assert status == 200 and "<html" in page.lower()
    # The DataOps side works on the demo workspace that `make lab` prepared.
    status, _, st = lab.request("dataops/api/v1/status")
    assert status == 200, st
    assert st["workspace"]["root"] == str(lab.root.resolve())
    assert st["workspace"]["config_error"] is None and st["counts"]["datasets"] >= 5
    status, _, contents = lab.request("api/contents/welcome.ipynb?content=0")
    assert status == 200 and contents["type"] == "notebook"


# -- in the browser ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab_as_it_stands(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadeLab]:
    """`make lab` as the user of this machine (root, on these machines)."""
    tmp = tmp_path_factory.mktemp("make-lab")
    # window.jupyterapp: the tests wait for the sidebar's first-start decision.
    lab = _start_make_lab(
        tmp, "root" if os.geteuid() == 0 else "user", "--LabApp.expose_app_in_browser=True"
    )
    try:
        yield lab
    finally:
        _stop(lab)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        yield page
    finally:
        if any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
               for w in ("setup", "call")):  # fmt: skip
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
        context.close()


def _current_tab(page: Page) -> Any:
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")


def _landed(page: Page) -> bool:
    """Whether the DataOps sidebar opened itself on the Catalog (once that is decided)."""
    return bool(
        page.evaluate(
            """async id => {
                const app = window.jupyterapp;
                await app.restored;
                const sidebar = [...app.shell.widgets('left')].find(w => w.id === id);
                return await sidebar.landed;
            }""",
            SIDEBAR_ID,
        )
    )


def _expect_landed_on_the_catalog(page: Page) -> None:
    expect(_current_tab(page)).to_contain_text("welcome.ipynb", timeout=60_000)
    sidebar = page.locator(f"#{SIDEBAR_ID}")
    expect(sidebar).to_be_visible(timeout=30_000)
    expect(sidebar.locator('[data-test="dataops-tab-catalog"]')).to_have_attribute(
        "aria-selected", "true"
    )
    names = sidebar.locator('[data-test="dataops-dataset-item"] [data-test="dataops-dataset-name"]')
    try:
        expect(names.filter(has_text="flights")).to_have_count(1, timeout=30_000)
    except AssertionError as e:  # what the user saw instead (an error, a spinner)
        raise AssertionError(f"{e}\nthe sidebar showed:\n{sidebar.inner_text()}") from None
    expect(page.locator("#filebrowser")).to_be_hidden()
    assert _landed(page)


def test_a_newcomer_lands_on_the_welcome_notebook_with_the_catalog_open(
    lab_as_it_stands: MadeLab, page: Page, artifacts_dir: Path
) -> None:
    page.goto(lab_as_it_stands.url, wait_until="domcontentloaded")
    _expect_landed_on_the_catalog(page)
    assert page.locator(".jp-Launcher").count() == 0
    page.wait_for_timeout(300)  # let the last render settle for the screenshot
    page.screenshot(path=str(artifacts_dir / "first-start.png"))


def _saved_left_widget(lab: MadeLab, workspace: str) -> str | None:
    status, _, body = lab.request(f"lab/api/workspaces/{workspace}")
    if status != 200 or not isinstance(body, dict):
        return None
    left = (body.get("data") or {}).get("layout-restorer:data", {}).get("left") or {}
    return left.get("current")


def test_a_workspace_with_a_saved_layout_opens_as_it_was_left(
    lab_as_it_stands: MadeLab, page: Page
) -> None:
    lab = lab_as_it_stands
    url = f"{lab.base_url}/lab/workspaces/again/tree/welcome.ipynb?token={lab.token}"
    page.goto(url, wait_until="domcontentloaded")
    _expect_landed_on_the_catalog(page)
    # The user goes to the file browser; once the workspace is saved so, a reload keeps it.
    page.locator('li[data-id="filebrowser"]').click()
    expect(page.locator("#filebrowser")).to_be_visible()
    deadline = time.monotonic() + 30
    while _saved_left_widget(lab, "again") != "filebrowser":
        assert time.monotonic() < deadline, "the workspace was never saved"
        time.sleep(0.2)
    page.reload(wait_until="domcontentloaded")
    expect(_current_tab(page)).to_contain_text("welcome.ipynb", timeout=60_000)
    assert not _landed(page)
    expect(page.locator("#filebrowser")).to_be_visible(timeout=30_000)
    expect(page.locator(f"#{SIDEBAR_ID}")).to_be_hidden()


def test_the_first_start_landing_can_be_turned_off(lab_as_it_stands: MadeLab, page: Page) -> None:
    lab = lab_as_it_stands
    setting = "lab/api/settings/jupyter-dataops:sidebar"
    status, _, body = lab.request(setting, "PUT", {"raw": '{"openOnFirstStart": false}'})
    assert status == 204, body
    try:
        url = f"{lab.base_url}/lab/workspaces/off/tree/welcome.ipynb?token={lab.token}"
        page.goto(url, wait_until="domcontentloaded")
        expect(_current_tab(page)).to_contain_text("welcome.ipynb", timeout=60_000)
        # JupyterLab's own first layout: the file browser.
        assert not _landed(page)
        expect(page.locator("#filebrowser")).to_be_visible(timeout=30_000)
        expect(page.locator(f"#{SIDEBAR_ID}")).to_be_hidden()
    finally:
        lab.request(setting, "PUT", {"raw": "{}"})
