"""Job notifications end to end: real runs in real kernels, a real SMTP server (aiosmtpd) and a
real HTTP server receiving the webhooks, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import nbformat
import pytest
from aiosmtpd.controller import Controller

from tests.server.conftest import server_config
from tests.server.test_jobs import jobs, store_url, wait_for  # noqa: F401
from tests.unit.test_notify import Receiver, serve_hooks, verify

pytestmark = pytest.mark.kernel


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def jp_server_config(store_url: str, smtp: tuple[Mailbox, int]) -> dict[str, Any]:  # noqa: F811
    return server_config(
        store_url,
        DataOps={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "smtp_from": "jobs@lab.test",
            "webhook_allowed_networks": ["127.0.0.0/8"],  # the receiver is on loopback
        },
    )


@pytest.fixture
def server(jobs):  # type: ignore[no-untyped-def]  # noqa: F811
    """The server with its extension started (``jobs`` of test_jobs)."""
    return jobs


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_hooks() as rec:
        yield rec


def drain(server: Any) -> None:
    """Wait for every notification asked for so far (then absent ones were never sent)."""
    server.web_app.settings["dataops"].notifier.drain()


async def notifications(api, run_id: str, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, run = await api("GET", f"runs/{run_id}")
        assert code == 200, run
        if len(run["notifications"]) >= n:
            return run["notifications"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} has {run['notifications']}, not {n} notifications")


async def last_attempt(api, job: str, attempt: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = await api("GET", f"runs?job={job}")
        assert code == 200, body
        for run in body["runs"]:
            if run["attempt"] == attempt:
                return await wait_for(api, run["id"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no attempt {attempt} of {job}")


async def test_a_failing_job_notifies_once_after_its_last_attempt(server, api, receiver, smtp):
    box, _ = smtp
    code, job = await api(
        "POST",
        "jobs",
        {
            "name": "flaky",
            "notebook_path": "nb/fail.ipynb",
            "parameters": {"x": 1},  # papermill then runs a cell more than the notebook has
            "max_retries": 1,
            "retry_backoff_s": 0,
            "notify": {"webhooks": [receiver.url("/hook")], "emails": ["ops@example.org"]},
        },
    )
    assert code == 201, job
    assert job["notify"] == {
        "on": ["failure"],
        "webhooks": [receiver.url("/hook")],
        "emails": ["ops@example.org"],
    }
    code, first = await api("POST", "runs", {"job": "flaky"})
    assert code == 201, first
    first = await wait_for(api, first["id"])
    last = await last_attempt(api, "flaky", 2)
    assert first["status"] == last["status"] == "failed"
    notes = await notifications(api, last["id"], 2)
    drain(server)
    assert sorted((n["channel"], n["target"], n["event"], n["status"]) for n in notes) == [
        ("email", "ops@example.org", "failure", "sent"),
        ("webhook", receiver.url("/hook"), "failure", "sent"),
    ]
    code, first = await api("GET", f"runs/{first['id']}")
    assert first["notifications"] == []  # a retry followed: no one was told yet
    [hook] = receiver.hooks
    assert verify(job["webhook_secret"], hook)
    body = hook.json()
    assert body["run_id"] == last["id"] and body["attempt"] == 2 and body["status"] == "failed"
    assert body["job_id"] == job["id"] and body["job_name"] == "flaky"
    assert "ZeroDivisionError" in body["error"]["message"]
    # The failing cell as the notebook numbers it (the third; its index is 2), and its id.
    failing = nbformat.read(Path(server.root_dir) / "nb" / "fail.ipynb", as_version=4).cells[2]
    assert (body["error"]["cell_index"], body["error"]["cell_id"]) == (2, failing.id)
    assert body["url"].endswith(f"/dataops/api/v1/runs/{last['id']}")
    assert body["started_at"] and body["finished_at"] and body["duration_s"] >= 0
    [mail] = box.messages
    assert mail["Subject"] == f"[dataops] flaky failed (run {last['id']})"
    assert mail["From"] == "jobs@lab.test" and mail["To"] == "ops@example.org"
    text = mail.get_content()
    assert "ZeroDivisionError" in text and "nb/fail.ipynb" in text and last["id"] in text
    assert f"Cell:       3 (id {failing.id}) of nb/fail.ipynb" in text


async def test_a_success_notifies_only_when_asked(server, api, receiver):
    for name, on in (("quiet", ["failure"]), ("loud", ["success"])):
        code, body = await api(
            "POST",
            "jobs",
            {
                "name": name,
                "notebook_path": "nb/hello.ipynb",
                "notify": {"on": on, "webhooks": [receiver.url(f"/{name}")]},
            },
        )
        assert code == 201, body
    code, quiet = await api("POST", "runs", {"job": "quiet"})
    quiet = await wait_for(api, quiet["id"])
    code, loud = await api("POST", "runs", {"job": "loud", "parameters": {"name": "ada"}})
    loud = await wait_for(api, loud["id"])
    assert quiet["status"] == loud["status"] == "succeeded"
    [note] = await notifications(api, loud["id"], 1)
    drain(server)
    assert (note["event"], note["status"], note["error"]) == ("success", "sent", None)
    assert [h.path for h in receiver.hooks] == ["/loud"]
    body = receiver.hooks[0].json()
    assert body["run_id"] == loud["id"] and body["error"] is None
    assert body["parameters"]["name"] == "ada"
    code, quiet = await api("GET", f"runs/{quiet['id']}")
    assert quiet["notifications"] == []


async def test_a_broken_webhook_is_retried_and_recorded(server, api, receiver):
    code, body = await api(
        "POST",
        "jobs",
        {
            "name": "hooked",
            "notebook_path": "nb/hello.ipynb",
            "notify": {"on": ["success", "failure"], "webhooks": [receiver.url("/broken")]},
        },
    )
    assert code == 201, body
    code, run = await api("POST", "runs", {"job": "hooked"})
    [note] = await notifications(api, run["id"], 1)
    assert note["status"] == "failed" and note["attempts"] == 3
    assert "HTTP 500" in note["error"]
    assert [h.path for h in receiver.hooks] == ["/broken"] * 3
    code, run = await api("GET", f"runs/{run['id']}")
    assert run["status"] == "succeeded" and run["error"] is None


@pytest.mark.parametrize(
    ("notify", "field"),
    [
        ({"webhooks": ["ftp://example.org/x"]}, "notify.webhooks.0"),
        ({"emails": ["ops@example.org", "nobody"]}, "notify.emails.1"),
        ({"on": ["always"]}, "notify.on.0"),
        ({"emails": [f"u{i}@example.org" for i in range(11)]}, "notify.emails"),
    ],
)
async def test_bad_notify_input_is_a_400_naming_the_field(server, api, notify, field):
    base = {"name": "j", "notebook_path": "nb/hello.ipynb"}
    code, body = await api("POST", "jobs", {**base, "notify": notify})
    assert code == 400, body
    assert [e["field"] for e in body["error"]["details"]["errors"]] == [field]
    assert field in body["error"]["message"]
    code, body = await api("GET", "jobs")
    assert body["jobs"] == []  # nothing was written
    good = {"webhooks": ["https://93.184.215.14/x"]}  # public: allowed (never called here)
    code, job = await api("POST", "jobs", {**base, "notify": good})
    assert code == 201, job
    code, body = await api("PATCH", "jobs/j", {"notify": notify, "description": "changed"})
    assert code == 400 and field in body["error"]["message"]
    code, job = await api("GET", "jobs/j")
    assert job["notify"]["webhooks"] == good["webhooks"] and job["description"] == ""
