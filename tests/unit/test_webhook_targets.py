"""Webhooks call only what the policy allows: no loopback, link-local or private address unless
a network is allowed, checked when the job is defined (a 400 naming the field and why) and
again at each delivery, on the address the name resolves to then, which is the one connected
to. Redirects are not followed.

A real store and a real HTTP receiver on 127.0.0.1; a name resolving differently from one
lookup to the next (DNS rebinding) is played by replacing ``socket.getaddrinfo`` for one test
name, since no DNS server of ours can answer this machine's lookups.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_dataops.exceptions import InvalidRequest
from jupyter_dataops.identity import TokenSigner
from jupyter_dataops.jobs.notify import Notifier, SmtpSettings, WebhookPolicy
from jupyter_dataops.jobs.service import JobService
from jupyter_dataops.models import JobDefinitionPatch, JobDefinitionRequest, NotifySettings
from jupyter_dataops.store import Store
from tests.unit.test_notify import ADA, SECRET, Receiver, attempt, receiver  # noqa: F401

PUBLIC = "https://93.184.215.14/hook"  # a public address: allowed, and never called here
INTERNAL = [
    ("http://127.0.0.1:8888/api", "127.0.0.1 is a loopback address"),
    ("http://localhost:8888/api", "localhost resolves to"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://10.0.0.5/hook", "a private address"),
    ("https://192.168.1.1/hook", "a private address"),
    ("http://[::1]:8888/hook", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/hook", "a loopback address"),
    ("http://0.0.0.0:8888/hook", "an unspecified address"),
    ("http://2130706433/hook", "resolves to 127.0.0.1, a loopback address"),
    ("http://100.64.0.1/hook", "a non-public address"),
]


def make_service(root: Path, url: str, policy: WebhookPolicy) -> JobService:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, root / "report.ipynb")
    store = Store(url)
    store.migrate()
    notifier = Notifier(store, SECRET, SmtpSettings(), webhooks=policy)
    notifier.backoff_s = 0.01
    return JobService(store, root, TokenSigner(SECRET), lambda: [], notifier=notifier)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Any]:
    """Job services with a webhook policy each (and a store each)."""
    made: list[JobService] = []

    def make(policy: WebhookPolicy) -> JobService:
        root = tmp_path / f"ws{len(made)}"
        root.mkdir()
        made.append(make_service(root, f"sqlite:///{root / 'store.db'}", policy))
        return made[-1]

    yield make
    for svc in made:
        assert svc.notifier is not None
        svc.notifier.close()
        svc.store.close()


def job(name: str, *webhooks: str) -> JobDefinitionRequest:
    return JobDefinitionRequest(
        name=name, notebook_path="report.ipynb", notify=NotifySettings(webhooks=list(webhooks))
    )


def test_a_definition_naming_an_internal_address_is_refused_with_the_reason(services):
    svc = services(WebhookPolicy())  # the default: public addresses only
    for url, why in INTERNAL:
        with pytest.raises(InvalidRequest) as e:
            svc.create_job(ADA, job("j", PUBLIC, url))
        assert e.value.details["field"] == "notify.webhooks.1", url
        assert why in e.value.message and "webhook_allowed_networks" in e.value.message, (
            url,
            e.value.message,
        )
    assert svc.list_jobs(ADA) == []  # nothing was written
    svc.create_job(ADA, JobDefinitionRequest(name="j", notebook_path="report.ipynb"))
    with pytest.raises(InvalidRequest) as e:
        svc.update_job(
            ADA, "j", JobDefinitionPatch(notify=NotifySettings(webhooks=[INTERNAL[2][0]]))
        )
    assert e.value.details["field"] == "notify.webhooks.0"
    assert svc.get_job(ADA, "j").notify is None


def test_allowed_networks_and_hosts(services, receiver: Receiver):  # noqa: F811
    loopback = services(WebhookPolicy(allowed_networks=("127.0.0.0/8",)))
    loopback.create_job(ADA, job("local", receiver.url("/hook")))
    with pytest.raises(InvalidRequest, match="a link-local address"):
        loopback.create_job(ADA, job("meta", INTERNAL[2][0]))
    listed = services(
        WebhookPolicy(allowed_hosts=("hooks.example.org",), allowed_networks=("127.0.0.0/8",))
    )
    with pytest.raises(InvalidRequest, match=r"not in c\.DataOps\.webhook_allowed_hosts"):
        listed.create_job(ADA, job("local", receiver.url("/hook")))
    unresolvable = services(
        WebhookPolicy(resolve=lambda host, port: (_ for _ in ()).throw(socket.gaierror(-2, "no")))
    )
    with pytest.raises(InvalidRequest, match="does not resolve"):
        unresolvable.create_job(ADA, job("nowhere", "https://nowhere.example.org/hook"))


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``hooks.test`` resolves to 127.0.0.2 for its first ``n`` lookups, then to 127.0.0.1."""
    real = socket.getaddrinfo
    seen: list[str] = []

    def install(n: int) -> list[str]:
        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != "hooks.test":
                return real(host, port, *args, **kwargs)
            seen.append(host)
            ip = "127.0.0.2" if len(seen) <= n else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return seen

    return install


