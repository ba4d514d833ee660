"""Benchmark: a governed ``dops.pull`` against reading the same data directly.

Generates a Parquet file (default 10M rows: id, email (PII), category a..e, x, y) in
``bench/.work/`` (git-ignored, reused when present), starts a real Jupyter server with
jupyter_dataops on it, and measures, for the same columns, row filter and mask:

  (a) ``dops.pull`` through the server: grant row filter ``category IN ({user.cats})`` with
      cats [b], a user ``where`` of ``y > 50``, and a ``partial`` (keep 4) mask on ``email``;
  (b) the same query read directly with DuckDB -> Arrow -> ``to_pandas()``;
  (c) ``pandas.read_parquet`` followed by the same filter and mask in pandas.

It prints rows/s for each and the ratios a/b (target >= 0.7) and a/c (target >= 1.5).

Usage::

    python bench/pull.py [--rows N] [--repeat 5] [--only a|b|c]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from _server import free_port, start, stop, wait_ready

import jupyter_dataops as dops

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
DATASET = "big"
USER = "bench"
CATEGORY = "b"
COLUMNS = ["id", "email", "category", "x", "y"]
WHERE = "y > 50"
KEEP = 4
PREFIX = "****"  # jupyter_dataops.governance.compiler.PARTIAL_PREFIX
TARGET_AB = 0.7
TARGET_AC = 1.5

POLICY = f"""\
version: 1
admins: [root]
groups:
  analysts: {{members: [{USER}]}}
users:
  {USER}: {{attributes: {{cats: [{CATEGORY}]}}}}
datasets:
  {DATASET}:
    title: Pull benchmark
    owner: root
    source: {{type: parquet, path: %(parquet)s}}
    columns:
      email: {{description: Contact address, classification: [pii]}}
grants:
  - groups: [analysts]
    datasets: [{DATASET}]
    row_filter: category IN ({{user.cats}})
masks:
  - classifications: [pii]
    function: partial
    keep: {KEEP}
"""


# data -------------------------------------------------------------------------------------------
def make_data(rows: int) -> Path:
    path = WORK / f"big-{rows}.parquet"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""
        COPY (
            SELECT i AS id,
                   'user' || i || '@' || chr((97 + i * 7 % 26)::INT) || 'mail.example' AS email,
                   chr((97 + i % 5)::INT) AS category,
                   (hash(i) % 1000000) / 10000.0 AS x,
                   (hash(i * 31 + 17) % 1000000) / 10000.0 AS y
            FROM range({rows}) t(i)
        ) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)
    """)
    con.close()
    tmp.rename(path)
    print(f"generated {path.name}: {rows:,} rows, {path.stat().st_size / 1e6:.0f} MB "
          f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    return path


# the three contenders ---------------------------------------------------------------------------
def pull_server() -> pd.DataFrame:
    return dops.pull(DATASET, columns=COLUMNS, where=WHERE, progress=False)


def direct_duckdb(path: Path) -> Callable[[], pd.DataFrame]:
    sql = f"""
        SELECT id,
               CASE WHEN email IS NULL THEN NULL
                    WHEN length(email) > {KEEP} THEN '{PREFIX}' || right(email, {KEEP})
                    ELSE '{PREFIX}' END AS email,
               category, x, y
        FROM read_parquet('{path}')
        WHERE category IN ('{CATEGORY}') AND y > 50
    """

    def run() -> pd.DataFrame:
        con = duckdb.connect()
        try:
            return con.sql(sql).to_arrow_table().to_pandas()
        finally:
            con.close()

    return run


def plain_pandas(path: Path) -> Callable[[], pd.DataFrame]:
    def run() -> pd.DataFrame:
        df = pd.read_parquet(path, columns=COLUMNS)
        df = df[(df["category"] == CATEGORY) & (df["y"] > 50)].reset_index(drop=True)
        email = df["email"]
        shown = PREFIX + email.str[-KEEP:]
        df["email"] = shown.where(email.str.len() > KEEP, PREFIX).where(email.notna(), None)
        return df

    return run


def timed(
    contenders: dict[str, Callable[[], pd.DataFrame]], repeat: int
) -> dict[str, tuple[list[float], pd.DataFrame]]:
    """Seconds of each run, and the result of one run, per contender.

    Runs are interleaved (a b c a b c ...) after one warm-up each, so that load from other
    processes on the machine hits every contender alike.
    """
    out = {k: fn() for k, fn in contenders.items()}  # warm-up: OS cache, imports, catalog sync
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeat):
        for key, fn in contenders.items():
            del out[key]  # keep memory flat between runs
            t0 = time.perf_counter()
            out[key] = fn()
            times[key].append(time.perf_counter() - t0)
    return {k: (times[k], out[k]) for k in contenders}


