"""The authorization matrix: every route and method, for every kind of caller.

The rows are derived from the registered routes: a route or method without a row here fails
``test_every_route_has_a_row``, so no endpoint ships without a decision on who may call it.
Callers: anonymous; a job run's token (on its own run, and on another run); a kernel's token;
the user (ada, who owns the objects); another user (bob); an admin (root). Users come from a
multi-user identity provider (tests/server/identities.py), as they come from JupyterHub.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest
from sqlalchemy import select

from jupyter_dataops.client import TOKEN_ENV
from jupyter_dataops.handlers import RESOURCES, handlers
from jupyter_dataops.handlers.base import NotFoundHandler
from jupyter_dataops.handlers.live import LIVE_PAGES
from jupyter_dataops.handlers.pages import PAGES
from jupyter_dataops.models import ShareLinkRequest, SubscriptionRequest
from jupyter_dataops.store import tables as t

from .conftest import server_config

pytestmark = pytest.mark.kernel

PNG = (  # one white pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)

CALLERS = ("anon", "run", "run_other", "kernel", "user", "other", "admin")
METHODS = ("get", "post", "put", "patch", "delete")

# (route, method): expected status per caller, in CALLERS order. 404 for another user's
# object: it is not revealed. 403: authenticated, not allowed. 401: no valid credentials.
MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("status", "get"): (401, 200, 200, 200, 200, 200, 200),
    ("workspace/validate", "post"): (401, 403, 403, 200, 200, 200, 200),
    ("datasets", "get"): (401, 200, 200, 200, 200, 200, 200),
    ("datasets", "post"): (401, 403, 403, 201, 201, 201, 201),
    ("datasets/{name}", "get"): (401, 200, 200, 200, 200, 200, 200),
    ("datasets/{name}/refresh", "post"): (401, 403, 403, 200, 200, 403, 200),
    ("datasets/{name}/preview", "get"): (401, 200, 200, 200, 200, 403, 403),
    ("datasets/{name}/pull", "post"): (401, 200, 200, 200, 200, 403, 403),
    ("audit", "get"): (401, 403, 403, 403, 403, 403, 200),
    ("notebooks/parameters", "get"): (401, 403, 403, 200, 200, 200, 200),
    ("jobs", "get"): (401, 403, 403, 200, 200, 200, 200),
    ("jobs", "post"): (401, 403, 403, 201, 201, 201, 201),
    ("jobs/{ref}", "get"): (401, 403, 403, 200, 200, 404, 200),
    ("jobs/{ref}", "patch"): (401, 403, 403, 200, 200, 404, 403),
    ("jobs/{ref}", "delete"): (401, 403, 403, 204, 204, 404, 204),
    ("runs", "get"): (401, 403, 403, 200, 200, 200, 200),
    ("runs", "post"): (401, 403, 403, 201, 201, 201, 201),
    ("runs/{run_id}", "get"): (401, 200, 403, 200, 200, 404, 200),
    ("runs/{run_id}/cancel", "post"): (401, 403, 403, 200, 200, 404, 200),
    ("runs/{run_id}/rerun", "post"): (401, 403, 403, 201, 201, 404, 403),
    ("runs/{run_id}/log", "get"): (401, 403, 403, 200, 200, 404, 200),
    ("runs/{run_id}/outputs/{name}", "get"): (401, 200, 403, 200, 200, 404, 200),
    ("token/renew", "post"): (401, 200, 200, 200, 400, 400, 400),
    ("openapi.json", "get"): (401, 403, 403, 200, 200, 200, 200),
    ("dashboards", "get"): (401, 403, 403, 200, 200, 200, 200),
    ("dashboards", "post"): (401, 403, 403, 201, 201, 404, 403),
    ("dashboards/{slug}", "get"): (401, 403, 403, 200, 200, 404, 200),
    ("dashboards/{slug}", "patch"): (401, 403, 403, 200, 200, 404, 200),
    ("dashboards/{slug}", "delete"): (401, 403, 403, 204, 204, 404, 204),
    ("dashboards/{slug}/renders", "get"): (401, 403, 403, 200, 200, 404, 200),
    ("dashboards/{slug}/shares", "get"): (401, 403, 403, 200, 200, 404, 200),
    ("dashboards/{slug}/shares", "post"): (401, 403, 403, 403, 201, 404, 403),
    ("dashboards/{slug}/shares/{link_id}", "delete"): (401, 403, 403, 200, 200, 404, 200),
    ("dashboards/{slug}/subscription", "put"): (401, 403, 403, 200, 200, 404, 200),
    ("dashboards/{slug}/subscription", "delete"): (401, 403, 403, 204, 204, 404, 204),
    # Pages, for browsers: no credentials is a redirect to the login page; a kernel's or a
    # run's token never opens one; a dashboard's non-viewers learn nothing (403, not 404).
    ("page:", "get"): (302, 403, 403, 403, 200, 200, 200),
    ("page:{slug}", "get"): (302, 403, 403, 403, 200, 403, 200),
    ("page:{slug}/thumbnail.png", "get"): (302, 403, 403, 403, 200, 403, 200),
    ("page:{slug}/share", "get"): (200, 200, 200, 200, 200, 200, 200),
    ("page:_static/{path}", "get"): (200, 200, 200, 200, 200, 200, 200),
    ("page:{slug}/live", "get"): (302, 403, 403, 403, 200, 403, 200),
    ("page:_live/api/kernels/{kernel_id}", "get"): (401, 403, 403, 403, 403, 403, 403),
    ("page:_live/api/kernels/{kernel_id}", "delete"): (401, 403, 403, 403, 403, 403, 403),
    ("tracking/runs", "post"): (401, 403, 403, 201, 201, 201, 201),
    ("tracking/kernels/{kernel_id}", "get"): (401, 403, 403, 200, 200, 200, 200),
    ("tracking/runs/{mlflow_run_id}", "get"): (401, 200, 403, 200, 200, 404, 200),
    ("tracking/runs/{mlflow_run_id}/log", "post"): (401, 204, 403, 204, 204, 404, 403),
    ("tracking/runs/{mlflow_run_id}/end", "post"): (401, 403, 403, 200, 200, 404, 403),
    ("tracking/runs/{mlflow_run_id}/metrics/{key}", "get"): (401, 403, 403, 200, 200, 404, 200),
    # (only the owner makes code run as the owner; the run token's run is running, not done)
    ("tracking/runs/{mlflow_run_id}/reproduce", "post"): (401, 403, 403, 201, 201, 404, 403),
    ("experiments", "get"): (401, 403, 403, 200, 200, 200, 200),
    ("experiments/{experiment_id}/runs", "get"): (401, 403, 403, 200, 200, 404, 200),
    ("lineage", "get"): (401, 403, 403, 200, 200, 404, 200),
    # MLflow's REST API: a run token reads and writes its own run's MLflow run only; the owner
    # (and their kernels) read and write theirs; admins read, never write, others' runs.
    ("mlflow/api/2.0/mlflow/{op}", "get"): (401, 200, 403, 200, 200, 404, 200),
    ("mlflow/api/2.0/mlflow/{op}", "post"): (401, 200, 403, 200, 200, 404, 403),
    ("mlflow/api/2.0/mlflow-artifacts/artifacts", "get"): (401, 200, 403, 200, 200, 404, 200),
    ("mlflow/api/2.0/mlflow/logged-models", "post"): (401, 200, 403, 200, 200, 404, 403),
    ("mlflow/api/2.0/mlflow/logged-models/{rest}", "get"): (401, 200, 403, 200, 200, 404, 200),
    # (a search answers everyone, with the models they may see only)
    ("mlflow/api/2.0/mlflow/logged-models/{rest}", "post"): (401, 200, 200, 200, 200, 200, 200),
    ("mlflow/api/2.0/mlflow/logged-models/{rest}", "patch"): (401, 200, 403, 200, 200, 404, 403),
    ("mlflow/api/2.0/mlflow/logged-models/{rest}", "delete"): (
        401,
        200,
        403,
        200,
        200,
        404,
        403,
    ),
    ("mlflow/api/2.0/mlflow-artifacts/artifacts/{path}", "get"): (
        401,
        200,
        403,
        200,
        200,
        404,
        200,
    ),
    ("mlflow/api/2.0/mlflow-artifacts/artifacts/{path}", "put"): (
        401,
        200,
        403,
        200,
        200,
        404,
        403,
    ),
    **{("(unknown)", m): (401, 404, 404, 404, 404, 404, 404) for m in METHODS},
}


def _template(path: str) -> str:
    """``runs/(?P<run_id>[0-9a-f]{32})`` -> ``runs/{run_id}``."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)


