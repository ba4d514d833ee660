"""Benchmark: parameterized notebook runs on the local executor against the alternatives.

Writes two notebooks into ``bench/.work/jobs/`` (git-ignored) -- ``trivial`` (a ``parameters``
cell ``x = 1`` and ``print(x)``) and ``pandas`` (``n = 1000``, a DataFrame of n rows, a
groupby, a print) -- and measures, for each notebook and each contender:

  dataops    a real Jupyter server with jupyter_dataops (local executor, warm runners),
             driven through ``POST/GET /dataops/api/v1/runs``;
  preload    the same server with ``c.DataOps.kernel_preload = ["pandas"]`` (opt-in: the fork
             server imports pandas once for all kernels); not part of the targets;
  cli        the ``papermill`` CLI, one subprocess per job;
  api        ``papermill.execute_notebook`` in a loop, in this process;
  scheduler  jupyter-scheduler, installed into its own venv (``bench/.work/jsched-venv``,
             reused when present), a real server driven through ``/scheduler/jobs``.

Single: one warm-up job, then ``--single`` measured jobs one after another (the server
contenders get ``--gap`` seconds between jobs so their pools are back to steady state).
Latency = submit to output written. Burst: ``--n`` jobs submitted at once; total time until
the last is done, per-job latency (p50/p95, from the common submit instant) and jobs/s. The
in-process contenders have no queue, so their burst is ``--n`` jobs in a row.

How latency is taken:
  dataops    submit = wall clock just before the POST; done = the run's ``finished_at`` (set
             by the server after the output notebook is written). The single-run loop also
             polls ``GET /runs/<id>`` every 20 ms and reports the client-observed latency;
             the burst polls ``GET /runs`` every 100 ms for the total.
  scheduler  the same, with the job's ``end_time`` (ms), polling ``GET /scheduler/jobs/<id>``
             every 100 ms (single) / 200 ms (burst).
  cli/api    wall clock around the call (the output file is written when it returns).

Usage::

    python bench/jobs.py [--n 30] [--only dataops,preload,cli,api,scheduler]
                         [--notebooks trivial,pandas]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
from _server import free_port, http, start, stop, wait_ready

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "jobs"
NB_DIR = WORK / "nb"
JSCHED_VENV = HERE / ".work" / "jsched-venv"
USER = "bench"
CONTENDERS = ("dataops", "preload", "cli", "api", "scheduler")
KINDS = ("trivial", "pandas")
TARGET_API = 3.0
TARGET_CLI = 10.0
TARGET_SCHED = 6.0

NOTEBOOKS = {
    "trivial": ("x = 1", ["print(x)"]),
    "pandas": (
        "n = 1000",
        [
            "import pandas as pd\n"
            "df = pd.DataFrame({'k': [i % 7 for i in range(n)], 'v': range(n)})\n"
            "print(df.groupby('k')['v'].agg(['count', 'sum', 'mean']))"
        ],
    ),
}


def param(kind: str) -> tuple[str, int]:
    return ("x", 1) if kind == "trivial" else ("n", 1000)


# notebooks --------------------------------------------------------------------------------------
def write_notebooks() -> dict[str, Path]:
    NB_DIR.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, (params, cells) in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "language": "python",
            "display_name": "Python 3",
        }
        p = nbformat.v4.new_code_cell(params)
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, *(nbformat.v4.new_code_cell(c) for c in cells)]
        path = NB_DIR / f"{kind}.ipynb"
        nbformat.write(nb, path)
        paths[kind] = path
    return paths


# stats ------------------------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class Result:
    single: list[float] = field(default_factory=list)
    burst_total: float = float("nan")
    burst: list[float] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# http + servers ---------------------------------------------------------------------------------
def parse_ts(v: str | None) -> float | None:
    if not v:
        return None
    d = datetime.fromisoformat(v.replace("Z", "+00:00"))
    if d.tzinfo is None:  # SQLite drops the zone; the server stores UTC
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


# (1) dataops ------------------------------------------------------------------------------------
class DataOps:
    name = "dataops"
    TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")

    extra_args: tuple[str, ...] = ()

    def __init__(self, warmup_s: float) -> None:
        self.root = WORK / f"{self.name}-root"
        shutil.rmtree(self.root, ignore_errors=True)  # a fresh store every run
        (self.root / "nb").mkdir(parents=True)
        for p in NB_DIR.glob("*.ipynb"):
            shutil.copy(p, self.root / "nb" / p.name)
        self.token = secrets.token_hex(16)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        self.api = self.url + "dataops/api/v1/"
        self.log = WORK / f"{self.name}-server.log"
        self.proc: subprocess.Popen[bytes] | None = start(
            self.root, port, self.token, USER, self.log, *self.extra_args
        )
        try:
            wait_ready(self.url, self.token, self.proc, self.log)
            time.sleep(warmup_s)  # let the warm pool fill
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        stop(self.proc)
        self.proc = None

    def submit(self, kind: str) -> tuple[str, float]:
        k, v = param(kind)
        t = time.time()
        run = http("POST", self.api + "runs", self.token,
                   {"notebook_path": f"nb/{kind}.ipynb", "parameters": {k: v}})  # fmt: skip
        assert run["status"] == "queued", run
        return run["id"], t

    def single(self, kind: str) -> tuple[float, dict[str, Any]]:
        run_id, t0 = self.submit(kind)
        m0 = time.monotonic()
        while True:
            run = http("GET", self.api + f"runs/{run_id}", self.token)
            if run["status"] in self.TERMINAL:
                break
            time.sleep(0.02)
        observed = time.monotonic() - m0
        if run["status"] != "succeeded":
            raise RuntimeError(f"run {run_id} {run['status']}: {run.get('error')}")
        c, s, f = (parse_ts(run[x]) for x in ("created_at", "started_at", "finished_at"))
        assert f is not None and s is not None and c is not None
        runner_exec = float("nan")  # the runner's own "succeeded in X s" (job received -> done)
        log = self.root / ".dataops" / "runs" / run_id / "run.log"
        m = re.search(r"succeeded in ([0-9.]+) s", log.read_text()) if log.exists() else None
        if m:
            runner_exec = float(m.group(1))
        return f - t0, {"observed": observed, "post_to_created": c - t0,
                        "created_to_started": s - c, "started_to_finished": f - s,
                        "runner_exec": runner_exec}  # fmt: skip

    def burst(self, kind: str, n: int) -> tuple[float, list[float]]:
        t_start = time.monotonic()
        subs = dict(self.submit(kind) for _ in range(n))
        t0 = min(subs.values())
        while True:
            runs = http("GET", self.api + f"runs?limit={min(500, n + 50)}", self.token)["runs"]
            mine = {r["id"]: r for r in runs if r["id"] in subs}
            if len(mine) == n and all(r["status"] in self.TERMINAL for r in mine.values()):
                break
            time.sleep(0.1)
        total_observed = time.monotonic() - t_start
        bad = [r for r in mine.values() if r["status"] != "succeeded"]
        if bad:
            raise RuntimeError(f"{len(bad)} burst runs did not succeed: {bad[0].get('error')}")
        fin = {i: parse_ts(r["finished_at"]) or 0.0 for i, r in mine.items()}
        lat = [fin[i] - t0 for i in subs]  # from the burst's common submit instant
        return min(total_observed, max(fin.values()) - t0 + 0.0), lat


# (4) jupyter-scheduler --------------------------------------------------------------------------
class DataOpsPreload(DataOps):
    """The same server with ``c.DataOps.kernel_preload = ["pandas"]`` (opt-in)."""

    name = "preload"
    extra_args = ("--DataOps.kernel_preload=pandas",)


def ensure_jsched_venv() -> Path:
    py = JSCHED_VENV / "bin" / "python"
    ok = py.exists() and subprocess.run(
        [str(py), "-c", "import jupyter_scheduler, pandas, ipykernel"], capture_output=True
    ).returncode == 0  # fmt: skip
    if not ok:
        print(f"installing jupyter-scheduler into {JSCHED_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(JSCHED_VENV)], check=True)
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q",
             "jupyter-scheduler", "jupyterlab", "pandas", "ipykernel"],
            capture_output=True, text=True,
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError(f"pip install jupyter-scheduler failed: {r.stderr[-800:]}")
    return py


class Scheduler:
    name = "scheduler"
    DONE = ("COMPLETED", "FAILED", "STOPPED")
    TIMEOUT_S = 300.0

    @staticmethod
    def done(job: dict[str, Any]) -> bool:
        # A new job reads STOPPED (the ORM default) until its spawned process marks it
        # IN_PROGRESS; STOPPED is an end only once the job has started.
        if job["status"] == "STOPPED":
            return job.get("start_time") is not None
        return job["status"] in ("COMPLETED", "FAILED")

    def __init__(self, warmup_s: float) -> None:
        py = ensure_jsched_venv()
        self.version = subprocess.run(
            [str(py), "-c", "import jupyter_scheduler as j; print(j.__version__)"],
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        self.root = WORK / "jsched-root"
        shutil.rmtree(self.root, ignore_errors=True)  # fresh db and staging every run
        (self.root / "nb").mkdir(parents=True)
        for p in NB_DIR.glob("*.ipynb"):
            shutil.copy(p, self.root / "nb" / p.name)
        self.token = secrets.token_hex(16)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PATH"] = f"{JSCHED_VENV / 'bin'}:{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(JSCHED_VENV)
        env["JUPYTER_CONFIG_DIR"] = str(self.root / ".jupyter")
        env["JUPYTER_RUNTIME_DIR"] = str(self.root / ".runtime")
        env["JUPYTER_DATA_DIR"] = str(self.root / ".data")  # its sqlite db and staging
        env.pop("JUPYTERHUB_USER", None)
        cmd = [
            str(py), "-m", "jupyter_server",
            f"--ServerApp.root_dir={self.root}", f"--port={port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}", "--no-browser", "--allow-root",
            "--ServerApp.jpserver_extensions={'jupyter_scheduler': True}",
        ]  # fmt: skip
        self.log = WORK / "jsched-server.log"
        with open(self.log, "wb") as log:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root
            )
        try:
            wait_ready(self.url, self.token, self.proc, self.log)
            time.sleep(warmup_s)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        stop(self.proc)
        self.proc = None

    def submit(self, kind: str) -> tuple[str, float]:
        k, v = param(kind)
        body = {
            "name": f"bench-{kind}",
            "input_uri": f"nb/{kind}.ipynb",
            "output_formats": ["ipynb"],
            "parameters": {k: str(v)},  # Dict[str, str], injected verbatim as `k = v`
            "runtime_environment_name": "python3",
        }
        t = time.time()
        r = http("POST", self.url + "scheduler/jobs", self.token, body)
        return r["job_id"], t

    def get(self, job_id: str) -> dict[str, Any]:
        return http("GET", self.url + f"scheduler/jobs/{job_id}", self.token)

    def single(self, kind: str) -> tuple[float, dict[str, Any]]:
        job_id, t0 = self.submit(kind)
        m0 = time.monotonic()
        while True:
            job = self.get(job_id)
            if self.done(job):
                break
            if time.monotonic() - m0 > self.TIMEOUT_S:
                raise RuntimeError(f"job {job_id} still {job['status']} after {self.TIMEOUT_S} s")
            time.sleep(0.1)  # its latency is seconds; end_time (ms) is what is reported
        observed = time.monotonic() - m0
        if job["status"] != "COMPLETED":
            raise RuntimeError(f"job {job_id} {job['status']}: {job.get('status_message')}")
        end = (job.get("end_time") or 0) / 1000
        return (end - t0 if end else observed), {"observed": observed}

    def burst(self, kind: str, n: int) -> tuple[float, list[float]]:
        t_start = time.monotonic()
        subs = dict(self.submit(kind) for _ in range(n))
        t0 = min(subs.values())
        pending = set(subs)
        jobs: dict[str, dict[str, Any]] = {}
        while pending:
            for job_id in list(pending):
                job = self.get(job_id)
                if self.done(job):
                    jobs[job_id] = job
                    pending.discard(job_id)
            if pending and time.monotonic() - t_start > self.TIMEOUT_S:
                raise RuntimeError(f"{len(pending)} jobs not done after {self.TIMEOUT_S} s")
            if pending:
                time.sleep(0.2)
        total_observed = time.monotonic() - t_start
        bad = [j for j in jobs.values() if j["status"] != "COMPLETED"]
        if bad:
            raise RuntimeError(f"{len(bad)} burst jobs failed: {bad[0].get('status_message')}")
        fin = {i: (j.get("end_time") or 0) / 1000 for i, j in jobs.items()}
        if not all(fin.values()):
            return total_observed, [total_observed] * n
        lat = [fin[i] - t0 for i in subs]
        return min(total_observed, max(fin.values()) - t0), lat


# (2) papermill CLI and (3) papermill.execute_notebook --------------------------------------------
class PapermillCLI:
    name = "cli"

    def __init__(self) -> None:
        self.exe = str(Path(sys.executable).parent / "papermill")
        self.out = WORK / "out-cli"
        self.out.mkdir(parents=True, exist_ok=True)
        self.i = 0

    def one(self, kind: str) -> float:
        k, v = param(kind)
        self.i += 1
        t = time.perf_counter()
        subprocess.run(
            [self.exe, str(NB_DIR / f"{kind}.ipynb"), str(self.out / f"{kind}-{self.i}.ipynb"),
             "-p", k, str(v), "--no-progress-bar"],
            check=True, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - t


class PapermillAPI:
    name = "api"

    def __init__(self) -> None:
        import papermill

        self.pm = papermill
        self.out = WORK / "out-api"
        self.out.mkdir(parents=True, exist_ok=True)
        self.i = 0

    def one(self, kind: str) -> float:
        k, v = param(kind)
        self.i += 1
        saved = os.dup(2)  # the kernels it starts inherit stderr: keep their warnings in a log
        with open(WORK / "api-kernels.log", "ab") as log:
            os.dup2(log.fileno(), 2)
        try:
            t = time.perf_counter()
            self.pm.execute_notebook(
                str(NB_DIR / f"{kind}.ipynb"), str(self.out / f"{kind}-{self.i}.ipynb"),
                parameters={k: v}, progress_bar=False, log_output=False,
            )  # fmt: skip
            return time.perf_counter() - t
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# driving ----------------------------------------------------------------------------------------
def run_server(c: DataOps | Scheduler, kind: str, single: int, n: int, gap: float) -> Result:
    res = Result()
    c.single(kind)  # warm-up
    parts: list[dict[str, Any]] = []
    for _ in range(single):
        time.sleep(gap)
        lat, info = c.single(kind)
        res.single.append(lat)
        parts.append(info)
    res.extra = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    time.sleep(gap)
    res.burst_total, res.burst = c.burst(kind, n)
    time.sleep(gap)  # settle before the next measurement
    return res


def run_loop(one: Callable[[str], float], kind: str, single: int, n: int) -> Result:
    res = Result()
    one(kind)  # warm-up
    res.single = [one(kind) for _ in range(single)]
    t0 = time.perf_counter()
    for _ in range(n):  # no queue: the burst is n jobs in a row; job i is done at its end
        one(kind)
        res.burst.append(time.perf_counter() - t0)
    res.burst_total = time.perf_counter() - t0
    return res


def fmt(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"


def table(kind: str, n: int, results: dict[str, Result]) -> None:
    head = ["contender", "single p50", "single p95", f"burst-{n} total s",
            "burst p50", "burst p95", "jobs/s"]  # fmt: skip
    rows = []
    for name in CONTENDERS:
        r = results.get(name)
        if r is None:
            continue
        if r.note:
            rows.append([name, r.note, "", "", "", "", ""])
            continue
        rows.append([name, fmt(pct(r.single, .5)), fmt(pct(r.single, .95)), fmt(r.burst_total),
                     fmt(pct(r.burst, .5)), fmt(pct(r.burst, .95)),
                     fmt(n / r.burst_total if r.burst_total else float("nan"))])  # fmt: skip
    ok = [r for r in rows if not results[r[0]].note]
    w = [max([len(head[i]), *(len(r[i]) for r in ok)]) for i in range(len(head))]
    print(f"\n== {kind} notebook (latency in s, submit -> output written) ==")
    print(" | ".join(h.ljust(w[i]) for i, h in enumerate(head)))
    print("-+-".join("-" * x for x in w))
    for row in rows:
        if results[row[0]].note:
            print(f"{row[0].ljust(w[0])} | {row[1]}")
        else:
            print(" | ".join(c.ljust(w[i]) for i, c in enumerate(row)))
    d = results.get("dataops")
    if d is not None and not d.note:
        e = d.extra
        print(f"dataops single-run breakdown (medians): POST->created {e['post_to_created']:.3f}"
              f" | created->started (queue+claim) {e['created_to_started']:.3f}"
              f" | started->finished {e['started_to_finished']:.3f}"
              f" (of which the runner's papermill call {e['runner_exec']:.3f})"
              f" | client-observed via 20 ms polling {e['observed']:.3f}")  # fmt: skip
    s = results.get("scheduler")
    if s is not None and not s.note:
        print(
            f"scheduler single client-observed via 100 ms polling (median): "
            f"{s.extra['observed']:.3f}"
        )
    if d is None or d.note:
        return
    dp50 = pct(d.single, 0.5)
    checks = []
    for name, target, label in (
        ("api", TARGET_API, "execute_notebook p50 / dataops p50"),
        ("cli", TARGET_CLI, "papermill CLI p50 / dataops p50"),
    ):
        r = results.get(name)
        if r is not None and not r.note:
            checks.append((label, pct(r.single, 0.5) / dp50, target))
    if s is not None and not s.note:
        checks.append((f"jupyter-scheduler burst-{n} total / dataops burst-{n} total",
                       s.burst_total / d.burst_total, TARGET_SCHED))  # fmt: skip
    for label, ratio, target in checks:
        if kind != "trivial" and "burst" not in label:
            # The issue sets the single-run targets on the trivial notebook only.
            print(f"  {label} = {ratio:.2f} (no target for this notebook)")
            continue
        verdict = "PASS" if ratio >= target else "FAIL"
        print(f"  {label} = {ratio:.2f} (target >= {target:g}) {verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="jobs in the burst")
    ap.add_argument("--single", type=int, default=6, help="measured single runs (after 1 warm-up)")
    ap.add_argument("--only", default=",".join(CONTENDERS))
    ap.add_argument("--notebooks", default=",".join(KINDS))
    ap.add_argument("--gap", type=float, default=2.0,
                    help="s between server jobs (refill of the warm pool)")  # fmt: skip
    ap.add_argument("--warmup", type=float, default=5.0, help="s after a server is up")
    a = ap.parse_args()
    only = [c for c in a.only.split(",") if c]
    kinds = [k for k in a.notebooks.split(",") if k]
    for c in only:
        if c not in CONTENDERS:
            ap.error(f"unknown contender {c}")
    for k in kinds:
        if k not in KINDS:
            ap.error(f"unknown notebook {k}")
    WORK.mkdir(parents=True, exist_ok=True)
    write_notebooks()
    print(f"load average {os.getloadavg()[0]:.1f} (1 min); "
          f"{os.cpu_count()} cores, n={a.n}, single={a.single}, contenders={only}, "
          f"notebooks={kinds}", flush=True)  # fmt: skip
    results: dict[str, dict[str, Result]] = {k: {} for k in kinds}
    t_all = time.monotonic()
    for name in only:  # one contender at a time: nothing else competes for the 2 cores
        t = time.monotonic()
        server: DataOps | Scheduler | None = None  # DataOpsPreload is a DataOps
        try:
            if name == "dataops":
                server = DataOps(a.warmup)
            elif name == "preload":
                server = DataOpsPreload(a.warmup)
            elif name == "scheduler":
                server = Scheduler(a.warmup)
                print(f"  jupyter-scheduler {server.version}", flush=True)
            loop = PapermillCLI() if name == "cli" else PapermillAPI() if name == "api" else None
            for kind in kinds:
                try:
                    if server is not None:
                        results[kind][name] = run_server(server, kind, a.single, a.n, a.gap)
                    else:
                        assert loop is not None
                        results[kind][name] = run_loop(loop.one, kind, a.single, a.n)
                except Exception as e:
                    results[kind][name] = Result(note=f"ERROR: {e}")
        except Exception as e:
            for kind in kinds:
                results[kind].setdefault(name, Result(note=f"ERROR: {e}"))
        finally:
            if server is not None:
                server.close()
        print(f"  {name} done in {time.monotonic() - t:.0f} s", flush=True)
    for kind in kinds:
        table(kind, a.n, results[kind])
    print(
        f"\ntotal {time.monotonic() - t_all:.0f} s; load average at the end "
        f"{os.getloadavg()[0]:.1f} (1 min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
