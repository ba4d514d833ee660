"""Page objects for the JupyterLab UI tests (as in jupyter-scheduler's ui-tests helpers)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Locator, Page, expect

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

    # -- catalog ----------------------------------------------------------------------------
    @property
    def catalog(self) -> Locator:
        return self.sidebar.locator(_test_id("dataops-catalog"))

    def open_catalog(self) -> LabPage:
        """Show the Catalog tab of the sidebar and wait for the first list."""
        if not self.sidebar.is_visible():
            self.sidebar_tab.click()
        self.field("dataops-tab-catalog").click()
        self.catalog.wait_for(state="visible", timeout=self.timeout_ms)
        self.catalog.locator(
            f"{_test_id('dataops-dataset-list')}, {_test_id('dataops-catalog-empty')}"
        ).first.wait_for(state="visible", timeout=self.timeout_ms)
        return self

    def search_catalog(self, text: str) -> None:
        self.catalog.locator(_test_id("dataops-catalog-search")).fill(text)

    def toggle_tag(self, tag: str) -> None:
        self.catalog.locator(f'{_test_id("dataops-tag-chip")}[data-tag="{tag}"]').click()

    def dataset_item(self, name: str) -> Locator:
        return self.catalog.locator(f'{_test_id("dataops-dataset-item")}[data-name="{name}"]')

    def wait_for_dataset_names(self, names: list[str], timeout_ms: float = 15_000) -> None:
        """Wait until the list shows exactly these datasets, in this order (debounced search)."""
        items = self.catalog.locator(
            f"{_test_id('dataops-dataset-item')} {_test_id('dataops-dataset-name')}"
        )
        expect(items).to_have_text(names, timeout=timeout_ms)
        expect(self.catalog).to_have_attribute("aria-busy", "false", timeout=timeout_ms)

    def dataset_access(self, name: str) -> Locator:
        return self.dataset_item(name).locator(_test_id("dataops-dataset-access"))

    def open_dataset(self, name: str) -> DatasetPage:
        """Click a dataset of the list and wait for its view in the main area."""
        self.dataset_item(name).click()
        return DatasetPage(self.page, name, self.timeout_ms).wait_until_loaded()

    # -- artifacts --------------------------------------------------------------------------
    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Nothing moves in the panel; still, let the UI settle after the last render.
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(path))
        return path


class DatasetPage:
    """A dataset opened in the main area."""

    def __init__(self, page: Page, name: str, timeout_ms: float = 60_000) -> None:
        self.page = page
        self.name = name
        self.timeout_ms = timeout_ms

    @property
    def view(self) -> Locator:
        return self.page.locator(f'{_test_id("dataops-dataset-view")}[data-name="{self.name}"]')

    @property
    def panel(self) -> Locator:
        """The main-area widget: the view and its toolbar."""
        return self.page.locator(".jp-DataOps-datasetPanel").filter(has=self.view)

    def field(self, test_id: str) -> Locator:
        return self.view.locator(_test_id(test_id))

    def wait_until_loaded(self) -> DatasetPage:
        """Wait for the dataset and, if it may be read, its first preview."""
        self.view.wait_for(state="visible", timeout=self.timeout_ms)
        self.view.locator(
            f"{_test_id('dataops-preview-table')}, {_test_id('dataops-preview-empty')}, "
            f"{_test_id('dataops-preview-denied')}, {_test_id('dataops-preview-error')}"
        ).first.wait_for(state="visible", timeout=self.timeout_ms)
        return self

    @property
    def access(self) -> Locator:
        return self.view.locator(
            f".jp-DataOps-datasetView-header {_test_id('dataops-dataset-access')}"
        )

    def schema(self) -> list[dict[str, str]]:
        """The schema rows: name, type, description, classification and masked badge."""
        rows = []
        for row in self.view.locator(_test_id("dataops-schema-row")).all():
            badge = row.locator(_test_id("dataops-column-masked"))
            rows.append(
                {
                    "name": row.get_attribute("data-name") or "",
                    "type": row.locator(_test_id("dataops-column-type")).inner_text().strip(),
                    "description": row.locator(_test_id("dataops-column-description"))
                    .inner_text()
                    .strip(),
                    "classification": row.locator(_test_id("dataops-column-classification"))
                    .inner_text()
                    .strip(),
                    "masked": badge.inner_text().strip() if badge.count() else "",
                }
            )
        return rows

    @property
    def preview_table(self) -> Locator:
        return self.field("dataops-preview-table")

    def preview_rows(self) -> list[dict[str, str]]:
        """The preview as {column: cell text} rows."""
        table = self.preview_table
        headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
        return [
            dict(
                zip(headers, [c.strip() for c in row.locator("td").all_inner_texts()], strict=True)
            )
            for row in table.locator(_test_id("dataops-preview-row")).all()
        ]

    def run_preview(self, where: str) -> None:
        self.field("dataops-preview-where").fill(where)
        self.field("dataops-preview-run").click()

    @property
    def preview_error(self) -> Locator:
        return self.field("dataops-preview-error")

    def copy_pull_code(self) -> str:
        """Click "Copy pull code" and return what went to the clipboard."""
        # Clipboard.copyToSystem fills a `copy` event on document.body; catch it on the way up.
        self.page.evaluate(
            """() => {
                window.__dataopsCopied = null;
                document.addEventListener('copy', e => {
                    window.__dataopsCopied = e.clipboardData.getData('text');
                }, { once: true });
            }"""
        )
        self.panel.locator(_test_id("dataops-copy-pull")).click()
        self.page.wait_for_function("() => window.__dataopsCopied !== null", timeout=5_000)
        return str(self.page.evaluate("() => window.__dataopsCopied"))