def _implemented(handler: type) -> set[str]:
    return {m for m in METHODS if m in vars(handler)}


def test_every_route_has_a_row():
    registered = set()
    for h in RESOURCES:
        assert _implemented(h) == set(h.operations), (
            f"{h.__name__}: methods {_implemented(h)} but operations {set(h.operations)}"
        )
        registered |= {(_template(h.path), m) for m in h.operations}
    assert any(route[1] is NotFoundHandler for route in handlers())
    registered |= {("(unknown)", m) for m in METHODS}
    for h in [*PAGES, *LIVE_PAGES]:
        assert _implemented(h) == set(h.operations), h
        registered |= {(f"page:{_template(h.path)}", m) for m in h.operations}
    registered.add(("page:_static/{path}", "get"))
    assert registered == set(MATRIX), (
        f"routes without a row: {sorted(registered - set(MATRIX))}; "
        f"rows without a route: {sorted(set(MATRIX) - registered)}"
    )


POLICY = """
admins: [root]
groups:
  analysts:
    members: [ada]
datasets:
  flights:
    owner: ada
    source: {type: csv, path: data/flights.csv}
grants:
  - groups: [analysts]
    datasets: [flights]
"""


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(x)")]
    nbformat.write(nb, path)


# Subscribing to a dashboard needs an SMTP server known (nothing is sent here).
SMTP = {"smtp_host": "127.0.0.1", "smtp_port": 9}


