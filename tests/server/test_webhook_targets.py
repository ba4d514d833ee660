"""A real server with the default webhook policy (public addresses only) and a real receiver on
127.0.0.1: a job cannot be defined to call it (400 naming the field), and a definition written
before the check (or under a laxer policy) is refused again when its run ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.test_jobs import jobs, store_url, wait_for  # noqa: F401
from tests.unit.test_notify import Receiver, serve_hooks

pytestmark = pytest.mark.kernel


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_hooks() as rec:
        yield rec


async def test_webhooks_to_internal_addresses_are_refused_then_and_at_delivery(
    jobs,  # noqa: F811
    api,
    receiver: Receiver,
):
    for url, why in (
        (receiver.url("/hook"), "127.0.0.1 is a loopback address"),
        (f"http://localhost:{receiver.port}/hook", "localhost resolves to"),
        ("http://169.254.169.254/latest/meta-data/iam/", "a link-local address"),
    ):
        code, body = await api("POST", "jobs", {
            "name": "probe", "notebook_path": "nb/fail.ipynb",
            "notify": {"webhooks": [url]},
        })  # fmt: skip
        assert code == 400, body
        assert body["error"]["details"]["field"] == "notify.webhooks.0", body
        assert why in body["error"]["message"], body
    code, body = await api("GET", "jobs")
    assert body["jobs"] == []
    # A definition that got in before (an older server, a laxer policy since tightened):
    code, job = await api("POST", "jobs", {"name": "old", "notebook_path": "nb/fail.ipynb"})
    assert code == 201, job
    from jupyter_dataops.store import tables as t

    platform = jobs.web_app.settings["dataops"]
    with platform.store.session() as s:
        s.get(t.JobDefinition, job["id"]).notify = {
            "on": ["failure"], "webhooks": [receiver.url("/hook")], "emails": []
        }  # fmt: skip
    code, run = await api("POST", "runs", {"job": "old"})
    done = await wait_for(api, run["id"])
    assert done["status"] == "failed"
    platform.notifier.drain()
    code, done = await api("GET", f"runs/{run['id']}")
    [note] = done["notifications"]
    assert note["status"] == "failed" and note["attempts"] == 1, note
    assert note["error"].startswith("refused: 127.0.0.1 is a loopback address"), note
    assert receiver.hooks == []  # the server never called it
