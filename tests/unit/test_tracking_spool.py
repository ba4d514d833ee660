"""The bulk metric writer records exactly what MLflow's log_batch would, in a real store."""

from __future__ import annotations

import random

import pytest
from mlflow.entities import Metric

from jupyter_dataops.platform import Platform
from jupyter_dataops.settings import DataOps
from jupyter_dataops.tracking.spool import bulk_insert_metrics


def test_bulk_metrics_match_log_batch(tmp_path):
    p = Platform(DataOps(), tmp_path)
    c = p.tracking.client()
    ada = p.principal("ada")
    by_api = p.tracking.create_user_run(ada, "x").info.run_id
    by_bulk = p.tracking.create_user_run(ada, "x").info.run_id
    rnd = random.Random(7)
    values = [
        Metric(f"k{rnd.randint(0, 5)}", rnd.choice([rnd.random(), float("nan"), 1e400]),
               1000 + rnd.randint(0, 3), rnd.randint(0, 4))
        for _ in range(400)
    ]  # fmt: skip
    values += values[:60]  # logged twice: kept once
    for i in range(0, len(values), 100):
        c.log_batch(by_api, metrics=values[i : i + 100])
    store = c._tracking_client.store
    bulk_insert_metrics(store, by_bulk, values[:250])
    bulk_insert_metrics(store, by_bulk, values[250:])  # the latest across two calls
    api, bulk = c.get_run(by_api).data.metrics, c.get_run(by_bulk).data.metrics
    assert api.keys() == bulk.keys()
    for k in api:
        assert repr(api[k]) == repr(bulk[k])  # (nan == nan is False: compare their text)
        history = {
            r: sorted(repr((m.step, m.timestamp, m.value)) for m in c.get_metric_history(r, k))
            for r in (by_api, by_bulk)
        }
        assert history[by_api] == history[by_bulk]
    p.close()


@pytest.mark.postgres
def test_a_postgresql_store_holds_the_mlflow_store_too(tmp_path, pg_url):
    """Servers sharing a PostgreSQL metadata store share one MLflow store by default."""
    from sqlalchemy import create_engine, inspect

    settings = DataOps(db_url=pg_url)
    p = Platform(settings, tmp_path)
    assert p.tracking.uri.startswith("postgresql+psycopg://")
    ada = p.principal("ada")
    run = p.tracking.create_user_run(ada, "shared", params={"a": 1})
    p.tracking.log_batch(ada, run.info.run_id, [{"t": "m", "k": "m", "v": 2.0, "ts": 1, "s": 0}])
    other = Platform(DataOps(db_url=pg_url), tmp_path / "elsewhere")  # another server
    assert other.tracking.get(ada, run.info.run_id).experiment == "shared"
    assert other.tracking.client().get_run(run.info.run_id).data.metrics == {"m": 2.0}
    tables = set(
        inspect(
            create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
        ).get_table_names()
    )
    assert {"runs", "metrics", "dops_tracked_runs", "dops_runs"} <= tables
    p.close()
    other.close()