@pytest.fixture(params=["personal", "service"])
def mode(request: pytest.FixtureRequest) -> str:
    """The same matrix on a personal server and on the team's service (configured as
    `jupyter dataops serve` configures it: its authorizer, its standalone users file)."""
    return str(request.param)


@pytest.fixture
def jp_server_config(store_url: str, mode: str, tmp_path: Path) -> dict[str, Any]:
    if mode == "personal":
        return server_config(
            store_url,
            ServerApp={"identity_provider_class": "tests.server.identities.HeaderUsers"},
            DataOps={"warm_kernels": 0, "job_workers": 1, **SMTP},
        )
    from jupyter_dataops.team.service import ServiceAuthorizer, TokenFileUsers

    users = tmp_path / "users.json"
    users.write_text(json.dumps({
        name: {"token_sha256": hashlib.sha256(f"user-{name}".encode()).hexdigest(), "groups": []}
        for name in ("ada", "bob", "root")
    }))  # fmt: skip
    return server_config(
        store_url,
        ServerApp={
            "identity_provider_class": TokenFileUsers,
            "authorizer_class": ServiceAuthorizer,
        },
        TokenFileUsers={"users_file": str(users)},
        DataOps={"mode": "service", "warm_kernels": 0, "job_workers": 1, **SMTP},
    )


def expected(mode: str, route: str, row: tuple[int, ...]) -> tuple[int, ...]:
    """The service runs no kernels: a kernel's token there is as good as none (a public page
    still answers it). Nor does it run live views (their kernels would be the service's own
    user's): a 503 for whoever would otherwise get one."""
    if mode != "service":
        return row
    by = dict(zip(CALLERS, row, strict=True))
    by["kernel"] = 200 if by["anon"] == 200 else 401
    if route.startswith(("page:{slug}/live", "page:_live")):
        by.update({c: 503 for c in ("user", "other", "admin")})
    return tuple(by[c] for c in CALLERS)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


