"""Dispatcher identities: which queue a process executes, and how others know it is alive.

Every process that executes runs (a Jupyter server, ``jupyter dataops scheduler``,
``jupyter dataops run --wait``) serves one identity, the ``host`` of the runs it queues:
``<hostname>:<root>`` for a server, ``<hostname>:<root>#scheduler`` and
``<hostname>:<root>#run`` for the others, with ``-2``, ``-3``... when one of that kind is
already live on this machine and workspace. A dispatcher executes only its own identity's
queue, so a CLI run beside a server never takes the server's runs.

Liveness is an exclusive ``flock`` on ``.dataops/dispatchers/<hash>.lock``, held for the
process's life and dropped by the kernel however it ends (SIGKILL included). A dispatcher that
starts takes the first free identity of its kind, so a restarted server gets its previous
incarnation's identity back and recovers what that one left running; runs of identities whose
lock is free (a killed CLI run) are recovered by whichever dispatcher looks next.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no liveness; each dispatcher recovers only its own runs
    fcntl = None  # type: ignore[assignment]

MAX_SLOTS = 64
PROBE_RETRIES = 3


def identity(base: str, kind: str, slot: int) -> str:
    """The host of a dispatcher: ``kind`` "server" is the bare base, as before identities."""
    name = base if kind == "server" else f"{base}#{kind}"
    return name if slot == 1 else (f"{name}#{slot}" if kind == "server" else f"{name}-{slot}")


def describe(host: str, base: str) -> str:
    """Who an identity is, in the user's words."""
    kind = host[len(base) + 1 :] if host.startswith(f"{base}#") else ""
    if kind.startswith("scheduler"):
        return "`jupyter dataops scheduler`"
    if kind.startswith("run"):
        return "`jupyter dataops run --wait`"
    return "the Jupyter server"


def _lock_path(locks: Path, host: str) -> Path:
    return locks / f"{hashlib.sha256(host.encode()).hexdigest()[:24]}.lock"


class DispatcherLock:
    """The exclusive lock that says a dispatcher identity is live in this process."""

    def __init__(self, host: str, fd: int | None) -> None:
        self.host = host
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _try_lock(path: Path) -> int | None:
    """An fd holding the exclusive lock on ``path``, or None when someone else holds it."""
    assert fcntl is not None
    # O_CLOEXEC (Python's default): runners and kernels exec'd from here do not inherit it,
    # so an orphaned kernel cannot keep a dead dispatcher looking alive.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def take(locks: Path, base: str, kind: str) -> DispatcherLock:
    """The first identity of ``kind`` no live process holds, locked for this process."""
    if fcntl is None:
        return DispatcherLock(identity(base, kind, 1), None)
    locks.mkdir(parents=True, exist_ok=True)
    for slot in range(1, MAX_SLOTS + 1):
        host = identity(base, kind, slot)
        fd = None
        for _ in range(PROBE_RETRIES):
            # Another process's alive() holds a free lock for an instant: look again
            # before taking the next slot, so a restarted server gets its own back.
            if (fd := _try_lock(_lock_path(locks, host))) is not None:
                break
            time.sleep(0.02)
        if fd is not None:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"host": host, "pid": os.getpid()}).encode() + b"\n")
            return DispatcherLock(host, fd)
    raise RuntimeError(f"{MAX_SLOTS} {kind} dispatchers are live on {base}; none is free")


def alive(locks: Path, host: str) -> bool:
    """Whether a live process holds ``host``'s lock (False for an identity never locked)."""
    if fcntl is None:
        return True  # cannot tell: never recover another process's runs
    path = _lock_path(locks, host)
    if not path.exists():
        return False
    fd = _try_lock(path)
    if fd is None:
        return True
    os.close(fd)
    return False
