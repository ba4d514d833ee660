"""Property: no masked value ever reaches an MLflow record or an OpenLineage event.

Real parts: a Platform on a temporary workspace, its real MLflow store (SQLite), governed
reads through DuckDB, lineage recorded as it is for a pull inside a run.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_dataops.models import ReadRequest
from jupyter_dataops.platform import Platform
from jupyter_dataops.settings import DataOps

POLICY = """
groups: {analysts: {members: [ada]}}
datasets:
  people:
    owner: root
    source: {type: csv, path: data/people.csv}
    columns:
      email: {classification: [pii]}
      secret: {classification: [pii]}
grants: [{groups: [analysts], datasets: [people]}]
masks:
  - {classifications: [pii], function: %s}
"""

# Values no record could contain by chance (a word like "interactive" could).
secret_text = st.text(alphabet="0123456789qxz", min_size=8, max_size=16).map(lambda v: "S3cr" + v)


def _workspace(root: Path, mask: str) -> Platform:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "dataops.yaml").write_text(POLICY % mask)
    return Platform(DataOps(), root)


def test_no_masked_value_in_mlflow_records_or_openlineage_events(tmp_path):
    from openlineage.client.serde import Serde

    platforms = {m: _workspace(tmp_path / m, m) for m in ("redact", "hash", "partial")}
    for p in platforms.values():
        p.tracking.client()  # the MLflow store, opened once (its tables take a second or two)

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        rows=st.lists(
            st.tuples(secret_text, secret_text, st.integers(0, 100)), min_size=1, max_size=6
        ),
        mask=st.sampled_from(sorted(platforms)),
        columns=st.sampled_from([None, ["email", "n"], ["secret"], ["n"]]),
        threshold=st.integers(-1, 100),
    )
    def check(rows, mask, columns, threshold):
        p = platforms[mask]
        path = p.root / "data" / "people.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["email", "secret", "n"])
            w.writerows(rows)
        ada = p.principal("ada")
        run = p.tracking.create_user_run(ada, "props", params={"threshold": threshold})
        mid = run.info.run_id
        req = ReadRequest(columns=columns, where=f"n > {threshold}")
        plan = p.catalog.plan(ada, "people", req, "read")
        table = plan.open().read_all()
        p.tracking.record_read(ada, plan, table.num_rows, mid)
        p.tracking.end_user_run(ada, mid, "FINISHED")
        record = json.dumps(p.tracking.client().get_run(mid).to_dictionary(), default=str)
        event = Serde.to_json(
            p.tracking.events.event(
                "succeeded", mid, "props", reads=p.tracking.reads_of(mid), output="x.ipynb"
            )
        )
        for email, secret, _ in rows:
            for value in (email, secret):
                # (a partial mask keeps the last 4 characters: the whole value never shows)
                assert value not in record, (mask, value)
                assert value not in event, (mask, value)
        assert "people" in record and "people" in event  # the read was recorded

    check()
    for p in platforms.values():
        p.close()