class World:
    """The objects the matrix calls on, all owned by ada, and one credential per caller."""

    mode = "personal"

    def __init__(self, serverapp: Any, root: Path) -> None:
        self.app = serverapp
        self.platform = serverapp.web_app.settings["dataops"]
        self.root = root
        self.n = 0
        self.running = self.run("running")  # the run token's own run
        self.done = self.run("succeeded", host=self.platform.jobs.host)
        self.job = self.job_definition()
        self.board = self.dashboard(with_render=True)
        # The MLflow runs: the running job run's, and one of ada's own (running) notebook runs.
        self.models: dict[str, str] = {}  # MLflow run -> a logged model of it
        self.ml_running = self.mlflow_run(self.running)
        self.ml_ada = self.mlflow_run(None)
        self.ml_done = self.mlflow_run(self.done)
        self.headers: dict[str, dict[str, str]] = {
            "anon": {"Authorization": ""},
            "run": self._dataops(self.platform.tokens.mint("ada", f"run:{self.running}")),
            "user": {"Authorization": "token user-ada"},
            "other": {"Authorization": "token user-bob"},
            "admin": {"Authorization": "token user-root"},
        }
        self.headers["run_other"] = self.headers["run"]

    @staticmethod
    def _dataops(token: str) -> dict[str, str]:
        return {"Authorization": f"DataOps {token}"}

    async def start_kernel(self, mode: str) -> str | None:
        if mode == "service":  # a kernel token signed by the service, for a kernel it has not
            token = self.platform.tokens.mint("ada", "kernel", kernel_id="not-a-kernel-here")
            self.headers["kernel"] = self._dataops(token)
            return None
        km = self.app.kernel_manager
        kernel_id = await km.start_kernel(kernel_name="python3")
        token = km.get_kernel(kernel_id)._launch_args["env"][TOKEN_ENV]
        self.headers["kernel"] = self._dataops(token)
        return str(kernel_id)

    def unique(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def run(self, status: str, host: str = "elsewhere:/") -> str:
        """A run of ada's, with its input and log on disk (``host`` elsewhere: the local
        executor leaves it alone)."""
        run_id = t.new_id()
        run_dir = self.platform.jobs.runs_dir / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "input.ipynb").write_bytes((self.root / "nb.ipynb").read_bytes())
        (run_dir / "run.log").write_text("hello\n")
        with self.platform.store.session() as s:
            s.add(t.Run(id=run_id, status=status, owner="ada", notebook_path="nb.ipynb",
                        host=host, outputs={"input": "input.ipynb", "log": "run.log"}))  # fmt: skip
        return run_id

    def mlflow_run(self, run_id: str | None) -> str:
        tracking = self.platform.tracking
        client = tracking.client()
        eid = tracking.experiment("matrix")
        mid = client.create_run(eid, tags={"dataops.owner": "ada"}).info.run_id
        art = self.root / "a.txt"
        art.write_text("artifact")
        client.log_artifact(mid, str(art))
        client.log_metric(mid, "m", 1.0)
        model = client._tracking_client.store.create_logged_model(eid, "m", source_run_id=mid)
        self.models[mid] = model.model_id
        with self.platform.store.session() as s:
            s.add(t.TrackedRun(mlflow_run_id=mid, experiment_id=eid, owner="ada",
                               experiment_name="matrix",
                               kind="job" if run_id else "interactive", run_id=run_id))  # fmt: skip
        return mid

    def job_definition(self) -> str:
        name = self.unique("job")
        with self.platform.store.session() as s:
            s.add(t.JobDefinition(name=name, notebook_path="nb.ipynb", owner="ada"))
        return name

    def dashboard(self, with_render: bool = False) -> str:
        """A dashboard of ada's job; ``with_render``: its job has a run to show (an executed
        notebook with an image: the view and its thumbnail)."""
        slug = self.unique("board")
        with self.platform.store.session() as s:
            job = s.scalar(select(t.JobDefinition).where(t.JobDefinition.name == self.job))
            s.add(t.Dashboard(name=slug, owner="ada", job_id=job.id, title=f"Secret {slug}",
                              live=with_render))  # fmt: skip
            job_id = job.id
        if with_render:
            run_id = self.run("succeeded", host=self.platform.jobs.host)
            nb = nbformat.v4.new_notebook()
            out = nbformat.v4.new_output(
                "display_data", data={"image/png": PNG, "text/plain": "<Figure>"}
            )
            nb.cells = [nbformat.v4.new_code_cell("plot()", outputs=[out])]
            nbformat.write(nb, self.platform.jobs.runs_dir / run_id / "output.ipynb")
            with self.platform.store.session() as s:
                r = s.get(t.Run, run_id)
                r.job_id, r.finished_at = job_id, t.utcnow()
            self.platform.dashboards.render(self._dashboard_id(slug), run_id, "lab", slug)
        return slug

    def _dashboard_id(self, slug: str) -> str:
        with self.platform.store.session() as s:
            return str(s.scalar(select(t.Dashboard.id).where(t.Dashboard.name == slug)))

    def share(self, slug: str) -> str:
        user = self.platform.principal("ada")
        link = self.platform.dashboards.create_share(user, slug, ShareLinkRequest())
        return link.id

    def subscribe(self, slug: str, caller: str) -> None:
        name = {"kernel": "ada", "user": "ada", "admin": "root"}.get(caller)
        if name is not None:
            user = self.platform.principal(name)
            req = SubscriptionRequest(email=f"{name}@example.com")
            self.platform.dashboards.subscribe(user, slug, req)

    def call(self, route: str, method: str, caller: str) -> tuple[str, Any]:
        """The path and body of this cell: fresh objects where the call changes them."""
        run_id = self.running if caller == "run" else self.done
        body: Any = None
        if route.startswith("page:"):
            page = route[5:]
            if page == "_static/{path}":
                return "page:_static/requirejs/require.js", None
            return "page:" + page.format(slug=self.board, kernel_id=str(uuid.uuid4())), None
        if route.startswith("dashboards/{slug}"):
            slug = self.board
            if method == "delete" and route == "dashboards/{slug}":
                slug = self.dashboard()
            if route == "dashboards/{slug}/subscription" and method == "delete":
                slug = self.dashboard()
                self.subscribe(slug, caller)
            link = self.share(slug) if "{link_id}" in route else ""
            path = route.format(slug=slug, link_id=link)
            body = {
                ("dashboards/{slug}", "patch"): {"title": "changed"},
                ("dashboards/{slug}/shares", "post"): {"label": "board"},
                ("dashboards/{slug}/subscription", "put"): {"email": "x@example.com"},
            }.get((route, method))
            return path, body
        if route == "(unknown)":
            path = "nope/nothing"
            body = {} if method in ("post", "put", "patch") else None
        elif route == "runs/{run_id}/cancel":
            path = f"runs/{self.running if caller == 'run' else self.run('queued')}/cancel"
        elif route == "jobs/{ref}" and method == "delete":
            path = f"jobs/{self.job_definition()}"
        else:
            path = route.format(
                run_id=run_id,
                name="input",
                ref=self.job,
                op="",
                path="",
                mlflow_run_id="",
                key="",
                experiment_id="",
                kernel_id="0a1b",
                rest="",
            )
            if route.startswith("datasets/{name}"):
                path = route.format(name="flights")
        body = {
            ("workspace/validate", "post"): {"text": "groups: {}\n"},
            ("datasets", "post"): {
                "name": self.unique("ds"),
                "source": {"type": "csv", "path": "data/flights.csv"},
            },
            ("datasets/{name}/pull", "post"): {"columns": ["carrier"]},
            ("jobs", "post"): {"name": self.unique("new"), "notebook_path": "nb.ipynb"},
            ("jobs/{ref}", "patch"): {"description": "changed"},
            ("runs", "post"): {"notebook_path": "nb.ipynb"},
            ("runs/{run_id}/rerun", "post"): {},
            ("token/renew", "post"): {},
            ("dashboards", "post"): {"slug": self.unique("pub"), "job": self.job},
        }.get((route, method), body)
        mid = self.ml_running if caller == "run" else self.ml_ada
        if route == "mlflow/api/2.0/mlflow/{op}":
            if method == "get":
                path = f"mlflow/api/2.0/mlflow/runs/get?run_id={mid}"
            else:
                path = "mlflow/api/2.0/mlflow/runs/log-metric"
                body = {"run_id": mid, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}
        elif route == "mlflow/api/2.0/mlflow/logged-models":
            eid = self.platform.tracking.experiment("matrix")
            body = {"experiment_id": eid, "source_run_id": mid, "name": "new"}
        elif route == "mlflow/api/2.0/mlflow/logged-models/{rest}":
            model = self.models[mid]
            rest = {"get": model, "post": "search", "patch": f"{model}/tags",
                    "delete": f"{model}/tags/k"}[method]  # fmt: skip
            path = route.format(rest=rest)
            if method == "delete":  # a tag to delete, for each caller
                from mlflow.entities import LoggedModelTag

                store = self.platform.tracking.client()._tracking_client.store
                store.set_logged_model_tags(model, [LoggedModelTag("k", "v")])
            body = {
                "post": {"experiment_ids": [self.platform.tracking.experiment("matrix")]},
                "patch": {"tags": [{"key": "k", "value": "v"}]},
            }.get(method)
        elif route == "mlflow/api/2.0/mlflow-artifacts/artifacts":
            path = f"{route}?path=runs/{mid}/artifacts"
        elif route == "mlflow/api/2.0/mlflow-artifacts/artifacts/{path}":
            name = "a.txt" if method == "get" else f"up{self.unique('')}.txt"
            path = route.format(path=f"runs/{mid}/artifacts/{name}")
            body = {"some": "content"} if method == "put" else None
        if route.startswith("tracking/runs/"):
            fresh = self.mlflow_run(None) if route.endswith("/end") else mid
            if route.endswith("/reproduce"):
                fresh = self.ml_done  # the MLflow run of ada's finished job run
            path = route.format(mlflow_run_id=fresh, key="m")
        elif route == "experiments/{experiment_id}/runs":
            path = route.format(experiment_id=self.platform.tracking.experiment("matrix"))
        elif route == "lineage":
            path = f"lineage?run={self.ml_ada}"
        body = {
            ("tracking/runs", "post"): {"experiment": "mine"},
            ("tracking/runs/{mlflow_run_id}/log", "post"): {
                "records": [{"t": "m", "k": "x", "v": 1.0, "ts": 1, "s": 0}]
            },
            ("tracking/runs/{mlflow_run_id}/end", "post"): {"status": "FINISHED"},
        }.get((route, method), body)
        if route == "notebooks/parameters":
            path += "?path=nb.ipynb"
        return path, body


