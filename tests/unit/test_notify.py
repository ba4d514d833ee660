"""Notifications on a real store with a real local HTTP receiver: when a run notifies, what the
webhook carries and how it is signed, and what bad settings are refused.

No kernels here (runs are claimed and finished by hand); tests/server/test_notify.py runs real
jobs, with a real SMTP server too.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from pydantic import ValidationError

from jupyter_dataops.exceptions import InvalidRequest
from jupyter_dataops.identity import Principal, TokenSigner
from jupyter_dataops.jobs.notify import Notifier, SmtpSettings, WebhookPolicy, mail_body
from jupyter_dataops.jobs.service import JobService
from jupyter_dataops.models import (
    JobDefinitionPatch,
    JobDefinitionRequest,
    NotifySettings,
    RunRequest,
)  # fmt: skip
from jupyter_dataops.store import Store

ADA = Principal("ada", "ada")
SECRET = b"s" * 32
LOOPBACK_ALLOWED = WebhookPolicy(allowed_networks=("127.0.0.0/8",))


@dataclass
class Hook:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]  # names in lower case (HTTP's are case-insensitive)
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1: answers 200, 500 on paths starting /broken, and a 302
    to /landed on paths starting /redirect. It keeps every request (GETs too)."""

    port: int = 0
    hooks: list[Hook] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextlib.contextmanager