def test_a_name_that_resolves_to_loopback_at_delivery_is_not_called(
    services,
    receiver: Receiver,  # noqa: F811
    rebinding,
):
    # 127.0.0.2 is allowed (nothing listens there); 127.0.0.1, where the receiver is, is not.
    svc = services(WebhookPolicy(allowed_networks=("127.0.0.2/32",)))
    rebinding(1)  # the definition's lookup says 127.0.0.2, every later one 127.0.0.1
    url = f"http://hooks.test:{receiver.port}/hook"
    svc.create_job(ADA, job("rebound", url))
    run_id = attempt(svc, "rebound", "failed", {"reason": "error", "message": "boom"})
    assert receiver.hooks == []
    [note] = svc.get_run(ADA, run_id).notifications
    assert note.status == "failed" and note.attempts == 1, note
    assert "refused: hooks.test resolves to 127.0.0.1, a loopback address" in (note.error or "")


def test_a_delivery_connects_to_the_address_it_checked(
    services,
    receiver: Receiver,  # noqa: F811
    rebinding,
):
    svc = services(WebhookPolicy(allowed_networks=("127.0.0.2/32",)))
    seen = rebinding(2)  # the definition and the delivery's check see 127.0.0.2 ...
    url = f"http://hooks.test:{receiver.port}/hook"
    svc.create_job(ADA, job("pinned", url))
    run_id = attempt(svc, "pinned", "failed", {"reason": "error", "message": "boom"})
    # ... and the delivery went there (refused: nothing listens), not to a fresh lookup's
    # 127.0.0.1, where the receiver would have answered.
    assert receiver.hooks == []
    [note] = svc.get_run(ADA, run_id).notifications
    # The first attempt found no one at 127.0.0.2; the second looked up again and was refused.
    assert note.status == "failed" and note.attempts == 2, note
    assert "refused: hooks.test resolves to 127.0.0.1" in (note.error or ""), note
    assert len(seen) == 3  # one lookup each: the definition's and each attempt's


def test_redirects_are_not_followed(services, receiver: Receiver):  # noqa: F811
    svc = services(WebhookPolicy(allowed_networks=("127.0.0.0/8",)))
    svc.create_job(ADA, job("moved", receiver.url("/redirect")))
    run_id = attempt(svc, "moved", "failed", {"reason": "error", "message": "boom"})
    assert [h.path for h in receiver.hooks] == ["/redirect"]  # never /landed
    [note] = svc.get_run(ADA, run_id).notifications
    assert note.status == "failed" and note.attempts == 1
    assert "HTTP 302" in (note.error or "") and "redirects are not followed" in (note.error or "")