@pytest.fixture
def world(jp_serverapp, http_server_client, jp_root_dir, jp_asyncio_loop, mode):  # type: ignore[no-untyped-def]
    (jp_root_dir / "dataops.yaml").write_text(POLICY)
    (jp_root_dir / "data").mkdir()
    (jp_root_dir / "data" / "flights.csv").write_text("carrier,dep_delay\nAA,5\nUA,70\n")
    _notebook(jp_root_dir / "nb.ipynb")
    run = jp_asyncio_loop.run_until_complete
    run(jp_serverapp.extension_manager.start_extension("jupyter_dataops"))
    w = World(jp_serverapp, jp_root_dir)
    kernel_id = run(w.start_kernel(mode))
    w.mode = mode
    yield w
    if kernel_id is not None:
        run(jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True))


async def _fetch(jp_fetch, path: str, method: str, headers: dict[str, str], body: Any):  # type: ignore[no-untyped-def]
    path, _, query = path.partition("?")
    kwargs: dict[str, Any] = {"method": method.upper(), "raise_error": False}
    if path.startswith("page:"):
        if method != "get":
            kwargs["allow_nonstandard_methods"] = True
        return await jp_fetch(
            "dataops", "dashboards", *path[5:].split("/"), headers=headers,
            follow_redirects=False, **kwargs,
        )  # fmt: skip
    if method in ("post", "put", "patch"):
        kwargs["body"] = json.dumps(body if body is not None else {})
    return await jp_fetch(
        "dataops", "api", "v1", *path.split("/"),
        headers={"Content-Type": "application/json", **headers},
        params=dict(urllib.parse.parse_qsl(query)) or None, **kwargs,
    )  # fmt: skip


