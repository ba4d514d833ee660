"""The Experiments tab against a real `jupyter lab` and its MLflow store, in Chromium."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import LabServer
from .pages import LabPage

pytestmark = pytest.mark.ui

API = "dataops/api/v1"


def _post(server: LabServer, path: str, body: Any) -> Any:
    if path.endswith("/log"):  # 204, no body
        req = urllib.request.Request(
            f"{server.base_url}/{API}/{path}",
            data=__import__("json").dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=30).read()
        return None
    return server.send_json("POST", f"{API}/{path}", body)


@pytest.fixture
def tuning(lab_server: LabServer) -> list[dict[str, Any]]:
    """Two finished runs of experiment "tuning": alpha differs, model does not."""
    runs = []
    for name, alpha, scale in (("ridge-a", 0.1, 1.0), ("ridge-b", 0.2, 2.0)):
        run = _post(
            lab_server,
            "tracking/runs",
            {"experiment": "tuning", "run_name": name,
             "params": {"alpha": alpha, "model": "ridge"}},
        )  # fmt: skip
        records = [
            {"t": "m", "k": "loss", "v": scale / (step + 1), "ts": 1_000 + step, "s": step}
            for step in range(6)
        ]
        _post(lab_server, f"tracking/runs/{run['mlflow_run_id']}/log", {"records": records})
        _post(lab_server, f"tracking/runs/{run['mlflow_run_id']}/end", {"status": "FINISHED"})
        runs.append(run)
    return runs


def test_open_a_run_compare_two_and_see_a_chart(
    tuning: list[dict[str, Any]], lab: LabPage, artifacts_dir: Path
) -> None:
    tab = lab.experiments()
    expect(tab.runs()).to_have_count(2, timeout=30_000)
    headers = tab.column_headers()
    assert "alpha" in headers and "model" in headers and "⚑ loss" in headers
    # Only the columns whose values differ between the runs.
    tab.field("dataops-only-differences").check()
    expect(tab.panel.locator("thead th", has_text="model")).to_have_count(0)
    assert "alpha" in tab.column_headers()
    # Sorted by the metric, largest first on the second click.
    tab.field("dataops-sort-metric-loss").click()
    tab.field("dataops-sort-metric-loss").click()
    expect(tab.runs().first).to_contain_text("ridge-b")
    # One run's details: its parameters, status and the chart of its metric.
    tab.row("ridge-a").locator('[data-test="dataops-open-tracked-run"]').click()
    detail = lab.sidebar.locator('[data-test="dataops-tracked-run-detail"]')
    expect(detail).to_be_visible()
    expect(detail.locator('[data-test="dataops-tracked-status"]')).to_have_text("FINISHED")
    expect(detail).to_contain_text("0.1")
    expect(detail.locator('[data-test="dataops-chart"] path')).to_have_count(1, timeout=15_000)
    lab.screenshot(artifacts_dir / "experiments-run.png")
    detail.get_by_text("← Runs").click()
    # Compare the two: a table of what differs, and one line per run in the chart.
    for row in tab.runs().all():
        row.locator('[data-test="dataops-run-select"]').check()
    tab.field("dataops-compare").click()
    view = lab.sidebar.locator('[data-test="dataops-compare-view"]')
    expect(view).to_be_visible()
    expect(view.locator('[data-test="dataops-compare-table"]')).to_contain_text("alpha")
    series = view.locator('[data-test="dataops-chart-series"] path')
    expect(series).to_have_count(2, timeout=15_000)
    d = series.first.get_attribute("d") or ""
    assert d.count("L") == 5  # six steps, one line
    lab.screenshot(artifacts_dir / "experiments-compare.png")


@pytest.fixture
def lab_workspace(lab_workspace: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nb.cells = [nbformat.v4.new_code_cell("import jupyter_dataops as dops\nrun = dops.run('live')")]
    nbformat.write(nb, lab_workspace / "live.ipynb")
    return lab_workspace


def test_the_notebook_toolbar_shows_a_tracked_run(lab: LabPage, artifacts_dir: Path) -> None:
    panel = lab.open_notebook("live.ipynb")
    indicator = panel.locator('[data-jp-item-name="dataops-tracked-run"]')
    expect(indicator).to_be_hidden()  # not inside a run yet
    idle = panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    idle.wait_for(timeout=60_000)
    panel.locator(".jp-Cell").first.click()
    lab.page.keyboard.press("Shift+Enter")
    expect(indicator).to_be_visible(timeout=30_000)
    expect(indicator).to_contain_text("Tracked: live")
    lab.screenshot(artifacts_dir / "experiments-toolbar.png")