def check_same(a: pd.DataFrame, b: pd.DataFrame, c: pd.DataFrame) -> None:
    n = len(a)
    assert n == len(b) == len(c), f"row counts differ: a={n} b={len(b)} c={len(c)}"
    assert n > 0, "no rows returned"
    sums = {k: int(df["id"].sum()) for k, df in (("a", a), ("b", b), ("c", c))}
    assert len(set(sums.values())) == 1, f"different rows: id sums {sums}"
    assert set(a["category"].unique()) == {CATEGORY}
    assert float(a["y"].min()) > 50
    rng = np.random.default_rng(0)
    ids = rng.choice(a["id"].to_numpy(), size=min(200, n), replace=False)
    pick = [df.set_index("id").loc[ids, ["email", "x"]] for df in (a, b, c)]
    for other in pick[1:]:
        assert pick[0]["email"].tolist() == other["email"].tolist(), "masked values differ"
        assert np.allclose(pick[0]["x"].to_numpy(), other["x"].to_numpy())
    sample = pick[0]["email"].iloc[0]
    assert sample.startswith(PREFIX) and len(sample) == len(PREFIX) + KEEP, sample
    assert "@" not in "".join(pick[0]["email"].tolist()), "email leaked unmasked"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per contender")
    ap.add_argument("--only", choices=["a", "b", "c"], help="time one contender (profiling)")
    args = ap.parse_args()

    t_start = time.perf_counter()
    parquet = make_data(args.rows)
    root = Path(tempfile.mkdtemp(prefix="ws-", dir=WORK))
    (root / "dataops.yaml").write_text(POLICY % {"parquet": parquet})
    jp_token = os.urandom(16).hex()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = WORK / "server.log"
    proc = start(root, port, jp_token, USER, log)
    labels = {
        "a": "dops.pull via server",
        "b": "duckdb -> arrow -> pandas",
        "c": "pandas.read_parquet + filter/mask",
    }
    try:
        wait_ready(url, jp_token, proc, log)
        dops.connect(url, jp_token, scheme="token")  # the server's own token: its user
        fns = {"a": pull_server, "b": direct_duckdb(parquet), "c": plain_pandas(parquet)}
        results = timed({k: f for k, f in fns.items() if args.only in (None, k)}, args.repeat)
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{args.rows:,}-row Parquet; columns {COLUMNS}; grant row filter category IN "
          f"({CATEGORY!r}); where {WHERE!r}; email masked partial (keep {KEEP}); "
          f"{args.repeat} interleaved runs each after a warm-up")  # fmt: skip
    print(f"{'':38} {'rows':>10} {'best s':>7} {'median s':>8} {'rows/s (best)':>14}")
    best = {}
    for key, (times, df) in results.items():
        best[key] = min(times)
        print(f"({key}) {labels[key]:34} {len(df):>10,} {best[key]:>7.3f} "
              f"{statistics.median(times):>8.3f} {len(df) / best[key]:>14,.0f}")  # fmt: skip
    if args.only:
        return 0
    check_same(results["a"][1], results["b"][1], results["c"][1])
    # Same rows in each, so the rows/s ratio a/b is the time ratio b/a.
    ab, ac = best["b"] / best["a"], best["c"] / best["a"]
    ok_ab, ok_ac = ab >= TARGET_AB, ac >= TARGET_AC
    print(f"a/b = {ab:.2f}  (target >= {TARGET_AB}): {'PASS' if ok_ab else 'FAIL'}")
    print(f"a/c = {ac:.2f}  (target >= {TARGET_AC}): {'PASS' if ok_ac else 'FAIL'}")
    print("a, b, c agree: row counts, id sums, masked-value spot checks")
    meta = results["a"][1].attrs.get("dataops", {})
    print("a lineage: " + json.dumps({k: meta.get(k) for k in ("version", "rows", "masked")}))
    print(f"total {time.perf_counter() - t_start:.0f} s")
    return 0 if ok_ab and ok_ac else 1


if __name__ == "__main__":
    sys.exit(main())
