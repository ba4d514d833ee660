"""The Jobs tab and "Run as Job" against a real `jupyter lab` and its executor, in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

from .conftest import LabServer
from .pages import LabPage

pytestmark = pytest.mark.ui

RUN_TIMEOUT_MS = 180_000
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _notebook(path: Path, parameters: str, *cells: str, kernel: str = "python3") -> None:
    nb = nbformat.v4.new_notebook()
    # With its language, so papermill can read the parameters whatever JupyterLab saves.
    nb.metadata["kernelspec"] = {**KERNELSPEC, "name": kernel}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)


@pytest.fixture
def lab_workspace(lab_workspace: Path) -> Path:
    _notebook(
        lab_workspace / "report.ipynb",
        'n: int = 3  # how many squares to add up\nlabel = "squares"  # printed first',
        "total = sum(i * i for i in range(n))",
        'print(f"{label}: {total}")',
    )
    _notebook(
        lab_workspace / "broken.ipynb",
        "x = 1",
        "ratio = x / 0",
        'print("never printed")',
    )
    _notebook(
        lab_workspace / "elsewhere.ipynb",
        "x = 1",
        'print(f"x is {x}")',
        kernel="julia-1.10",  # written on a machine that had Julia; this one has not
    )
    _notebook(
        lab_workspace / "magic.ipynb",
        "x = 1",
        'print("loading the data")\n%undefined-line-magic',
        'print("never printed")',
    )
    return lab_workspace


def test_run_a_parameterized_notebook_and_follow_it(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    panel = lab.open_notebook("report.ipynb")
    dialog = lab.run_as_job(panel)
    assert dialog.parameters() == {"n": "int", "label": "str"}
    assert dialog.field("n").input_value() == "3"
    assert dialog.field("label").input_value() == "squares"
    assert "how many squares" in dialog.dialog.inner_text()
    dialog.fill("n", "5")
    lab.screenshot(artifacts_dir / "jobs-run-dialog.png")
    dialog.submit()
    dialog.wait_until_closed()

    jobs = lab.jobs()
    run = jobs.runs("report.ipynb").first
    expect(run.locator('[data-test="dataops-run-params"]')).to_have_text("n=5")
    jobs.wait_for_status(run, "succeeded", RUN_TIMEOUT_MS)
    run_id = run.get_attribute("data-id")
    assert run_id
    api = lab_server.get_json(f"dataops/api/v1/runs/{run_id}")
    assert api["status"] == "succeeded"
    assert api["parameters"] == {"n": 5}
    assert "took" in run.locator('[data-test="dataops-run-duration"]').inner_text()
    assert jobs.action(run, "cancel").count() == 0
    lab.screenshot(artifacts_dir / "jobs-succeeded.png")

    log = jobs.open_log(run)
    # 0 + 1 + 4 + 9 + 16: the run used the value typed in the dialog.
    expect(log.locator('[data-test="dataops-run-log-text"]')).to_contain_text("squares: 30")
    expect(log.locator('[data-test="dataops-run-log-state"]')).to_have_attribute(
        "data-state", "succeeded"
    )
    lab.screenshot(artifacts_dir / "jobs-log.png")

    jobs.action(run, "open-output").click()
    copy = f"report-{run_id[:8]}.ipynb"
    output = lab.page.locator(".jp-NotebookPanel").filter(
        has=lab.page.locator(".jp-OutputArea-output", has_text="squares: 30")
    )
    output.wait_for(state="visible", timeout=lab.timeout_ms)
    expect(lab.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_contain_text(
        copy
    )
    assert (lab_server.root / "dataops-outputs" / copy).is_file()
    lab.screenshot(artifacts_dir / "jobs-output.png")


def test_a_bad_parameter_value_is_named_and_the_edits_are_kept(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    dialog = lab.run_as_job(lab.open_notebook("report.ipynb"))
    dialog.fill("label", "cubes")
    dialog.fill("n", "many")
    dialog.submit()

    expect(dialog.error).to_be_visible()
    message = dialog.error.inner_text()
    assert "'n'" in message and "int" in message
    assert dialog.error.get_attribute("data-parameter") == "n"
    assert dialog.field("n").get_attribute("aria-invalid") == "true"
    # Still open, with what the user typed.
    assert dialog.field("n").input_value() == "many"
    assert dialog.field("label").input_value() == "cubes"
    assert lab_server.get_json("dataops/api/v1/runs")["runs"] == []
    lab.screenshot(artifacts_dir / "jobs-bad-parameter.png")

    dialog.fill("n", "2")
    dialog.submit()
    dialog.wait_until_closed()
    run = lab.jobs().runs("report.ipynb").first
    expect(run.locator('[data-test="dataops-run-params"]')).to_have_text('n=2, label="cubes"')


def test_a_failing_notebook_shows_its_error(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    dialog = lab.run_from_file_browser("broken.ipynb")
    assert dialog.parameters() == {"x": "int"}
    dialog.submit()
    dialog.wait_until_closed()

    jobs = lab.jobs()
    run = jobs.runs("broken.ipynb").first
    jobs.wait_for_status(run, "failed", RUN_TIMEOUT_MS)
    error = run.locator('[data-test="dataops-run-error"]')
    expect(error.locator('[data-test="dataops-run-error-message"]')).to_have_text(
        "ZeroDivisionError: division by zero"
    )
    cell = error.locator('[data-test="dataops-run-error-cell"]').inner_text()
    assert "ratio = x / 0" in cell
    api = lab_server.get_json(f"dataops/api/v1/runs/{run.get_attribute('data-id')}")
    assert f"In cell {api['error']['cell_index'] + 1}" in cell
    assert jobs.action(run, "rerun").is_enabled()
    lab.screenshot(artifacts_dir / "jobs-failed.png")


def test_a_scheduled_job_is_listed_paused_and_its_running_run_cancelled(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    _notebook(
        lab_server.root / "slow.ipynb",
        "seconds = 120",
        'print("sleeping")',
        "import time\ntime.sleep(seconds)",
    )
    api = "dataops/api/v1"
    lab_server.send_json(
        "POST",
        f"{api}/jobs",
        {
            "name": "nightly",
            "notebook_path": "slow.ipynb",
            "schedule": "0 6 * * 1-5",
            "timezone": "Europe/Paris",
        },
    )
    submitted = lab_server.send_json("POST", f"{api}/runs", {"job": "nightly"})

    jobs = lab.jobs()
    job = jobs.panel.locator('[data-test="dataops-job"][data-name="nightly"]')
    schedule = job.locator('[data-test="dataops-job-schedule"]')
    expect(schedule).to_contain_text("0 6 * * 1-5")
    expect(schedule).to_contain_text("Europe/Paris")
    expect(schedule.locator('[data-test="dataops-job-next"]')).to_contain_text("next ")
    job.locator('[data-test="dataops-job-pause"]').click()
    expect(job).to_have_attribute("data-paused", "true")
    expect(job.locator('[data-test="dataops-job-paused"]')).to_be_visible()
    assert lab_server.get_json(f"{api}/jobs/nightly")["paused"] is True
    expect(job.locator('[data-test="dataops-job-pause"]')).to_have_text("Resume")
    expect(schedule.locator('[data-test="dataops-job-next"]')).to_have_count(0)  # paused

    run = jobs.panel.locator(f'[data-test="dataops-run"][data-id="{submitted["id"]}"]')
    expect(run.locator('[data-test="dataops-run-job"]')).to_have_text("nightly")
    jobs.wait_for_status(run, "running", RUN_TIMEOUT_MS)
    # The last code cell (the sleep) is the third of three.
    expect(run.locator('[data-test="dataops-run-progress"]')).to_contain_text(
        "cell 3 of 3", timeout=RUN_TIMEOUT_MS
    )
    lab.screenshot(artifacts_dir / "jobs-running.png")
    jobs.action(run, "cancel").click()
    jobs.wait_for_status(run, "cancelled", RUN_TIMEOUT_MS)
    assert lab_server.get_json(f"{api}/runs/{submitted['id']}")["status"] == "cancelled"
    expect(jobs.action(run, "rerun")).to_be_enabled()


def test_schedule_a_notebook_from_the_dialog_run_it_now_and_delete_it(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    api = "dataops/api/v1"
    dialog = lab.run_as_job(lab.open_notebook("report.ipynb"))
    dialog.fill("n", "4")
    dialog.fill("label", "weekday squares")
    dialog.schedule()
    expect(dialog.accept_button).to_have_text("Schedule")
    # The name comes from the file name, the time zone from the browser.
    assert dialog.job_field("name").input_value() == "report"
    browser_tz = lab.page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert dialog.job_field("timezone").input_value() == browser_tz
    assert "06:00 on weekdays" in dialog.dialog.inner_text()
    dialog.job_field("schedule").fill("every weekday at six")
    dialog.job_field("timezone").fill("Europe/Paris")
    dialog.job_field("retries").fill("1")
    dialog.job_field("html").check()
    dialog.submit()

    # A bad cron: the server's message in the dialog, every edit kept, nothing created.
    expect(dialog.error).to_contain_text("invalid cron schedule")
    assert dialog.field("n").input_value() == "4"
    assert dialog.field("label").input_value() == "weekday squares"
    assert dialog.job_field("schedule").input_value() == "every weekday at six"
    assert dialog.job_field("timezone").input_value() == "Europe/Paris"
    assert dialog.job_field("retries").input_value() == "1"
    assert dialog.job_field("html").is_checked()
    assert lab_server.get_json(f"{api}/jobs")["jobs"] == []
    lab.screenshot(artifacts_dir / "jobs-schedule-bad-cron.png")

    dialog.job_field("schedule").fill("0 6 * * 1-5")
    dialog.submit()
    dialog.wait_until_closed()

    jobs = lab.jobs()
    job = jobs.job("report")
    schedule = job.locator('[data-test="dataops-job-schedule"]')
    expect(schedule).to_contain_text("0 6 * * 1-5")
    expect(schedule).to_contain_text("Europe/Paris")
    # 06:00 on the next weekday: within three days.
    expect(schedule.locator('[data-test="dataops-job-next"]')).to_have_text(
        re.compile(r"^next .+ \((in \d+ (minutes?|hours?|days)|tomorrow)\)$")
    )
    definition = lab_server.get_json(f"{api}/jobs/report")
    assert definition["notebook_path"] == "report.ipynb"
    assert definition["parameters"] == {"n": 4, "label": "weekday squares"}
    assert definition["schedule"] == "0 6 * * 1-5"
    assert definition["timezone"] == "Europe/Paris"
    assert definition["max_retries"] == 1
    assert definition["output_formats"] == ["html"]
    assert definition["next_fire_at"]
    lab.screenshot(artifacts_dir / "jobs-scheduled.png")

    # The name is taken now: a 409, shown on the name.
    again = lab.run_as_job(lab.open_notebook("report.ipynb")).schedule()
    again.submit()
    expect(again.error).to_contain_text("exists")
    expect(again.job_field("name")).to_have_attribute("aria-invalid", "true")
    again.dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    again.wait_until_closed()

    jobs = lab.jobs()
    jobs.job_action(jobs.job("report"), "run").click()
    run = jobs.runs("report.ipynb").filter(
        has=lab.page.locator('[data-test="dataops-run-job"]', has_text="report")
    )
    expect(run).to_have_count(1)
    jobs.wait_for_status(run, "succeeded", RUN_TIMEOUT_MS)
    run_id = run.get_attribute("data-id")
    submitted = lab_server.get_json(f"{api}/runs/{run_id}")
    assert submitted["status"] == "succeeded"
    assert submitted["job_name"] == "report"
    # 0 + 1 + 4 + 9: the run used the definition's parameters.
    log = jobs.open_log(run)
    expect(log.locator('[data-test="dataops-run-log-text"]')).to_contain_text("weekday squares: 14")

    jobs = lab.jobs()
    jobs.delete_job("report")
    expect(jobs.job("report")).to_have_count(0)
    status, _ = lab_server.get_error(f"{api}/jobs/report")
    assert status == 404
    # Its runs stay.
    assert lab_server.get_json(f"{api}/runs/{run_id}")["status"] == "succeeded"
    expect(jobs.panel.locator(f'[data-test="dataops-run"][data-id="{run_id}"]')).to_be_visible()


def test_pick_a_kernel_for_a_notebook_whose_kernel_is_not_installed(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    api = "dataops/api/v1"
    dialog = lab.run_from_file_browser("elsewhere.ipynb")
    missing = dialog.dialog.locator('[data-test="dataops-run-form-kernel-missing"]')
    expect(missing).to_contain_text('"julia-1.10" is not installed')
    expect(dialog.kernel).to_have_value("")
    expect(dialog.kernel.locator('option[value="python3"]')).to_have_count(1)
    # Without a kernel, the server says which are installed; the dialog stays, marked.
    dialog.submit()
    expect(dialog.error).to_contain_text("'julia-1.10' is not installed")
    expect(dialog.error).to_have_attribute("data-field", "kernel_name")
    expect(dialog.kernel).to_have_attribute("aria-invalid", "true")
    assert lab_server.get_json(f"{api}/runs")["runs"] == []
    lab.screenshot(artifacts_dir / "jobs-kernel-missing.png")

    dialog.pick_kernel("python3")
    dialog.fill("x", "7")
    dialog.submit()
    dialog.wait_until_closed()
    run = lab.jobs().runs("elsewhere.ipynb").first
    lab.jobs().wait_for_status(run, "succeeded", RUN_TIMEOUT_MS)
    submitted = lab_server.get_json(f"{api}/runs/{run.get_attribute('data-id')}")
    assert submitted["kernel_name"] == "python3" and submitted["parameters"] == {"x": 7}

    # A notebook of an installed kernel: that kernel, said to be the notebook's, is chosen.
    dialog = lab.run_from_file_browser("report.ipynb")
    expect(dialog.kernel).to_have_value("python3")
    expect(dialog.kernel.locator("option:checked")).to_contain_text("the notebook's")
    assert dialog.dialog.locator('[data-test="dataops-run-form-kernel-missing"]').count() == 0
    dialog.dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    dialog.wait_until_closed()


def test_a_failing_magic_shows_its_cell_source_and_last_output(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    dialog = lab.run_from_file_browser("magic.ipynb")
    dialog.fill("x", "2")  # papermill then runs an injected cell more than the notebook has
    dialog.submit()
    dialog.wait_until_closed()

    jobs = lab.jobs()
    run = jobs.runs("magic.ipynb").first
    jobs.wait_for_status(run, "failed", RUN_TIMEOUT_MS)
    error = run.locator('[data-test="dataops-run-error"]')
    cell = error.locator('[data-test="dataops-run-error-cell"]')
    expect(cell).to_contain_text("In cell 2")  # the notebook's second cell, not papermill's 3rd
    expect(error.locator('[data-test="dataops-run-error-source"]')).to_have_text(
        'print("loading the data")\n%undefined-line-magic'
    )
    message = error.locator('[data-test="dataops-run-error-message"]')
    expect(message).to_contain_text("cell 2 failed, with no error message")
    expect(message).to_contain_text("Line magic function `%undefined-line-magic` not found")
    output = error.locator('[data-test="dataops-run-error-output"]')
    expect(output).to_contain_text("Last output")
    expect(output).to_contain_text("UsageError: Line magic function")
    api = lab_server.get_json(f"dataops/api/v1/runs/{run.get_attribute('data-id')}")
    assert (
        api["error"]["cell_index"] == 1
        and cell.get_attribute("data-cell-id") == (api["error"]["cell_id"])
    )
    lab.screenshot(artifacts_dir / "jobs-failed-magic.png")
