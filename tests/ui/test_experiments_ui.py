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
    job = nbformat.v4.new_notebook()
    job.metadata["kernelspec"] = nb.metadata["kernelspec"]
    params = nbformat.v4.new_code_cell("alpha = 0.5")
    params.metadata["tags"] = ["parameters"]
    job.cells = [
        params,
        nbformat.v4.new_code_cell("import mlflow\nmlflow.log_metric('acc', alpha)"),
    ]
    nbformat.write(job, lab_workspace / "train.ipynb")
    return lab_workspace


def test_the_notebook_toolbar_shows_a_tracked_run(lab: LabPage, artifacts_dir: Path) -> None:
    panel = lab.open_notebook("live.ipynb")
    indicator = panel.locator('[data-jp-item-name="dataops-tracked-run"]')
    expect(indicator).to_be_hidden()  # not inside a run yet
    lab.page.locator(".jp-StatusBar-Widget", has_text="| Idle").wait_for(timeout=60_000)
    prompt = panel.locator(".jp-Cell").first.locator(".jp-InputPrompt")
    for _ in range(3):  # a key pressed while the kernel still connects can go unheard
        panel.locator(".jp-Cell").first.click()
        lab.page.keyboard.press("Shift+Enter")
        try:
            expect(prompt).to_contain_text("1", timeout=10_000)
            break
        except AssertionError:
            continue
    expect(indicator).to_be_visible(timeout=30_000)
    expect(indicator).to_contain_text("Tracked: live")
    lab.screenshot(artifacts_dir / "experiments-toolbar.png")


def test_a_job_run_is_reproduced_from_its_experiment(
    lab_server: LabServer, lab: LabPage, artifacts_dir: Path
) -> None:
    import time

    run = lab_server.send_json("POST", f"{API}/runs", {"notebook_path": "train.ipynb"})
    for _ in range(600):
        run = lab_server.get_json(f"{API}/runs/{run['id']}")
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert run["status"] == "succeeded", run
    tab = lab.experiments()
    expect(tab.runs()).to_have_count(1, timeout=30_000)
    tab.runs().first.locator('[data-test="dataops-open-tracked-run"]').click()
    detail = lab.sidebar.locator('[data-test="dataops-tracked-run-detail"]')
    expect(detail).to_contain_text("alpha")
    expect(detail.locator('[data-test="dataops-run-artifacts"]')).to_contain_text(
        "notebook/output.ipynb", timeout=15_000
    )
    detail.locator('[data-test="dataops-reproduce"]').click()
    for _ in range(150):  # the new run: the same snapshot and parameters
        runs = lab_server.get_json(f"{API}/runs")["runs"]
        if runs[0]["trigger"] == "reproduce":
            break
        time.sleep(0.1)
    assert runs[0]["trigger"] == "reproduce" and runs[0]["notebook_hash"] == run["notebook_hash"]
    assert runs[0]["progress"].get("reproduces") == run["id"]
    lab.screenshot(artifacts_dir / "experiments-reproduce.png")