def serve_hooks() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec.hooks.append(Hook(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", rec.url("/landed"))
            else:
                self.send_response(500 if self.path.startswith("/broken") else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_hooks() as rec:
        yield rec


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def verify(secret: str, hook: Hook) -> bool:
    """What a receiver does (docs/jobs.md): HMAC-SHA256 of the raw body, compared in
    constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, hook.headers["x-dataops-signature"])


@pytest.fixture
def service(tmp_path: Path, store_url: str) -> Iterator[JobService]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, tmp_path / "report.ipynb")
    store = Store(store_url)
    store.migrate()
    # No SMTP server; the receivers are on 127.0.0.1, which webhooks may call only when allowed.
    notifier = Notifier(store, SECRET, SmtpSettings(), webhooks=LOOPBACK_ALLOWED)
    notifier.backoff_s = 0.01
    svc = JobService(store, tmp_path, TokenSigner(SECRET), lambda: [], notifier=notifier)
    yield svc
    notifier.close()
    store.close()


def attempt(svc: JobService, job: str, status: str, error: dict[str, Any] | None = None) -> str:
    """Run one attempt of ``job`` by hand: submit (or take the queued retry), claim, finish."""
    queued = [r for r in svc.list_runs(ADA, job=job) if r.status == "queued"]
    run_id = queued[0].id if queued else svc.submit(ADA, RunRequest(job=job))[0].id
    assert svc.claim(run_id, "http://127.0.0.1:1/") is not None
    svc.finish(run_id, status, error)
    assert svc.notifier is not None
    svc.notifier.drain()
    return run_id


def test_only_the_last_attempt_of_a_failing_run_notifies(service: JobService, receiver: Receiver):
    service.notifier.server_url = "http://dataops.example/lab/"  # type: ignore[union-attr]
    job = service.create_job(
        ADA,
        JobDefinitionRequest(
            name="nightly", notebook_path="report.ipynb", max_retries=1, retry_backoff_s=0,
            parameters={"x": 2}, notify=NotifySettings(webhooks=[receiver.url("/hook")]),
        ),
    )  # fmt: skip
    assert job.notify is not None and job.notify.on == ["failure"]
    assert job.webhook_secret == service.notifier.secret_for(job.id)  # type: ignore[union-attr]
    error = {"reason": "cell_error", "message": "ZeroDivisionError: division by zero",
             "ename": "ZeroDivisionError", "cell_index": 2, "traceback": "..."}  # fmt: skip
    first = attempt(service, "nightly", "failed", error)
    assert receiver.hooks == [] and service.get_run(ADA, first).notifications == []
    last = attempt(service, "nightly", "timed_out", error)
    [hook] = receiver.hooks
    body = hook.json()
    assert body["run_id"] == last and body["attempt"] == 2 and body["status"] == "timed_out"
    assert body["event"] == "failure" and body["job_name"] == "nightly"
    assert body["parameters"] == {"x": 2} and body["notebook_path"] == "report.ipynb"
    assert body["error"]["message"] == "ZeroDivisionError: division by zero"
    assert body["error"]["cell_index"] == 2 and body["duration_s"] >= 0
    assert body["url"] == f"http://dataops.example/lab/dataops/api/v1/runs/{last}"
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["user-agent"].startswith("jupyter-dataops/")
    assert job.webhook_secret and verify(job.webhook_secret, hook)
    assert not verify(service.notifier.secret_for("other"), hook)  # type: ignore[union-attr]
    [note] = service.get_run(ADA, last).notifications
    assert (note.channel, note.target, note.event, note.status, note.attempts, note.error) == (
        "webhook",
        receiver.url("/hook"),
        "failure",
        "sent",
        1,
        None,
    )
    assert service.get_run(ADA, last).status == "timed_out"


def test_success_cancel_and_unreachable_targets(service: JobService, receiver: Receiver):
    dead = f"http://127.0.0.1:{closed_port()}/hook"
    service.create_job(
        ADA,
        JobDefinitionRequest(
            name="daily", notebook_path="report.ipynb",
            notify=NotifySettings(on=["success"], webhooks=[receiver.url("/broken"), dead]),
        ),
    )  # fmt: skip
    failed = attempt(service, "daily", "failed", {"reason": "error", "message": "boom"})
    cancelled = attempt(service, "daily", "cancelled")
    assert receiver.hooks == []  # on success only; a cancelled run notifies no one
    assert service.get_run(ADA, failed).notifications == []
    assert service.get_run(ADA, cancelled).notifications == []
    ok = attempt(service, "daily", "succeeded")
    assert [h.path for h in receiver.hooks] == ["/broken"] * 3  # 5xx: retried
    notes = {n.target: n for n in service.get_run(ADA, ok).notifications}
    assert notes[receiver.url("/broken")].status == "failed"
    assert notes[receiver.url("/broken")].attempts == 3
    assert "HTTP 500" in (notes[receiver.url("/broken")].error or "")
    assert notes[dead].status == "failed" and notes[dead].attempts == 3
    assert "cannot reach" in (notes[dead].error or "")
    assert service.get_run(ADA, ok).status == "succeeded"  # delivery never changes a run
    runs = {r.id: r for r in service.list_runs(ADA, job="daily")}
    assert len(runs[ok].notifications) == 2 and runs[failed].notifications == []


def test_emails_need_an_smtp_server(service: JobService):
    req = JobDefinitionRequest(
        name="mailed", notebook_path="report.ipynb", notify=NotifySettings(emails=["a@b.org"])
    )
    with pytest.raises(InvalidRequest) as e:
        service.create_job(ADA, req)
    assert e.value.details == {"field": "notify.emails"} and "smtp_host" in e.value.message
    assert service.list_jobs(ADA) == []
    service.create_job(ADA, req.model_copy(update={"notify": None}))
    with pytest.raises(InvalidRequest):
        service.update_job(
            ADA, "mailed", JobDefinitionPatch(notify=NotifySettings(emails=["a@b.org"]))
        )
    assert service.get_job(ADA, "mailed").notify is None


def test_a_patch_replaces_or_removes_the_notify_settings(service: JobService, receiver: Receiver):
    service.create_job(ADA, JobDefinitionRequest(name="j", notebook_path="report.ipynb"))
    patch = JobDefinitionPatch.model_validate({"notify": {"webhooks": [receiver.url("/h")]}})
    job = service.update_job(ADA, "j", patch)
    assert job.notify == NotifySettings(on=["failure"], webhooks=[receiver.url("/h")])
    assert job.webhook_secret
    job = service.update_job(ADA, "j", JobDefinitionPatch.model_validate({"notify": None}))
    assert job.notify is None and job.webhook_secret is None


@pytest.mark.parametrize(
    ("notify", "field"),
    [
        ({"webhooks": ["ftp://example.org/hook"]}, "webhooks.0"),
        ({"webhooks": ["https://"]}, "webhooks.0"),
        ({"webhooks": ["example.org/hook"]}, "webhooks.0"),
        ({"webhooks": [f"https://example.org/{i}" for i in range(11)]}, "webhooks"),
        ({"emails": ["a@b.org", "not an address"]}, "emails.1"),
        ({"emails": ["ada@localhost"]}, "emails.0"),
        ({"on": ["sometimes"]}, "on.0"),
        ({"webhook": ["https://example.org"]}, "webhook"),
    ],
)
def test_bad_notify_settings_name_the_field(notify: dict[str, Any], field: str):
    with pytest.raises(ValidationError) as e:
        JobDefinitionRequest.model_validate(
            {"name": "j", "notebook_path": "n.ipynb", "notify": notify}
        )
    assert [".".join(map(str, err["loc"])) for err in e.value.errors()] == [f"notify.{field}"]


def test_good_notify_settings():
    n = NotifySettings.model_validate(
        {
            "on": ["success", "failure"],
            "webhooks": ["https://hooks.example.org:8443/x?y=1"],
            "emails": ["ops.team+jobs@example.org"],
        }
    )
    assert n.on == ["success", "failure"] and len(n.webhooks) == len(n.emails) == 1


def test_the_mail_says_what_happened():
    text = mail_body(
        {
            "job_name": "nightly",
            "status": "timed_out",
            "run_id": "r1",
            "attempt": 2,
            "notebook_path": "report.ipynb",
            "parameters": {"x": 2},
            "owner": "ada",
            "trigger": "retry",
            "started_at": "2026-01-01T00:00:00+00:00",
            "finished_at": "2026-01-01T00:01:00+00:00",
            "duration_s": 60.0,
            "error": {
                "message": "ZeroDivisionError: division by zero",
                "cell_index": 2,
                "cell_id": "c-3",
            },
            "url": "http://x/dataops/api/v1/runs/r1",
        }
    )
    assert text.startswith("Job nightly timed out (run r1, attempt 2).")
    assert "Error:      ZeroDivisionError: division by zero\n" in text and '{"x": 2}' in text
    # The third cell, counted as the Jobs tab counts them (the index is 0-based).
    assert "Cell:       3 (id c-3) of report.ipynb" in text
    assert "Duration:   60.0 s" in text and "http://x/dataops/api/v1/runs/r1" in text
