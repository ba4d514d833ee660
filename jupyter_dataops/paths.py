"""Workspace paths that users name: inside the workspace root, never in its state directory.

``<root>/.dataops/`` holds the metadata store, the signing key and every run's files (other
users' inputs, outputs and logs). A notebook, a file dataset or any other path a user gives is
resolved here (symlinks followed) and refused when it leaves the workspace or reaches into the
state directory, so nothing a user names can read or run what the platform keeps there.
"""

from __future__ import annotations

import os
from pathlib import Path

from .exceptions import Forbidden

STATE_DIR = ".dataops"
GLOB_CHARS = "*?["


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


def in_state_dir(root: Path, path: Path) -> bool:
    """Whether ``path`` (resolved, symlinks followed) is the state directory or inside it."""
    state = state_dir(root.resolve())
    p = path.resolve()
    if p.is_relative_to(state):
        return True
    # The same directory under another spelling (a case-insensitive file system, a bind
    # mount): compare what the file system says, not the names.
    try:
        target = state.stat()
    except OSError:
        return False
    for a in (p, *p.parents):
        try:
            st = a.stat()
        except OSError:
            continue
        if os.path.samestat(st, target):
            return True
    return False


def fixed_prefix(pattern: str) -> str:
    """The part of a glob pattern before its first wildcard, up to a whole component."""
    cut = min((i for i, ch in enumerate(pattern) if ch in GLOB_CHARS), default=len(pattern))
    if cut == len(pattern):
        return pattern
    return pattern[:cut].rpartition("/")[0] or "."


def workspace_path(root: Path, rel: str | Path, what: str = "paths") -> Path:
    """The resolved path ``rel`` names under ``root``; 403 outside the workspace or in
    its state directory. ``what`` names the kind of path in the message ("notebooks")."""
    base = root.resolve()
    p = (base / rel).resolve()
    if not p.is_relative_to(base):
        raise Forbidden(
            f"{what} must be inside the workspace ({root}): {rel}", details={"path": str(rel)}
        )
    if in_state_dir(base, p):
        raise Forbidden(
            f"{rel}: {what} cannot be in {STATE_DIR}/, the platform's state directory "
            "(the store, the signing key and every run's files)",
            details={"path": str(rel), "state_dir": STATE_DIR},
        )
    return p
