"""A forked kernel's atexit handlers: its imports' and its own run when it ends, the runner's
never (real fork, real atexit, in a process of its own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import atexit, os, sys
from jupyter_dataops.jobs import forkserver

out = sys.argv[1]

def marker(name):
    def mark():
        open(os.path.join(out, name), 'w').close()
    mark.__qualname__ = name
    return mark

with forkserver._recording_exits():  # as the fork server imports its modules
    atexit.register(marker('import'))
    dropped = marker('unregistered-at-import')
    atexit.register(dropped)
    atexit.unregister(dropped)
atexit.register(marker('runner'))  # the runner's own, after the imports
pid = os.fork()
if pid == 0:
    forkserver._fresh_exit_hooks()
    atexit.register(marker('kernel'))  # what a notebook registers
    forkserver._finalize()
    os._exit(0)
os.waitpid(pid, 0)
print(' '.join(sorted(os.listdir(out))))
os._exit(0)  # this process's own handlers are not what is tested
"""


def test_a_forked_kernel_runs_its_own_and_its_imports_exit_hooks_not_the_runners(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ran"
    out.mkdir()
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["import", "kernel"]
