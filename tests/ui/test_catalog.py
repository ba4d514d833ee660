"""The Catalog tab and the dataset view against a real `jupyter lab`, in headless Chromium."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from .conftest import CUSTOMERS, LabServer, write_catalog_workspace
from .pages import LabPage

pytestmark = pytest.mark.ui

INVALID_WHERE = "region = = 'x'"


@pytest.fixture
def lab_workspace(lab_workspace: Path) -> Path:
    write_catalog_workspace(lab_workspace)
    return lab_workspace


def test_catalog_lists_datasets_with_the_users_access(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    api = {d["name"]: d for d in lab_server.get_json("dataops/api/v1/datasets")["datasets"]}
    assert api["customers"]["access"]["allowed"] is True  # sanity checks of the server
    assert api["secret"]["access"]["allowed"] is False

    lab.open_sidebar().open_catalog()
    lab.wait_for_dataset_names(["customers", "regions", "secret"])

    lab.search_catalog("cust")
    lab.wait_for_dataset_names(["customers", "secret"])

    customers = lab.dataset_item("customers")
    assert customers.locator('[data-test="dataops-dataset-title"]').inner_text() == "Customers"
    assert "ada" in customers.locator('[data-test="dataops-dataset-owner"]').inner_text()
    tags = customers.locator('[data-test="dataops-dataset-tag"]').all_inner_texts()
    assert tags == ["crm", "pii"]
    access = lab.dataset_access("customers")
    assert access.inner_text() == "read"
    assert access.get_attribute("title") == api["customers"]["access"]["reason"]
    assert customers.locator('[data-test="dataops-dataset-filtered"]').is_visible()
    masked = customers.locator('[data-test="dataops-dataset-masked"]').inner_text()
    assert "email" in masked

    denied = lab.dataset_access("secret")
    assert denied.inner_text() == "no access"
    assert denied.get_attribute("data-allowed") == "false"
    assert denied.get_attribute("title") == api["secret"]["access"]["reason"]
    assert "no grant" in (denied.get_attribute("title") or "")
    assert lab.dataset_item("secret").locator('[data-test="dataops-dataset-masked"]').count() == 0

    lab.screenshot(artifacts_dir / "catalog.png")

    lab.toggle_tag("finance")
    lab.wait_for_dataset_names(["secret"])
    lab.toggle_tag("finance")
    lab.wait_for_dataset_names(["customers", "secret"])


def test_dataset_view_shows_schema_masks_and_a_governed_preview(
    lab: LabPage, lab_server: LabServer, artifacts_dir: Path
) -> None:
    lab.open_sidebar().open_catalog()
    lab.search_catalog("cust")
    lab.wait_for_dataset_names(["customers", "secret"])
    dataset = lab.open_dataset("customers")

    assert dataset.access.inner_text() == "read"
    detail = lab_server.get_json("dataops/api/v1/datasets/customers")
    reason = dataset.field("dataops-dataset-reason").inner_text()
    assert detail["access"]["reason"] in reason
    version = detail["versions"][0]
    assert dataset.field("dataops-version-fingerprint").inner_text() == version["fingerprint"]
    assert f"{len(CUSTOMERS['id'])} rows" in dataset.field("dataops-dataset-version").inner_text()
    assert "parquet" in dataset.field("dataops-dataset-source").inner_text()

    schema = {row["name"]: row for row in dataset.schema()}
    assert list(schema) == ["id", "email", "region"]
    assert schema["email"]["masked"] == "masked (partial)"
    assert schema["email"]["classification"] == "pii"
    assert schema["email"]["type"] == "string"
    assert schema["email"]["description"] == "Contact address"
    assert schema["id"]["masked"] == schema["region"]["masked"] == ""

    rows = dataset.preview_rows()
    eu_ids = [
        str(i) for i, r in zip(CUSTOMERS["id"], CUSTOMERS["region"], strict=True) if r == "EU"
    ]
    assert [r["id"] for r in rows] == eu_ids
    assert {r["region"] for r in rows} == {"EU"}
    content = lab.page.content()
    for email in CUSTOMERS["email"]:
        assert email not in content
        assert email.split("@")[0] not in content
    assert all(r["email"] and r["email"] not in CUSTOMERS["email"] for r in rows)

    code = 'df = dops.pull("customers")'
    assert dataset.copy_pull_code() == code
    toast = lab.page.locator(".jp-toast-message")
    expect(toast).to_contain_text(code, timeout=10_000)
    expect(toast).to_have_count(0, timeout=15_000)  # gone before the screenshot
    dataset.view.locator("h1").hover()  # not the toolbar button just clicked
    lab.screenshot(artifacts_dir / "dataset.png")

    status, body = lab_server.get_error(
        f"dataops/api/v1/datasets/customers/preview?where={quote(INVALID_WHERE)}"
    )
    assert status == 400
    message = body["error"]["message"]
    assert "column" in message  # the server names the position

    dataset.run_preview(INVALID_WHERE)
    dataset.preview_error.wait_for(state="visible", timeout=15_000)
    assert dataset.preview_error.get_attribute("role") == "alert"
    assert dataset.field("dataops-preview-error-message").inner_text() == message
    caret = dataset.field("dataops-preview-error-position").inner_text()
    assert caret.splitlines()[0] == INVALID_WHERE
    assert dataset.preview_table.count() == 0
    lab.screenshot(artifacts_dir / "dataset-preview-error.png")

    dataset.run_preview("id > 2")
    dataset.preview_table.wait_for(state="visible", timeout=15_000)
    assert dataset.preview_error.count() == 0
    assert [r["id"] for r in dataset.preview_rows()] == [i for i in eu_ids if int(i) > 2]


def test_dataset_without_access_shows_why_and_no_preview(lab: LabPage) -> None:
    lab.open_sidebar().open_catalog()
    dataset = lab.open_dataset("secret")

    assert dataset.access.inner_text() == "no access"
    denied = dataset.field("dataops-preview-denied")
    assert denied.is_visible()
    assert "no grant" in denied.inner_text()
    assert dataset.preview_table.count() == 0
    assert dataset.field("dataops-preview-where").count() == 0