async def test_the_authorization_matrix(world, jp_fetch):
    failures = []
    for (route, method), row in MATRIX.items():
        for caller, want in zip(CALLERS, expected(world.mode, route, row), strict=True):
            path, body = world.call(route, method, caller)
            resp = await _fetch(jp_fetch, path, method, world.headers[caller], body)
            text = resp.body.decode(errors="replace")
            if resp.code != want:
                failures.append(f"{method.upper()} {route} as {caller}: {resp.code} != {want}")
                continue
            html_page = route.startswith("page:") and not route.startswith("page:_live/api")
            if resp.code >= 400 and html_page:  # pages: an HTML page
                assert 'class="dops-message"' in text, (route, caller, text)
                assert "Secret" not in text  # not even the dashboard's title
            elif resp.code >= 400:  # every refusal is the one JSON error shape
                err = json.loads(text)["error"]
                assert err["code"] and err["message"], (route, method, caller, text)
                if resp.code == 401:
                    assert resp.headers.get("WWW-Authenticate"), (route, caller)
    assert not failures, "\n".join(failures)


async def test_refusals_reveal_nothing_of_other_users_objects(world, jp_fetch):
    path, _ = world.call("jobs/{ref}", "get", "other")
    resp = await _fetch(jp_fetch, path, "get", world.headers["other"], None)
    assert resp.code == 404 and world.job not in resp.body.decode()
    path, _ = world.call("runs/{run_id}", "get", "other")
    resp = await _fetch(jp_fetch, path, "get", world.headers["other"], None)
    assert resp.code == 404 and "nb.ipynb" not in resp.body.decode()


