"""The Dashboards tab and "Publish as Dashboard" against a real `jupyter lab`, in Chromium."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

from .conftest import LabServer
from .pages import LabPage

pytestmark = pytest.mark.ui

RUN_TIMEOUT_MS = 180_000
PUBLISH_BUTTON = '[data-jp-item-name="dataops-publish-dashboard"]'


@pytest.fixture
def lab_workspace(lab_workspace: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell("n = 4")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Weekly report"),
        params,
        nbformat.v4.new_code_cell("print(f'the answer is {n * 10}')"),
    ]
    nbformat.write(nb, lab_workspace / "Weekly Report.ipynb")
    return lab_workspace


def test_publish_from_the_toolbar_share_and_unpublish(
    lab: LabPage, lab_server: LabServer, browser, artifacts_dir: Path
) -> None:
    panel = lab.open_notebook("Weekly Report.ipynb")
    panel.locator(PUBLISH_BUTTON).click()
    dialog = lab.page.locator(".jp-Dialog")
    slug = dialog.locator('[data-test="dataops-publish-slug"]')
    expect(slug).to_have_value("weekly-report")  # from the notebook's name
    slug.fill("Not A Slug")
    dialog.locator('[data-test="dataops-publish-groups"]').fill("ops")
    dialog.get_by_role("button", name="Publish").click()
    # Refused, named, and nothing typed is lost.
    expect(dialog.locator('[data-test="dataops-publish-error"]')).to_contain_text("slug")
    expect(dialog.locator('[data-test="dataops-publish-groups"]')).to_have_value("ops")
    dialog.locator('[data-test="dataops-publish-slug"]').fill("weekly")
    lab.screenshot(artifacts_dir / "dashboards-publish-dialog.png")
    dialog.get_by_role("button", name="Publish").click()
    expect(dialog).to_have_count(0)

    # The Dashboards tab lists it; its first run renders it.
    item = lab.sidebar.locator('[data-test="dataops-dashboard"][data-slug="weekly"]')
    expect(item).to_be_visible(timeout=lab.timeout_ms)
    expect(item).to_contain_text("viewers: @ops")
    when = item.locator('[data-test="dataops-dashboard-when"]')
    deadline_checks = int(RUN_TIMEOUT_MS / 2000)
    for _ in range(deadline_checks):
        if "updated" in when.inner_text():
            break
        lab.refresh()
        lab.page.wait_for_timeout(2000)
    expect(when).to_contain_text("updated")
    lab.screenshot(artifacts_dir / "dashboards-tab.png")

    # A share link opens the view for someone with no account (a fresh browser context).
    item.locator('[data-test="dataops-dashboard-share"]').click()
    url = lab.page.locator('[data-test="dataops-share-url"]').input_value()
    assert "/dataops/dashboards/weekly/share#" in url
    lab.page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
    stranger = browser.new_context()
    try:
        view = stranger.new_page()
        view.goto(url)
        expect(view.locator("body")).to_contain_text("the answer is 40", timeout=30_000)
        assert "print(f'the answer" not in view.content()  # code hidden
    finally:
        stranger.close()

    # Unpublish, confirmed.
    item.locator('[data-test="dataops-dashboard-unpublish"]').click()
    lab.page.locator(".jp-Dialog").get_by_role("button", name="Unpublish").click()
    expect(item).to_have_count(0)
    expect(lab.sidebar.locator('[data-test="dataops-dashboards-empty"]')).to_be_visible()
