"""Page objects for the JupyterLab UI tests (as in jupyter-scheduler's ui-tests helpers)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

SIDEBAR_ID = "jupyter-dataops-sidebar"
COUNT_KINDS = ("datasets", "jobs", "runs", "dashboards")
RUN_AS_JOB_BUTTON = '[data-jp-item-name="dataops-run-as-job"]'


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
        """Activate the DataOps tab (a click on an active tab would collapse it) and its
        Status tab."""
        if not self.sidebar.is_visible():
            self.sidebar_tab.click()
        status_tab = self.field("dataops-tab-status")
        status_tab.wait_for(state="visible", timeout=self.timeout_ms)
        if status_tab.get_attribute("aria-selected") != "true":
            status_tab.click()
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

    # -- notebooks and jobs -----------------------------------------------------------------
    def open_notebook(self, path: str) -> Locator:
        """Load /lab/tree/<path> and return the notebook's panel once its toolbar is there."""
        self.page.goto(
            f"{self.base_url}/lab/tree/{path}?token={self.token}", wait_until="domcontentloaded"
        )
        panel = self.page.locator(".jp-NotebookPanel").filter(has=self.page.locator(".jp-Notebook"))
        panel.locator(RUN_AS_JOB_BUTTON).wait_for(state="visible", timeout=self.timeout_ms)
        return panel

    def run_as_job(self, panel: Locator) -> RunDialog:
        """Click "Run as Job" in a notebook's toolbar and wait for the parameters."""
        panel.locator(RUN_AS_JOB_BUTTON).click()
        return RunDialog(self.page, self.timeout_ms).wait_until_loaded()

    def run_from_file_browser(self, name: str) -> RunDialog:
        """Right-click a notebook in the file browser and choose "Run as Job"."""
        item = self.page.locator(".jp-DirListing-item").filter(has_text=name)
        try:
            # A fresh lab shows the file browser once its layout is restored.
            item.wait_for(state="visible", timeout=10_000)
        except PlaywrightTimeoutError:
            self.page.locator('li[data-id="filebrowser"]').click()
            item.wait_for(state="visible", timeout=self.timeout_ms)
        item.click(button="right")
        self.page.locator('.lm-Menu-item[data-command="dataops:run-notebook"]').click()
        return RunDialog(self.page, self.timeout_ms).wait_until_loaded()

    def jobs(self) -> JobsTab:
        return JobsTab(self).open()

    def experiments(self) -> ExperimentsTab:
        return ExperimentsTab(self).open()

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


class RunDialog:
    """The "Run as Job" dialog: the notebook's parameters as fields."""

    def __init__(self, page: Page, timeout_ms: float = 60_000) -> None:
        self.page = page
        self.timeout_ms = timeout_ms
        self.dialog = page.locator(".jp-DataOps-runDialog")

    def wait_until_loaded(self) -> RunDialog:
        """Wait for the dialog and the parameters the server inferred (or their absence)."""
        self.dialog.wait_for(state="visible", timeout=self.timeout_ms)
        self.dialog.locator(
            f"{_test_id('dataops-param')}, {_test_id('dataops-run-form-none')}, "
            f"{_test_id('dataops-run-form-load-error')}"
        ).first.wait_for(state="visible", timeout=self.timeout_ms)
        return self

    def parameters(self) -> dict[str, str]:
        """{name: type} of the parameters shown."""
        return {
            row.get_attribute("data-name") or "": row.get_attribute("data-type") or ""
            for row in self.dialog.locator(_test_id("dataops-param")).all()
        }

    def field(self, name: str) -> Locator:
        return self.dialog.locator(
            f'{_test_id("dataops-param")}[data-name="{name}"] {_test_id("dataops-param-input")}'
        )

    def fill(self, name: str, value: str) -> None:
        self.field(name).fill(value)

    @property
    def error(self) -> Locator:
        return self.dialog.locator(_test_id("dataops-run-form-error"))

    @property
    def kernel(self) -> Locator:
        """The kernel picker (a select of the installed kernels)."""
        return self.dialog.locator(_test_id("dataops-run-form-kernel"))

    def pick_kernel(self, name: str) -> None:
        self.kernel.select_option(name)

    @property
    def accept_button(self) -> Locator:
        return self.dialog.locator(".jp-Dialog-button.jp-mod-accept")

    def submit(self) -> None:
        self.accept_button.click()

    # -- "Schedule…": a job definition instead of a run --------------------------------------
    def schedule(self) -> RunDialog:
        """Tick "Schedule…" and wait for the job definition's fields."""
        self.dialog.locator(_test_id("dataops-run-form-schedule")).check()
        self.dialog.locator(_test_id("dataops-job-form")).wait_for(
            state="visible", timeout=self.timeout_ms
        )
        return self

    def job_field(self, key: str) -> Locator:
        """A field of the job definition: name, schedule, timezone, retries, timeout, html, pdf."""
        return self.dialog.locator(_test_id(f"dataops-job-form-{key}"))

    def wait_until_closed(self) -> None:
        self.dialog.wait_for(state="detached", timeout=self.timeout_ms)


