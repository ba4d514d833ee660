"""Tracking end to end: job runs are MLflow runs in a real MLflow store (SQLite), written by
real kernels through the DataOps API's MLflow endpoint."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jupyter_dataops.store import tables as t

from .conftest import server_config
from .test_jobs import notebook, wait_for

pytestmark = pytest.mark.kernel

POLICY = """
admins: [root]
groups:
  analysts: {members: [ada]}
datasets:
  flights:
    owner: ada
    source: {type: csv, path: data/flights.csv}
  planes:
    owner: ada
    source: {type: csv, path: data/planes.csv}
    columns:
      owner_name: {classification: [pii]}
grants:
  - groups: [analysts]
    datasets: [flights, planes]
masks:
  - classifications: [pii]
    function: redact
"""


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


@pytest.fixture
def jp_server_config(store_url: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    extra = dict(getattr(request, "param", {}))
    if "mlflow_server" in request.fixturenames:
        extra["mlflow_tracking_uri"] = request.getfixturevalue("mlflow_server")
    return server_config(store_url, DataOps=extra)


@pytest.fixture
def tracked(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop):  # type: ignore[no-untyped-def]
    (jp_root_dir / "dataops.yaml").write_text(POLICY)
    data = jp_root_dir / "data"
    data.mkdir()
    (data / "flights.csv").write_text("carrier,dep_delay,tailnum\nAA,5,N1\nUA,70,N2\nAA,90,N3\n")
    (data / "planes.csv").write_text("tailnum,owner_name\nN1,Alice Secretowner\nN2,Bob Hidden\n")
    notebook(
        jp_root_dir / "nb" / "train.ipynb",
        "alpha = 0.5\nepochs = 3",
        "import mlflow\n"
        "for step in range(epochs):\n"
        "    mlflow.log_metric('loss', 1.0 / (step + 1), step=step)\n"
        "mlflow.log_param('optimizer', 'sgd')\n"
        "mlflow.set_tag('note', 'plain mlflow')\n"
        "mlflow.log_text('hello', 'extra/hello.txt')\n"
        "print('RUN', mlflow.active_run().info.run_id)",
    )
    notebook(jp_root_dir / "nb" / "fail.ipynb", "", "import mlflow\nmlflow.log_metric('x', 1)\n1/0")
    notebook(jp_root_dir / "nb" / "sleep.ipynb", "seconds = 60", "import time\ntime.sleep(seconds)")
    notebook(
        jp_root_dir / "nb" / "intrude.ipynb",
        "other = ''",
        "import json, mlflow\n"
        "from mlflow.tracking import MlflowClient\n"
        "c = MlflowClient()\n"
        "out = {}\n"
        "for name, call in [\n"
        "    ('metric', lambda: c.log_metric(other, 'stolen', 1.0)),\n"
        "    ('param', lambda: c.log_param(other, 'stolen', 'x')),\n"
        "    ('read', lambda: c.get_run(other)),\n"
        "    ('artifacts', lambda: c.list_artifacts(other)),\n"
        "    ('download', lambda: c.download_artifacts(other, 'notebook/input.ipynb', '.')),\n"
        "    ('create', lambda: c.create_run('0')),\n"
        "    ('own_tag', lambda: mlflow.set_tag('dataops.owner', 'mallory')),\n"
        "    ('own', lambda: mlflow.log_metric('fine', 1.0)),\n"
        "]:\n"
        "    try:\n"
        "        call(); out[name] = 'allowed'\n"
        "    except Exception as e:\n"
        "        out[name] = str(e)[:300]\n"
        "print('INTRUDE', json.dumps(out))",
    )
    jp_asyncio_loop.run_until_complete(
        jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    )
    return jp_serverapp.web_app.settings["dataops"]


def mlflow_run(platform: Any, run_id: str) -> Any:
    """The MLflow run of job run ``run_id``, once ended (it is ended right after the job
    run's own record is committed)."""
    import time

    with platform.store.session() as s:
        mid = s.scalar(select(t.TrackedRun.mlflow_run_id).where(t.TrackedRun.run_id == run_id))
    assert mid, f"run {run_id} has no MLflow run"
    deadline = time.monotonic() + 30
    while True:
        run = platform.tracking.client().get_run(mid)
        if run.info.status != "RUNNING" or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


async def submit(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    code, run = await api("POST", "runs", body)
    assert code == 201, run
    return await wait_for(api, run["id"])


async def test_a_job_run_is_one_mlflow_run_that_plain_mlflow_logs_into(tracked, api):
    code, job = await api("POST", "jobs", {"name": "trainer", "notebook_path": "nb/train.ipynb"})
    assert code == 201, job
    done = await submit(api, {"job": "trainer", "parameters": {"alpha": 0.25}})
    assert done["status"] == "succeeded", done
    run = mlflow_run(tracked, done["id"])
    client = tracked.tracking.client()
    assert client.get_experiment(run.info.experiment_id).name == "trainer"
    assert run.info.status == "FINISHED"
    assert run.data.params["alpha"] == "0.25" and run.data.params["epochs"] == "3"
    assert run.data.params["optimizer"] == "sgd"  # logged by the notebook itself
    tags = run.data.tags
    assert tags["dataops.run_id"] == done["id"] and tags["dataops.job"] == "trainer"
    assert tags["dataops.owner"] == "ada" and tags["dataops.attempt"] == "1"
    assert tags["dataops.notebook_path"] == "nb/train.ipynb"
    assert tags["dataops.notebook_hash"] == done["notebook_hash"]
    assert tags["mlflow.source.name"] == "nb/train.ipynb" and tags["note"] == "plain mlflow"
    assert tags["dataops.trigger"] == "api" and tags["dataops.executor"] == "local"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert run.data.metrics["dataops.duration_s"] > 0
    names = {a.path for a in client.list_artifacts(run.info.run_id, "notebook")}
    assert names >= {"notebook/input.ipynb", "notebook/output.ipynb"}
    assert client.list_artifacts(run.info.run_id, "extra")[0].path == "extra/hello.txt"
    executed = Path(client.download_artifacts(run.info.run_id, "notebook/output.ipynb"))
    assert f"RUN {run.info.run_id}" in executed.read_text()
    # Exactly one MLflow run for this job run.
    found = client.search_runs([run.info.experiment_id])
    assert [r.info.run_id for r in found] == [run.info.run_id]


async def test_failed_timed_out_and_cancelled_runs_say_so_in_mlflow(tracked, api):
    failed = await submit(api, {"notebook_path": "nb/fail.ipynb"})
    assert failed["status"] == "failed"
    run = mlflow_run(tracked, failed["id"])
    # The kernel's MLflow client ended the run FINISHED at exit; the server's word stands.
    assert run.info.status == "FAILED" and run.data.metrics["x"] == 1
    assert run.data.tags["dataops.status"] == "failed"
    timed = await submit(api, {"notebook_path": "nb/sleep.ipynb", "timeout_s": 2})
    assert timed["status"] == "timed_out"
    assert mlflow_run(tracked, timed["id"]).info.status == "FAILED"
    code, run = await api("POST", "runs", {"notebook_path": "nb/sleep.ipynb"})
    for _ in range(300):
        code, cur = await api("GET", f"runs/{run['id']}")
        if cur["progress"].get("cell", 0) >= 2:
            break
        await asyncio.sleep(0.1)
    code, cancelled = await api("POST", f"runs/{run['id']}/cancel")
    assert code == 200
    done = await wait_for(api, run["id"])
    assert done["status"] == "cancelled"
    mr = mlflow_run(tracked, run["id"])
    assert mr.info.status == "KILLED" and mr.info.end_time


async def test_a_job_kernel_writes_only_its_own_run(tracked, api):
    victim = await submit(api, {"notebook_path": "nb/train.ipynb"})
    other = mlflow_run(tracked, victim["id"]).info.run_id
    done = await submit(api, {"notebook_path": "nb/intrude.ipynb", "parameters": {"other": other}})
    assert done["status"] == "succeeded", done
    code, _ = await api("GET", f"runs/{done['id']}")
    log = (tracked.jobs.runs_dir / done["id"] / "output.ipynb").read_text()
    line = next(x for x in json.loads(log)["cells"][-1]["outputs"][0]["text"] if "INTRUDE" in x)
    out = json.loads(line.split("INTRUDE", 1)[1])
    for refused in ("metric", "param", "read", "artifacts", "download", "create", "own_tag"):
        assert out[refused] != "allowed", (refused, out)
    assert "own MLflow run" in out["metric"]
    assert out["own"] == "allowed"
    victim_run = tracked.tracking.client().get_run(other)
    assert "stolen" not in victim_run.data.metrics and "stolen" not in victim_run.data.params
    assert victim_run.data.tags["dataops.owner"] == "ada"
    mine = mlflow_run(tracked, done["id"])
    assert mine.data.metrics["fine"] == 1.0 and mine.data.tags["dataops.owner"] == "ada"


def cell_output(platform: Any, run_id: str, marker: str) -> Any:
    nb = json.loads((platform.jobs.runs_dir / run_id / "output.ipynb").read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            for line in out.get("text", []):
                if line.startswith(marker):
                    return json.loads(line[len(marker) :])
    raise AssertionError(f"{marker} not printed by run {run_id}")


async def test_lineage_of_a_job_that_pulls_two_datasets(tracked, api, jp_root_dir):
    notebook(
        jp_root_dir / "nb" / "two.ipynb",
        "",
        "import jupyter_dataops as dops\n"
        "f = dops.pull('flights', columns=['carrier', 'dep_delay'], where='dep_delay > 60')\n"
        "p = dops.pull('planes')\n"
        "dops.log_metric('rows', len(f) + len(p))",
    )
    done = await submit(api, {"notebook_path": "nb/two.ipynb"})
    assert done["status"] == "succeeded", done
    run = mlflow_run(tracked, done["id"])
    assert run.data.metrics["rows"] == 4
    inputs = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"flights", "planes"}
    flights = inputs["flights"]
    profile = json.loads(flights.profile)
    assert profile["num_rows"] == 2 and profile["filter"] == "dep_delay > 60"
    assert profile["columns"] == ["carrier", "dep_delay"]
    assert json.loads(inputs["planes"].profile)["masked_columns"] == ["owner_name"]
    code, ds = await api("GET", "datasets/flights")
    assert flights.digest == ds["versions"][0]["fingerprint"]
    # Never a value: the masked column's real values appear nowhere in the run's record.
    record = json.dumps(run.to_dictionary(), default=str)
    assert "Secretowner" not in record and "Hidden" not in record


async def in_kernel(serverapp: Any, code: str, env: dict[str, str], path: str = "nb") -> str:
    """Run ``code`` in a kernel of the server (as JupyterLab starts a notebook's); output."""
    import os

    km = serverapp.kernel_manager
    kernel_id = await km.start_kernel(kernel_name="python3", path=path, env={**os.environ, **env})
    client = km.get_kernel(kernel_id).client()
    client.start_channels()
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    try:
        await client.wait_for_ready(timeout=60)
        await client.execute_interactive(code, output_hook=hook, timeout=120)
    finally:
        client.stop_channels()
        await km.shutdown_kernel(kernel_id, now=True)
    return "".join(out)


def printed(text: str, marker: str = "RESULT") -> Any:
    assert f"{marker} " in text, text
    return json.loads(text.split(f"{marker} ", 1)[1].splitlines()[0])


INTERACTIVE = """
import json, jupyter_dataops as dops
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
with dops.run("tuning", params={"alpha": 0.1, "layers": [2, 3]}) as run:
    for step in range(50):
        dops.log_metric("loss", 1 / (step + 1), step=step)
    dops.log_metrics({"precision": 0.9, "recall": 0.8})
    dops.set_tag("model", "ridge")
    df = dops.pull("flights", columns=["carrier"])
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    dops.log_figure(fig, "plots/curve.png")
try:
    dops.log_metric("late", 1.0)
    late = "allowed"
except dops.DataOpsClientError as e:
    late = str(e)
print("RESULT " + json.dumps({"id": run.id, "status": run.status, "late": late}))
"""


async def test_a_notebook_tracks_a_run_with_dops_run(tracked, jp_serverapp, jp_root_dir, tmp_path):
    (jp_root_dir / "nb").mkdir(exist_ok=True)
    (jp_root_dir / "nb" / "tune.ipynb").write_text('{"cells": [], "metadata": {}}')
    env = {"JPY_SESSION_NAME": "nb/tune.ipynb", "DATAOPS_SPOOL_DIR": str(tmp_path / "spool")}
    result = printed(await in_kernel(jp_serverapp, INTERACTIVE, env))
    assert result["status"] == "FINISHED"
    assert "has ended (FINISHED)" in result["late"] and "dops.run" in result["late"]
    client = tracked.tracking.client()
    run = client.get_run(result["id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "tuning"
    assert run.data.params == {"alpha": "0.1", "layers": "[2, 3]"}
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")][:2] == [1, 0.5]
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 50
    assert run.data.metrics["precision"] == 0.9 and run.data.tags["model"] == "ridge"
    tags = run.data.tags
    import hashlib

    digest = hashlib.sha256((jp_root_dir / "nb" / "tune.ipynb").read_bytes()).hexdigest()
    assert tags["mlflow.source.name"] == "nb/tune.ipynb" and tags["dataops.owner"] == "ada"
    assert tags["dataops.notebook_hash"] == digest
    assert [a.path for a in client.list_artifacts(run.info.run_id, "plots")] == ["plots/curve.png"]
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["flights"]
    assert not list((tmp_path / "spool").glob("*.jsonl"))  # all sent: nothing kept


async def test_values_logged_before_the_kernel_dies_are_not_lost(tracked, jp_serverapp, tmp_path):
    env = {"DATAOPS_SPOOL_DIR": str(tmp_path / "spool")}
    dying = (
        "import json, os, jupyter_dataops as dops\n"
        "from jupyter_dataops.client import tracking\n"
        "tracking.FLUSH_EVERY_S = 3600  # nothing is sent before the kernel dies\n"
        "tracking.BATCH = 10**9\n"
        "run = dops.run('crashy')\n"
        "for i in range(500):\n"
        "    dops.log_metric('m', i, step=i)\n"
        "print('RESULT ' + json.dumps({'id': run.id}), flush=True)\n"
    )  # then the kernel is killed (in_kernel's shutdown_kernel(now=True)): no atexit runs
    result = printed(await in_kernel(jp_serverapp, dying, env))
    client = tracked.tracking.client()
    assert len(client.get_metric_history(result["id"], "m")) == 0  # really unsent
    assert list((tmp_path / "spool").glob(f"{result['id']}.*.jsonl"))
    nxt = (
        "import json, threading, jupyter_dataops as dops\n"
        "with dops.run('other'):\n"
        "    pass\n"
        "for t in threading.enumerate():\n"
        "    if t.name == 'dataops-recover':\n"
        "        t.join(60)\n"
        "print('RESULT {}')\n"
    )
    await in_kernel(jp_serverapp, nxt, env)
    history = client.get_metric_history(result["id"], "m")
    assert sorted(m.value for m in history) == list(range(500))
    assert client.get_run(result["id"]).info.status == "FAILED"  # its kernel died in it


@pytest.mark.parametrize("jp_server_config", [{"token_ttl": 3.0}], indirect=True)
async def test_plain_mlflow_outlives_the_run_token_s_lifetime(tracked, api, jp_root_dir):
    # The run's token lives 3 s here; the notebook logs 7 s in, with plain MLflow.
    notebook(
        jp_root_dir / "nb" / "long.ipynb",
        "",
        "import time, mlflow\ntime.sleep(7)\nmlflow.log_metric('late', 2)",
    )
    done = await submit(api, {"notebook_path": "nb/long.ipynb"})
    assert done["status"] == "succeeded", done["error"]
    assert mlflow_run(tracked, done["id"]).data.metrics["late"] == 2


SCHEMA = Path(__file__).parent.parent / "data" / "openlineage" / "OpenLineage.json"


async def lineage_events(platform: Any, run_id: str, n: int) -> list[dict[str, Any]]:
    """The OpenLineage events of run ``run_id`` in the default file, once ``n`` are there."""
    import uuid

    path = platform.state_dir / "openlineage" / "events.jsonl"
    want = str(uuid.UUID(hex=run_id))
    for _ in range(200):
        events = []
        if path.exists():
            events = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        mine = [e for e in events if e["run"]["runId"] == want]
        if len(mine) >= n:
            return mine
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(mine)} OpenLineage events of {run_id}, expected {n}")


def validate(event: dict[str, Any]) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(event, schema, cls=jsonschema.Draft202012Validator)


async def test_openlineage_events_of_job_runs_validate_against_the_schema(
    tracked, api, jp_root_dir
):
    notebook(
        jp_root_dir / "nb" / "two.ipynb",
        "",
        "import jupyter_dataops as dops\n"
        "f = dops.pull('flights', columns=['carrier', 'dep_delay'])\n"
        "p = dops.pull('planes')",
    )
    done = await submit(api, {"notebook_path": "nb/two.ipynb"})
    start, complete = await lineage_events(tracked, done["id"], 2)
    for e in (start, complete):
        validate(e)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert complete["job"] == {"namespace": "jupyter-dataops", "name": "nb/two.ipynb", "facets": {}}
    inputs = {i["name"]: i for i in complete["inputs"]}
    assert set(inputs) == {"flights", "planes"}
    code, ds = await api("GET", "datasets/flights")
    assert (
        inputs["flights"]["facets"]["version"]["datasetVersion"] == ds["versions"][0]["fingerprint"]
    )
    assert [f["name"] for f in inputs["flights"]["facets"]["schema"]["fields"]] == [
        "carrier", "dep_delay",
    ]  # fmt: skip
    assert complete["outputs"][0]["name"] == f"runs/{done['id']}/output.ipynb"
    failed = await submit(api, {"notebook_path": "nb/fail.ipynb"})
    _, fail = await lineage_events(tracked, failed["id"], 2)
    validate(fail)
    assert fail["eventType"] == "FAIL"
    assert "ZeroDivisionError" in fail["run"]["facets"]["errorMessage"]["message"]
    assert "Secretowner" not in json.dumps([start, complete, fail])


async def test_lineage_endpoint_answers_both_ways(tracked, api, jp_root_dir):
    notebook(
        jp_root_dir / "nb" / "two.ipynb",
        "",
        "import jupyter_dataops as dops\n"
        "f = dops.pull('flights', columns=['carrier'], where=\"carrier = 'AA'\")\n"
        "p = dops.pull('planes')",
    )
    done = await submit(api, {"notebook_path": "nb/two.ipynb"})
    mlflow_run(tracked, done["id"])  # its artifacts are logged when its MLflow run ends
    code, by_run = await api("GET", f"lineage?run={done['id']}")
    assert code == 200, by_run
    assert by_run["run"]["run_id"] == done["id"]
    assert [(r["dataset"], r["row_count"], r["is_current"]) for r in by_run["reads"]] == [
        ("flights", 2, True), ("planes", 2, True),
    ]  # fmt: skip
    assert "notebook/output.ipynb" in by_run["outputs"]
    code, by_ds = await api("GET", "lineage?dataset=flights")
    assert code == 200 and [r["run_id"] for r in by_ds["reads"]] == [done["id"]]
    assert by_ds["reads"][0]["filter"] == "carrier = 'AA'"
    (jp_root_dir / "data" / "flights.csv").write_text("carrier,dep_delay,tailnum\nAA,6,N1\n")
    await api("POST", "datasets/flights/refresh")
    code, by_ds = await api("GET", "lineage?dataset=flights")
    assert by_ds["reads"][0]["is_current"] is False
    code, err = await api("GET", "lineage?dataset=nope")
    assert code == 404 and "nope" in err["error"]["message"]
    code, err = await api("GET", "lineage?run=0123456789abcdef0123456789abcdef")
    assert code == 404
    code, err = await api("GET", "lineage")
    assert code == 400


def _seed(platform: Any) -> list[str]:
    """Three runs of ada's in experiment "tuning", one of bob's."""
    tr = platform.tracking
    ids = []
    for alpha, rmse in ((0.1, 3.0), (0.2, 1.5), (0.3, 2.0)):
        run = tr.create_user_run(platform.principal("ada"), "tuning", params={"alpha": alpha,
                                 "model": "ridge"})  # fmt: skip
        for step in range(3):
            tr.client().log_metric(run.info.run_id, "rmse", rmse + 1 - step / 2, step=step)
        tr.client().log_metric(run.info.run_id, "rmse", rmse, step=3)
        tr.end_user_run(platform.principal("ada"), run.info.run_id, "FINISHED")
        ids.append(run.info.run_id)
    tr.create_user_run(platform.principal("bob"), "tuning", params={"alpha": 9})
    return ids


async def test_experiments_runs_search_history_and_errors(tracked, api):
    ids = _seed(tracked)
    code, body = await api("GET", "experiments")
    assert code == 200 and [(e["name"], e["runs"]) for e in body["experiments"]] == [("tuning", 3)]
    eid = body["experiments"][0]["id"]
    code, found = await api(
        "GET", f"experiments/{eid}/runs?filter=metrics.rmse < 2.5&order_by=metrics.rmse ASC"
    )
    assert code == 200, found
    assert [r["mlflow_run_id"] for r in found["runs"]] == [ids[1], ids[2]]
    assert found["runs"][0]["params"] == {"alpha": "0.2", "model": "ridge"}
    assert found["runs"][0]["metrics"]["rmse"] == 1.5
    code, by_name = await api("GET", "experiments/tuning/runs")
    assert len(by_name["runs"]) == 3  # bob's run is not ada's to see
    code, err = await api(
        "GET", f"experiments/{eid}/runs?filter=metrics.rmse < 2 AND params.alpha = 0.1"
    )
    assert code == 400
    assert err["error"]["details"]["position"] == 22  # params.alpha starts there
    assert "position 22" in err["error"]["message"] and "quoted" in err["error"]["message"]
    code, err = await api("GET", f"experiments/{eid}/runs?order_by=bogus")
    assert code == 400 and err["error"]["details"]["field"] == "order_by"
    code, err = await api("GET", "experiments/nope/runs")
    assert code == 404 and "nope" in err["error"]["message"]
    code, hist = await api("GET", f"tracking/runs/{ids[0]}/metrics/rmse")
    assert code == 200 and [p["value"] for p in hist["points"]] == [4.0, 3.5, 3.0, 3.0]
    code, err = await api("GET", f"tracking/runs/{ids[0]}/metrics/nope")
    assert code == 404 and "rmse" in err["error"]["message"]
    code, err = await api("GET", "tracking/runs/0123456789abcdef0123456789abcdef")
    assert code == 404
    code, detail = await api("GET", f"tracking/runs/{ids[0]}")
    assert code == 200 and detail["summary"]["params"]["alpha"] == "0.1"


async def test_dops_compare_returns_a_dataframe(tracked, jp_serverapp, tmp_path):
    ids = _seed(tracked)
    code = (
        "import json, jupyter_dataops as dops\n"
        "df = dops.compare('tuning', order_by='metrics.rmse ASC')\n"
        "few = dops.compare('tuning', filter='params.alpha = \\'0.3\\'')\n"
        "print('RESULT ' + json.dumps({'cols': list(df.columns), 'ids': list(df.run_id),\n"
        "      'rmse': list(df['metrics.rmse']), 'few': list(few.run_id)}))\n"
    )
    result = printed(await in_kernel(jp_serverapp, code, {"DATAOPS_SPOOL_DIR": str(tmp_path)}))
    assert result["ids"] == [ids[1], ids[2], ids[0]] and result["rmse"] == [1.5, 2.0, 3.0]
    assert {"run_id", "name", "status", "params.alpha", "params.model", "metrics.rmse"} <= set(
        result["cols"]
    )
    assert result["few"] == [ids[2]]


async def test_reproduce_reruns_the_snapshot_and_reports_changed_datasets(
    tracked, api, jp_root_dir
):
    from jupyter_dataops.cli import ReproduceApp
    from jupyter_dataops.models import ReproduceResponse

    nb = notebook(
        jp_root_dir / "nb" / "report.ipynb",
        "threshold = 60",
        "import jupyter_dataops as dops\n"
        "f = dops.pull('flights', where=f'dep_delay > {threshold}')\n"
        "p = dops.pull('planes')\n"
        "dops.log_metric('late', len(f))",
    )
    first = await submit(api, {"notebook_path": "nb/report.ipynb", "parameters": {"threshold": 10}})
    assert first["status"] == "succeeded", first["error"]
    # In between: one dataset changes, and so does the notebook (the snapshot is what re-runs).
    (jp_root_dir / "data" / "flights.csv").write_text(
        "carrier,dep_delay,tailnum\nAA,5,N1\nUA,71,N2\nAA,90,N3\n"
    )
    notebook(nb, "threshold = 60", "raise RuntimeError('edited since')")
    mid = mlflow_run(tracked, first["id"]).info.run_id
    code, out = await api("POST", f"tracking/runs/{mid}/reproduce")
    assert code == 201, out
    states = {d["dataset"]: d["is_current"] for d in out["datasets"]}
    assert states == {"flights": False, "planes": True} and out["changed"] == ["flights"]
    assert out["reproduces"] == first["id"] and out["run"]["trigger"] == "reproduce"
    text = ReproduceApp.report(ReproduceResponse.model_validate(out))
    assert "flights" in text and "CHANGED" in text and "planes" in text
    done = await wait_for(api, out["run"]["id"])
    assert done["status"] == "succeeded", done["error"]  # the snapshot, not the edited notebook
    assert (
        done["parameters"] == {"threshold": 10} and done["notebook_hash"] == first["notebook_hash"]
    )
    assert mlflow_run(tracked, done["id"]).data.metrics["late"] == 2


@pytest.fixture
def mlflow_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real `mlflow server` on 127.0.0.1 (needs the full `mlflow`, the [mlflow] extra)."""
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("flask", reason="`mlflow server` needs the full mlflow package")
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("no mlflow command")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tmp_path / "mlflow-server"
    d.mkdir()
    log = open(d / "server.log", "wb")
    proc = subprocess.Popen(
        [exe, "server", "--backend-store-uri", f"sqlite:///{d / 'db.sqlite'}",
         "--artifacts-destination", str(d / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=d,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((d / "server.log").read_text()[-2000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def remote(mlflow_server, jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop):  # type: ignore[no-untyped-def]
    platform = jp_serverapp.web_app.settings["dataops"]
    assert platform.tracking.uri == mlflow_server
    notebook(
        jp_root_dir / "nb" / "train.ipynb",
        "alpha = 0.5",
        "import mlflow, jupyter_dataops as dops\n"
        "mlflow.log_metric('plain', 1.0)\n"
        "mlflow.log_text('hello', 'extra/hello.txt')\n"
        "dops.log_metric('batched', 2.0)",
    )
    jp_asyncio_loop.run_until_complete(
        jp_serverapp.extension_manager.start_extension("jupyter_dataops")
    )
    return platform


async def test_a_real_mlflow_server_as_the_tracking_uri(remote, api, mlflow_server):
    from mlflow.tracking import MlflowClient

    done = await submit(api, {"notebook_path": "nb/train.ipynb"})
    assert done["status"] == "succeeded", done["error"]
    mid = mlflow_run(remote, done["id"]).info.run_id  # (once ended)
    server = MlflowClient(tracking_uri=mlflow_server)  # what the MLflow UI shows
    run = server.get_run(mid)
    assert run.info.status == "FINISHED" and run.data.params["alpha"] == "0.5"
    assert run.data.metrics["plain"] == 1.0 and run.data.metrics["batched"] == 2.0
    assert run.data.tags["dataops.run_id"] == done["id"]
    paths = {a.path for a in server.list_artifacts(mid, "notebook")}
    assert "notebook/output.ipynb" in paths
    assert server.list_artifacts(mid, "extra")[0].path == "extra/hello.txt"


async def test_a_kernel_inside_a_tracked_run_says_so(tracked, jp_serverapp, api, tmp_path):
    import os

    km = jp_serverapp.kernel_manager
    env = {**os.environ, "DATAOPS_SPOOL_DIR": str(tmp_path)}
    kernel_id = await km.start_kernel(kernel_name="python3", env=env)
    client = km.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        code, body = await api("GET", f"tracking/kernels/{kernel_id}")
        assert code == 200 and body["run"] is None
        await client.execute_interactive(
            "import jupyter_dataops as dops\nrun = dops.run('toolbar')", timeout=60
        )
        code, body = await api("GET", f"tracking/kernels/{kernel_id}")
        assert body["run"]["experiment"] == "toolbar" and body["run"]["status"] == "RUNNING"
        await client.execute_interactive("run.end()", timeout=60)
        code, body = await api("GET", f"tracking/kernels/{kernel_id}")
        assert body["run"] is None
    finally:
        client.stop_channels()
        await km.shutdown_kernel(kernel_id, now=True)


async def test_a_job_logs_a_model_and_autologs_with_plain_mlflow(tracked, api, jp_root_dir):
    notebook(
        jp_root_dir / "nb" / "model.ipynb",
        "",
        "import mlflow, mlflow.pyfunc\n"
        "class Doubler(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input):\n"
        "        return model_input * 2\n"
        "info = mlflow.pyfunc.log_model(name='doubler', python_model=Doubler())\n"
        "loaded = mlflow.pyfunc.load_model(info.model_uri)\n"
        "import pandas as pd\n"
        "print('PRED', loaded.predict(pd.DataFrame({'x': [1, 2]}))['x'].tolist())\n"
        "mlflow.autolog(disable=False)\n"
        "from sklearn.linear_model import LinearRegression\n"
        "LinearRegression().fit([[0], [1], [2]], [0, 1, 2])",
    )
    done = await submit(api, {"notebook_path": "nb/model.ipynb"})
    assert done["status"] == "succeeded", done["error"]
    run = mlflow_run(tracked, done["id"])
    client = tracked.tracking.client()
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert {m.name for m in models} >= {"doubler"}
    assert all(m.source_run_id == run.info.run_id for m in models)
    assert "fit_intercept" in run.data.params  # autolog's
    assert cell_output(tracked, done["id"], "PRED ") == [2, 4]  # loaded back through the API
