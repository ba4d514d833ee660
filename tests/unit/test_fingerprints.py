"""Dataset versions are content fingerprints: touch keeps them, one changed value does not."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jupyter_dataops.models import ReadRequest
from jupyter_dataops.platform import Platform
from jupyter_dataops.settings import DataOps

POLICY = """
groups: {g: {members: [ada]}}
datasets:
  prices: {owner: ada, source: {type: csv, path: data/prices.csv}}
grants: [{groups: [g], datasets: [prices]}]
"""


def _platform(root: Path) -> Platform:
    (root / "dataops.yaml").write_text(POLICY)
    (root / "data").mkdir()
    (root / "data" / "prices.csv").write_text("item,price\napple,10\npear,20\n")
    return Platform(DataOps(), root)


def _version(p: Platform) -> str:
    plan = p.catalog.plan(p.principal("ada"), "prices", ReadRequest(), "read")
    return plan.version


def _versions(p: Platform) -> list[str]:
    return [v.fingerprint for v in p.catalog.describe(p.principal("ada"), "prices").versions]


def test_touch_keeps_the_version(tmp_path):
    p = _platform(tmp_path)
    first = _version(p)
    f = tmp_path / "data" / "prices.csv"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns + 10**9, st.st_mtime_ns + 5 * 10**9))  # touch
    assert _version(p) == first
    assert _versions(p) == [first]  # no new version recorded


def test_one_changed_value_with_the_same_size_and_mtime_is_a_new_version(tmp_path):
    p = _platform(tmp_path)
    first = _version(p)
    f = tmp_path / "data" / "prices.csv"
    st = f.stat()
    f.write_text("item,price\napple,10\npear,21\n")  # one value, same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime back
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    second = _version(p)
    assert second != first
    f.write_text("item,price\napple,10\npear,20\n")  # the original content again
    assert _version(p) == first  # the same content is the same version


def test_a_file_is_hashed_once_per_identity_and_observed_in_the_background(tmp_path):
    p = _platform(tmp_path)
    assert p.catalog.observe() == 1  # observed (and hashed) before any pull
    hashed = p.catalog.digests.hashed
    for _ in range(3):
        _version(p)
    assert p.catalog.digests.hashed == hashed  # pulls only stat the file
    assert p.catalog.observe() == 0
    again = Platform(DataOps(), tmp_path)  # another server (or a restart) on the same store
    _version(again)
    assert again.catalog.digests.hashed == 0
    (tmp_path / "data" / "prices.csv").write_text("item,price\napple,11\npear,20\n")
    assert p.catalog.observe() == 1 and len(_versions(p)) == 2


def test_readers_who_see_a_new_file_at_the_same_moment_all_get_its_one_version(tmp_path, store_url):
    # The first start of `make lab`: the catalog's list, the status and a kernel's pull all
    # observe the new demo files at once; each must get the version, none a 500.
    (tmp_path / "dataops.yaml").write_text(POLICY)
    (tmp_path / "data").mkdir()
    rows = "".join(f"item{i},{i}\n" for i in range(200_000))  # hashing takes a while
    (tmp_path / "data" / "prices.csv").write_text("item,price\n" + rows)
    p = Platform(DataOps(db_url=store_url), tmp_path)
    ada = p.principal("ada")
    readers = 6
    barrier = threading.Barrier(readers)

    def first_look(i: int) -> str | None:
        barrier.wait()
        if i % 2:
            return p.catalog.plan(ada, "prices", ReadRequest(), "read").version
        assert [d.name for d in p.catalog.list(ada)] == ["prices"]
        return None

    with ThreadPoolExecutor(readers) as pool:
        seen = {v for v in pool.map(first_look, range(readers)) if v is not None}
    assert len(seen) == 1, seen
    assert _versions(p) == list(seen)  # one version, recorded once
