"""Benchmark: embedded (personal mode) against client mode through the team's service.

The same governed pull as ``bench/pull.py`` (10M rows by default: the row filter, the user's
``where`` and the mask) and the same trivial run as ``bench/jobs.py`` (a ``parameters`` cell
and a print), measured side by side in one run:

  embedded  a personal Jupyter server with jupyter_dataops on the workspace (the default);
  team      the stack of ``make team`` (JupyterHub, configurable-http-proxy, the DataOps
            service as its own OS user on PostgreSQL, job kernels as their owner's OS user):
            the pull as a user's kernel makes it (its Hub token, to the service's URL its
            server was given) and the run as JupyterLab submits it (through the proxy to the
            user's own server, which forwards it with the notebook to the service).

Pull: best of ``--repeat`` interleaved runs, rows/s. Run: ``--single`` runs one after another
after a warm-up, latency = submit to the run's ``finished_at``, p50. Targets: team pull
throughput >= 0.9x embedded; team single-run p50 <= 1.3x embedded. Needs root (it creates the
OS users of the stack, as ``make team`` does) and PostgreSQL on 127.0.0.1:5432.

Usage::

    python bench/team.py [--rows N] [--repeat 5] [--single 10]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from _server import free_port, http, start, stop, wait_ready
from pull import CATEGORY, COLUMNS, DATASET, KEEP, POLICY, WHERE, make_data

from jupyter_dataops.client import Client
from jupyter_dataops.team import stack

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "team"
USER = "bench"  # POLICY's user: the Hub user of the team stack too
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")
TARGET_PULL, TARGET_RUN = 0.9, 1.3


def trivial(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    p = nbformat.v4.new_code_cell("x = 1")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("print(x)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def user_service_url(user: str) -> str:
    """The service's URL that ``user``'s server, and so its kernels, were started with."""
    import psutil

    for p in psutil.process_iter(["username", "cmdline"]):
        if p.info["username"] != user:
            continue
        for arg in p.info["cmdline"] or []:
            if arg.startswith("--DataOps.service_url="):
                return arg.split("=", 1)[1]
    raise RuntimeError(f"{user}'s server has no --DataOps.service_url")


def ts(v: str) -> float:
    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


def pull(client: Client) -> tuple[float, int]:
    t = time.perf_counter()
    table = client.pull_arrow(DATASET, COLUMNS, WHERE, progress=False)
    elapsed = time.perf_counter() - t
    assert table.column("email")[0].as_py().startswith("****"), "not masked"
    assert set(table.column("category").to_pylist()) == {CATEGORY}
    return elapsed, table.num_rows


def runs(submit: Any, get: Any, n: int, parts: list[dict[str, float]]) -> list[float]:
    """``n`` trivial runs one after another (after one warm-up): submit -> finished_at.
    ``parts`` gets each run's breakdown: submit -> created -> started -> finished."""
    out = []
    for i in range(n + 1):
        t0 = time.time()
        run = submit()
        while run["status"] not in TERMINAL:
            time.sleep(0.02)
            run = get(run["id"])
        if run["status"] != "succeeded":
            raise RuntimeError(f"run {run['id']} {run['status']}: {run.get('error')}")
        if i:
            c, st, f = (ts(run[k]) for k in ("created_at", "started_at", "finished_at"))
            out.append(f - t0)
            parts.append({"to_created": c - t0, "queued": st - c, "executing": f - st})
        time.sleep(0.5)  # the warm pool refills between runs, as in bench/jobs.py
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--single", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/team.py needs root: it starts the team stack with OS users", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    parquet = make_data(args.rows)

    # embedded: a personal server on its own workspace
    emb_root = WORK / "embedded"
    shutil.rmtree(emb_root, ignore_errors=True)
    (emb_root / "data").mkdir(parents=True)
    shutil.copy(parquet, emb_root / "data" / "big.parquet")
    (emb_root / "dataops.yaml").write_text(POLICY % {"parquet": "data/big.parquet"})
    trivial(emb_root / "trivial.ipynb")
    token = secrets.token_hex(16)
    port = free_port()
    emb_url = f"http://127.0.0.1:{port}/"
    proc = start(emb_root, port, token, USER, WORK / "embedded.log")

    # team: the stack, with the same data in the service's workspace
    team = stack.Team(WORK / "stack", port=stack.free_port_block(), users={USER: "analysts"},
                      password=secrets.token_hex(8), service_user="dataops-bench",
                      jobs_user="dataops-bench-jobs", db_url=stack.Team.db_url.replace(
                          "dataops_team", "dataops_bench"), driver_token=secrets.token_hex(16),
                      dask=False)  # fmt: skip
    shutil.rmtree(team.dir / "workspace", ignore_errors=True)
    team.workspace.mkdir(parents=True)
    (team.workspace / "data").mkdir()
    shutil.copy(parquet, team.workspace / "data" / "big.parquet")
    (team.workspace / "dataops.yaml").write_text(POLICY % {"parquet": "data/big.parquet"})
    running = None
    try:
        stack.prepare(team)
        running = stack.start(team, WORK / "stack.log")
        hub = f"{team.url}/hub/api/"
        code = http("POST", hub + f"users/{USER}/server", team.driver_token, {})
        deadline = time.monotonic() + 120
        while not (http("GET", hub + f"users/{USER}", team.driver_token).get("servers") or {})\
                .get("", {}).get("ready"):  # fmt: skip
            if time.monotonic() > deadline:
                raise RuntimeError("the user's server did not start")
            time.sleep(0.5)
        del code

        def user_token(scope: str) -> str:
            body = {"scopes": [scope], "expires_in": 3600}
            return str(http("POST", hub + f"users/{USER}/tokens", team.driver_token, body)["token"])

        service_token = user_token("access:services!service=dataops")
        server_token = user_token(f"access:servers!server={USER}/")
        home = Path(f"/home/{USER}")
        trivial(home / "trivial.ipynb")
        shutil.chown(home / "trivial.ipynb", USER, USER)
        wait_ready(emb_url, token, proc, WORK / "embedded.log")
        time.sleep(3)  # the embedded warm pool fills

        emb = Client(emb_url, token, scheme="token")
        # The URL the user's kernels are given: their server's --DataOps.service_url.
        kernel_url = user_service_url(USER)
        via = Client(kernel_url, service_token, scheme="token")
        # Diagnostic, outside the targets: through the proxy, as a browser reaches the service.
        proxied = Client(f"{team.url}/services/dataops/", service_token, scheme="token")
        pulls: dict[str, list[float]] = {"embedded": [], "team": [], "proxied": []}
        rows = 0
        for _ in range(args.repeat + 1):  # interleaved; the first of each is a warm-up
            for name, client in (("embedded", emb), ("team", via), ("proxied", proxied)):
                t, rows = pull(client)
                pulls[name].append(t)

        emb_api = emb_url + "dataops/api/v1/"
        user_api = f"{team.url}/user/{USER}/dataops/api/v1/"
        parts: dict[str, list[dict[str, float]]] = {"embedded": [], "team": []}
        emb_runs = runs(
            lambda: http("POST", emb_api + "runs", token, {"notebook_path": "trivial.ipynb"}),
            lambda i: http("GET", emb_api + f"runs/{i}", token),
            args.single,
            parts["embedded"],
        )
        team_runs = runs(
            lambda: http("POST", user_api + "runs", server_token,
                         {"notebook_path": "trivial.ipynb"}),
            lambda i: http("GET", user_api + f"runs/{i}", server_token), args.single,
            parts["team"])  # fmt: skip
    finally:
        stop(proc)
        if running is not None:
            running.stop()

    best = {k: min(v[1:]) for k, v in pulls.items()}
    p50 = {"embedded": statistics.median(emb_runs), "team": statistics.median(team_runs)}
    print(f"\ngoverned pull of {rows:,} rows (of {args.rows:,}), best of {args.repeat}:")
    for k in ("embedded", "team", "proxied"):
        print(f"  {k:9} {best[k]:.3f} s  {rows / best[k] / 1e6:.2f}M rows/s")
    print(f"  (team: a kernel's URL of the service, {kernel_url}; proxied: through")
    print("  configurable-http-proxy, as browsers reach it; not a target)")
    pull_ratio = best["embedded"] / best["team"]
    print(f"  team / embedded throughput: {pull_ratio:.2f}  (target >= {TARGET_PULL})")
    print(f"\ntrivial run, submit -> finished, p50 of {args.single}:")
    for k, xs in (("embedded", emb_runs), ("team", team_runs)):
        med = {p: statistics.median(d[p] for d in parts[k]) for p in parts[k][0]}
        print(
            f"  {k:9} p50 {p50[k]:.3f} s  (min {min(xs):.3f}, max {max(xs):.3f}); medians: "
            + ", ".join(f"{p} {v * 1000:.0f} ms" for p, v in med.items())
        )
    run_ratio = p50["team"] / p50["embedded"]
    print(f"  team / embedded latency: {run_ratio:.2f}  (target <= {TARGET_RUN})")
    print(json.dumps({"pull_ratio": round(pull_ratio, 3), "run_ratio": round(run_ratio, 3),
                      "pull_s": best, "run_p50_s": p50, "keep": KEEP}))  # fmt: skip
    return 0 if pull_ratio >= TARGET_PULL and run_ratio <= TARGET_RUN else 1


if __name__ == "__main__":
    sys.exit(main())
