"""Benchmark: what tracking costs, and how much faster ``dops.log_metric`` is than MLflow's
one-by-one ``mlflow.log_metric``.

Starts a real Jupyter server with jupyter_dataops (its embedded MLflow store, SQLite) and
measures, each in a job run (a real job kernel):

  (a) 10,000 metric values (``--steps`` x ``--metrics``, default 100 x 100) through
      ``dops.log_metric``, timed from the first call until ``dops.flush()`` returned (every
      value is in MLflow then; the benchmark checks that all of them are);
  (b) the same values through plain one-by-one ``mlflow.log_metric`` against the same kind of
      store, an MLflow SQLite file store of the job's own (what RECIPES §3 measured at about
      4 ms a call); and, for reference, (b') through the job's default tracking URI, the
      DataOps API's MLflow endpoint (what an unchanged notebook does here), on a tenth of
      the values (it is one HTTP round trip per value), scaled to 10,000.
  Ratio b/a: target >= 30.

Then the cost tracking adds to one trivial job run: the single-run latency of
``bench/jobs.py``'s trivial notebook (submit -> finished_at, p50 of ``--single`` runs) with
tracking on against a second server with ``c.DataOps.track_runs = False``. Target: the
difference under 10% of the untracked p50.

Then the content fingerprint of ``bench/pull.py``'s 10M-row Parquet file (made when missing):
a cold hash (the file is new or changed) and a warm look (its identity unchanged: a stat).

Usage::

    python bench/tracking.py [--steps 100] [--metrics 100] [--single 20] [--rows 10000000]
                             [--only logging,jobrun,fingerprint]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from _server import free_port, http, start, stop, wait_ready

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "tracking"
USER = "bench"
TARGET_RATIO = 30.0
TARGET_OVERHEAD = 0.10


def notebook(path: Path, params: str, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(code)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


BATCHED = """\
import time, json, jupyter_dataops as dops
values = [[(m * 0.001 + s) for m in range(metrics)] for s in range(steps)]
t = time.perf_counter()
for s in range(steps):
    for m in range(metrics):
        dops.log_metric(f"m{m}", values[s][m], step=s)
dops.flush()
print("TIME", json.dumps(time.perf_counter() - t))
"""

ONE_BY_ONE = """\
import time, json, os, tempfile, mlflow
from mlflow.tracking import MlflowClient
if store == "sqlite":
    d = tempfile.mkdtemp(prefix="bench-mlflow-")
    mlflow.set_tracking_uri(f"sqlite:///{d}/mlflow.db")
    os.environ.pop("MLFLOW_RUN_ID", None)
    mlflow.set_experiment("one-by-one")  # creates the tables: not timed
    mlflow.start_run()
mlflow.log_metric("warm-up", 0.0)
n = steps * metrics
t = time.perf_counter()
for s in range(steps):
    for m in range(metrics):
        mlflow.log_metric(f"m{m}", m * 0.001 + s, step=s)