async def test_a_run_token_reads_only_its_own_input(world, jp_fetch):
    own = world.headers["run"]
    resp = await _fetch(jp_fetch, f"runs/{world.running}/outputs/input", "get", own, None)
    assert resp.code == 200 and json.loads(resp.body)["cells"]
    resp = await _fetch(jp_fetch, f"runs/{world.running}/outputs/log", "get", own, None)
    assert resp.code == 403
    resp = await _fetch(jp_fetch, f"runs/{world.done}/outputs/input", "get", own, None)
    assert resp.code == 403


async def test_admins_pause_but_do_not_act_as_the_owner(world, jp_fetch):
    admin = world.headers["admin"]
    resp = await _fetch(jp_fetch, f"jobs/{world.job}", "patch", admin, {"paused": True})
    assert resp.code == 200 and json.loads(resp.body)["paused"] is True
    resp = await _fetch(
        jp_fetch, f"jobs/{world.job}", "patch", admin, {"notebook_path": "other.ipynb"}
    )
    assert resp.code == 403 and "owner" in json.loads(resp.body)["error"]["message"]
    resp = await _fetch(jp_fetch, "runs", "post", admin, {"job": world.job})
    assert resp.code == 403
    with world.platform.store.session() as s:
        path = s.scalar(
            select(t.JobDefinition.notebook_path).where(t.JobDefinition.name == world.job)
        )
        assert path == "nb.ipynb"  # nothing of the refused change was written


async def test_other_users_list_none_of_ada_s_runs_or_jobs(world, jp_fetch):
    for route in ("runs", "jobs"):
        resp = await _fetch(jp_fetch, route, "get", world.headers["other"], None)
        assert resp.code == 200 and json.loads(resp.body)[route] == []
        resp = await _fetch(jp_fetch, route, "get", world.headers["user"], None)
        assert json.loads(resp.body)[route]  # ada sees hers
