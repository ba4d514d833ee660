"""Page objects for the JupyterLab UI tests (as in jupyter-scheduler's ui-tests helpers)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Locator, Page

SIDEBAR_ID = "jupyter-dataops-sidebar"
COUNT_KINDS = ("datasets", "jobs", "runs", "dashboards")


def _test_id(name: str) -> str:
    return f'[data-test="{name}"]'


class LabPage:
    """JupyterLab in the browser, seen through the DataOps sidebar."""

    def __init__(self, page: Page, base_url: str, token: str, timeout_ms: float = 60_000) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_ms = timeout_ms

    # -- navigation -------------------------------------------------------------------------
    @property
    def sidebar_tab(self) -> Locator:
        return self.page.locator(f'li[data-id="{SIDEBAR_ID}"]')

    @property
    def sidebar(self) -> Locator:
        return self.page.locator(f"#{SIDEBAR_ID}")

    def open(self) -> LabPage:
        """Load /lab and wait until the DataOps tab is in the left bar."""
        self.page.goto(f"{self.base_url}/lab?token={self.token}", wait_until="domcontentloaded")
        self.sidebar_tab.wait_for(state="visible", timeout=self.timeout_ms)
        return self

    def open_sidebar(self) -> LabPage:
        """Activate the DataOps tab (a click on an active tab would collapse it)."""
        if not self.sidebar.is_visible():
            self.sidebar_tab.click()
        self.sidebar.locator(".jp-DataOps-status").wait_for(
            state="visible", timeout=self.timeout_ms
        )
        return self

    def wait_for_status(self) -> LabPage:
        """Wait until the status (not "Loading…", not an error) is shown."""
        self.field("dataops-user").wait_for(state="visible", timeout=self.timeout_ms)
        return self

    def refresh(self) -> None:
        self.sidebar.locator(_test_id("dataops-refresh")).click()

    # -- reading ----------------------------------------------------------------------------
    def field(self, test_id: str) -> Locator:
        return self.sidebar.locator(_test_id(test_id))

    def status_text(self) -> str:
        return self.sidebar.locator(".jp-DataOps-status").inner_text()

    def user(self) -> str:
        return self.field("dataops-user").inner_text().strip()

    def groups(self) -> list[str]:
        return [
            t.strip()
            for t in self.field("dataops-groups").locator(".jp-DataOps-chip").all_inner_texts()
        ]

    def version(self) -> str:
        return self.field("dataops-version").inner_text().strip()

    def store_url(self) -> str:
        return self.field("dataops-store-url").inner_text().strip()

    def counts(self) -> dict[str, int]:
        return {k: int(self.field(f"dataops-count-{k}").inner_text()) for k in COUNT_KINDS}

    @property
    def config_error(self) -> Locator:
        return self.field("dataops-config-error")

    @property
    def error(self) -> Locator:
        return self.field("dataops-error")

    @property
    def refresh_button(self) -> Locator:
        return self.field("dataops-refresh")

    # -- artifacts --------------------------------------------------------------------------
    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Nothing moves in the panel; still, let the UI settle after the last render.
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(path))
        return path