class JobsTab:
    """The Jobs tab of the DataOps sidebar."""

    def __init__(self, lab: LabPage) -> None:
        self.lab = lab
        self.page = lab.page
        self.timeout_ms = lab.timeout_ms

    @property
    def panel(self) -> Locator:
        return self.lab.sidebar.locator(_test_id("dataops-jobs"))

    def open(self) -> JobsTab:
        if not self.lab.sidebar.is_visible():
            self.lab.sidebar_tab.click()
        self.lab.field("dataops-tab-jobs").click()
        self.panel.wait_for(state="visible", timeout=self.timeout_ms)
        return self

    def runs(self, notebook: str | None = None) -> Locator:
        runs = self.panel.locator(_test_id("dataops-run"))
        if notebook is not None:
            runs = runs.filter(
                has=self.page.locator(_test_id("dataops-run-notebook"), has_text=notebook)
            )
        return runs

    def wait_for_status(self, run: Locator, status: str, timeout_ms: float = 120_000) -> None:
        """Wait until the run's badge shows a state (the tab polls the server)."""
        expect(run.locator(_test_id("dataops-run-status"))).to_have_attribute(
            "data-status", status, timeout=timeout_ms
        )

    def action(self, run: Locator, name: str) -> Locator:
        return run.locator(_test_id(f"dataops-run-{name}"))

    def job(self, name: str) -> Locator:
        return self.panel.locator(f'{_test_id("dataops-job")}[data-name="{name}"]')

    def job_action(self, job: Locator, name: str) -> Locator:
        return job.locator(_test_id(f"dataops-job-{name}"))

    def delete_job(self, name: str) -> None:
        """Click "Delete" on a job definition and confirm in the dialog that asks."""
        self.job_action(self.job(name), "delete").click()
        confirm = self.page.locator(".jp-Dialog").filter(has_text=f"Delete job {name}?")
        confirm.locator(".jp-Dialog-button.jp-mod-accept").click()
        confirm.wait_for(state="detached", timeout=self.timeout_ms)

    def open_log(self, run: Locator) -> Locator:
        """Click "View log" and return the log view in the main area."""
        run_id = run.get_attribute("data-id")
        self.action(run, "log").click()
        view = self.page.locator(f'{_test_id("dataops-run-log-view")}[data-id="{run_id}"]')
        view.wait_for(state="visible", timeout=self.timeout_ms)
        return view


class ExperimentsTab:
    """The Experiments tab of the DataOps sidebar."""

    def __init__(self, lab: LabPage) -> None:
        self.lab = lab
        self.page = lab.page
        self.timeout_ms = lab.timeout_ms

    @property
    def panel(self) -> Locator:
        return self.lab.sidebar.locator(_test_id("dataops-experiments"))

    def open(self) -> ExperimentsTab:
        if not self.lab.sidebar.is_visible():
            self.lab.sidebar_tab.click()
        self.lab.field("dataops-tab-experiments").click()
        self.panel.wait_for(state="visible", timeout=self.timeout_ms)
        return self

    def runs(self) -> Locator:
        return self.panel.locator(_test_id("dataops-tracked-run"))

    def column_headers(self) -> list[str]:
        heads = self.panel.locator(f"{_test_id('dataops-runs-table')} thead th")
        return [t.strip() for t in heads.all_inner_texts()]

    def field(self, test_id: str) -> Locator:
        return self.lab.sidebar.locator(_test_id(test_id))

    def row(self, name: str) -> Locator:
        return self.runs().filter(has_text=name)