elapsed = time.perf_counter() - t
rid = mlflow.active_run().info.run_id
logged = sum(len(MlflowClient().get_metric_history(rid, f"m{m}")) for m in range(metrics))
print("TIME", json.dumps({"s": elapsed, "logged": logged, "n": n}))
"""


class Server:
    def __init__(self, name: str, *extra: str) -> None:
        self.root = WORK / name
        shutil.rmtree(self.root, ignore_errors=True)
        (self.root / "nb").mkdir(parents=True)
        notebook(self.root / "nb" / "batched.ipynb", "steps = 100\nmetrics = 100", BATCHED)
        notebook(
            self.root / "nb" / "one.ipynb",
            "steps = 100\nmetrics = 100\nstore = 'sqlite'",
            ONE_BY_ONE,
        )
        notebook(self.root / "nb" / "trivial.ipynb", "x = 1", "print(x)")
        self.token = secrets.token_hex(16)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        self.api = self.url + "dataops/api/v1/"
        self.log = WORK / f"{name}-server.log"
        self.proc: subprocess.Popen[bytes] | None = start(
            self.root, port, self.token, USER, self.log, *extra
        )
        wait_ready(self.url, self.token, self.proc, self.log)
        time.sleep(3)  # the warm runners and the MLflow store are ready

    def close(self) -> None:
        stop(self.proc)
        self.proc = None

    def run(self, nb: str, params: dict[str, Any], poll: float = 0.02) -> dict[str, Any]:
        t0 = time.time()
        run = http("POST", self.api + "runs", self.token,
                   {"notebook_path": f"nb/{nb}.ipynb", "parameters": params})  # fmt: skip
        while run["status"] not in ("succeeded", "failed", "cancelled", "timed_out"):
            time.sleep(poll)
            run = http("GET", self.api + f"runs/{run['id']}", self.token)
        if run["status"] != "succeeded":
            raise RuntimeError(f"run {run['id']} {run['status']}: {run.get('error')}")
        run["_submitted"] = t0
        run["_observed"] = time.time() - t0  # includes ending the MLflow run (after finished_at)
        return run

    def printed(self, run: dict[str, Any]) -> Any:
        nb = json.loads((self.root / ".dataops" / "runs" / run["id"] / "output.ipynb").read_text())
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                for line in out.get("text", []):
                    if line.startswith("TIME "):
                        return json.loads(line[5:])
        raise RuntimeError(f"run {run['id']} printed no TIME")


def logging_bench(steps: int, metrics: int) -> None:
    s = Server("logging")
    try:
        n = steps * metrics
        params = {"steps": steps, "metrics": metrics}
        s.run("batched", {"steps": 2, "metrics": 2})  # warm-up (imports, first experiment)
        batched = s.run("batched", params)
        t_batched = float(s.printed(batched))
        # All values are in MLflow when dops.flush() returned: count them.
        from mlflow.tracking import MlflowClient

        db = s.root / ".dataops" / "mlflow" / "mlflow.db"
        client = MlflowClient(tracking_uri=f"sqlite:///{db}")
        with_ids = http("GET", s.api + f"lineage?run={batched['id']}", s.token)
        mid = with_ids["run"]["mlflow_run_id"]
        landed = sum(len(client.get_metric_history(mid, f"m{m}")) for m in range(metrics))
        one = s.run("one", {**params, "store": "sqlite"})
        b = s.printed(one)
        small = max(1, steps // 10)
        proxy = s.run("one", {"steps": small, "metrics": metrics, "store": "endpoint"})
        p = s.printed(proxy)
    finally:
        s.close()
    scaled = p["s"] * n / p["n"]
    print(f"\n== {n:,} metric values ({steps} steps x {metrics} metrics) from a job kernel ==")
    print(f"(a) dops.log_metric, batched, until flushed : {t_batched:8.3f} s "
          f"({landed:,} of {n:,} values in MLflow)")  # fmt: skip
    print(f"(b) mlflow.log_metric one by one, SQLite    : {b['s']:8.3f} s "
          f"({b['logged']:,} logged; {1000 * b['s'] / n:.2f} ms a call)")  # fmt: skip
    print(f"(b') mlflow.log_metric one by one, via the DataOps MLflow endpoint: "
          f"{p['s']:.3f} s for {p['n']:,} -> {scaled:.1f} s for {n:,} "
          f"({1000 * p['s'] / p['n']:.2f} ms a call)")  # fmt: skip
    ratio = b["s"] / t_batched
    print(
        f"ratio b/a: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}); b'/a: {scaled / t_batched:.1f}x"
    )
    if landed != n:
        print(f"WARNING: only {landed} of {n} batched values reached MLflow")


def job_run_bench(single: int) -> None:
    def p50(xs: list[float]) -> float:
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    from datetime import datetime, timezone

    def latency(run: dict[str, Any]) -> float:
        f = datetime.fromisoformat(run["finished_at"].replace("Z", "+00:00"))
        if f.tzinfo is None:
            f = f.replace(tzinfo=timezone.utc)
        return f.timestamp() - run["_submitted"]

    results: dict[str, list[float]] = {}
    observed: dict[str, list[float]] = {}
    parts: dict[str, list[list[float]]] = {}

    def stamp(run: dict[str, Any], key: str) -> float:
        v = datetime.fromisoformat(run[key].replace("Z", "+00:00"))
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).timestamp()

    # Both servers up, their runs alternating: the machine's load (2 shared cores) weighs on
    # both alike.
    servers = {}
    try:
        for name, extra in (("tracked", ()), ("untracked", ("--DataOps.track_runs=False",))):
            servers[name] = Server(f"jobrun-{name}", *extra)
        for s in servers.values():
            s.run("trivial", {"x": 1})  # warm-up
        for _ in range(single):
            for name, s in servers.items():
                time.sleep(1.0)  # the warm pool back to steady state (as bench/jobs.py)
                run = s.run("trivial", {"x": 1}, poll=0.005)
                results.setdefault(name, []).append(latency(run))
                observed.setdefault(name, []).append(run["_observed"])
                parts.setdefault(name, []).append(
                    [stamp(run, "started_at") - stamp(run, "created_at"),
                     stamp(run, "finished_at") - stamp(run, "started_at")]
                )  # fmt: skip
    finally:
        for s in servers.values():
            s.close()
    print(f"\n== one trivial job run (bench/jobs.py's notebook), p50 of {single} ==")
    print("                                   submit->finished_at  submit->seen done (5 ms polls)")
    for name, label in (("tracked", "tracked (an MLflow run)"),
                        ("untracked", "untracked (track_runs = False)")):  # fmt: skip
        print(f"{label:35s}{p50(results[name]):10.3f} s {p50(observed[name]):14.3f} s")
    for name in ("tracked", "untracked"):
        q, r = (p50([x[i] for x in parts[name]]) for i in (0, 1))
        print(
            f"  {name}: created->started (queue, claim) {1000 * q:.1f} ms, "
            f"started->finished {1000 * r:.1f} ms"
        )
    for what, data in (("submit->finished_at", results), ("submit->seen done", observed)):
        on, off = p50(data["tracked"]), p50(data["untracked"])
        extra_s = on - off
        print(f"tracking adds {1000 * extra_s:.1f} ms = {100 * extra_s / off:.1f}% ({what}; "
              f"target < {100 * TARGET_OVERHEAD:.0f}%: "
              f"{'met' if extra_s < TARGET_OVERHEAD * off else 'NOT met'})")  # fmt: skip


def fingerprint_bench(rows: int) -> None:
    sys.path.insert(0, str(HERE))
    import pull  # bench/pull.py: the same 10M-row file

    path = pull.make_data(rows)
    size = path.stat().st_size
    from jupyter_dataops.catalog.fingerprints import FingerprintCache
    from jupyter_dataops.store import Store

    d = WORK / "fingerprint"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    store = Store(f"sqlite:///{d / 'dataops.db'}")
    store.migrate()
    cache = FingerprintCache(store)
    t = time.perf_counter()
    cache.digest(path)
    cold = time.perf_counter() - t
    warm = []
    for _ in range(20):
        t = time.perf_counter()
        cache.digest(path)
        warm.append(time.perf_counter() - t)
    fresh = FingerprintCache(store)  # another server, or a restart: the store's copy
    t = time.perf_counter()
    fresh.digest(path)
    restart = time.perf_counter() - t
    store.close()
    print(f"\n== content fingerprint of {path.name} ({rows:,} rows, {size / 1e6:.0f} MB) ==")
    print(f"cold (hashed: new or changed file): {cold:.3f} s ({size / 1e6 / cold:.0f} MB/s)")
    print(f"warm (same identity, a stat)      : {1e6 * sorted(warm)[10]:.0f} us")
    print(f"after a restart (the store's copy): {1000 * restart:.1f} ms")
    print("(hashed in the background when the file changes: c.DataOps.observe_interval)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--metrics", type=int, default=100)
    ap.add_argument("--single", type=int, default=20)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--only", default="logging,jobrun,fingerprint")
    args = ap.parse_args()
    only = set(args.only.split(","))
    WORK.mkdir(parents=True, exist_ok=True)
    if "logging" in only:
        logging_bench(args.steps, args.metrics)
    if "jobrun" in only:
        job_run_bench(args.single)
    if "fingerprint" in only:
        fingerprint_bench(args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
