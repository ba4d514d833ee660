"""Team mode for real: OS users made for the test, the users' venv, the service as its own
user. These tests need root (they create and remove OS users, as `make team` does)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_dataops.team import stack

REPO = Path(__file__).resolve().parents[2]
TEAM_TEST_DIR = REPO / ".team-test"


free_port_block = stack.free_port_block


@pytest.fixture(scope="session")
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("team-mode tests create OS users: run them as root (CI does)")


@pytest.fixture(scope="session")
def team_venv(root_only: None) -> Path:
    """The users' venv (built on /usr/bin/python3 with this checkout), kept between runs."""
    import fcntl

    team = stack.Team(TEAM_TEST_DIR)
    TEAM_TEST_DIR.mkdir(exist_ok=True)
    os.chmod(TEAM_TEST_DIR, 0o755)
    with open(TEAM_TEST_DIR / ".lock", "w") as lock:  # test processes in parallel: one builds
        fcntl.flock(lock, fcntl.LOCK_EX)
        stack.make_venv(team)
        stack.install_proxy(stack.Team(TEAM_TEST_DIR, node_dir=TEAM_TEST_DIR / "node"))
    return team.venv


class OsUsers:
    """OS users made for one test (names unique to the run), removed after it."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(2)
        self.made: list[str] = []

    def __call__(self, role: str) -> str:
        name = f"dt{self.tag}-{role}"[:31]
        stack.ensure_user(name)
        self.made.append(name)
        return name

    def remove(self) -> None:
        for name in reversed(self.made):
            stack.remove_user(name)


@pytest.fixture
def os_users(root_only: None) -> Iterator[OsUsers]:
    users = OsUsers()
    try:
        yield users
    finally:
        users.remove()
