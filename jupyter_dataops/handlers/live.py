"""The live view: Voila, in this server, executing the dashboard's notebook for one viewer.

Voila's own request handler renders the page (its ``lab`` template and front end, whose
widgets talk to the kernel), with three things of ours: the notebook it executes is the one of
the published view's run with the viewer's parameters (validated before anything starts), its
kernel comes from the capped pool of :mod:`..dashboards.live`, and everything its page asks
for (Voila's scripts, the lab extensions' widget managers, the kernel's websocket) is served
under ``/dataops/dashboards/_live/``, by this server and as the viewer, so the live view works
where Jupyter's own kernels API is not served (the team's DataOps service).
"""

from __future__ import annotations

import gettext
import os
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, ws_authenticated
from jupyter_server.base.handlers import FileFindHandler, JupyterHandler
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from tornado import web

from ..dashboards.live import LiveKernels, Seat
from ..dashboards.service import LiveRun, NoView
from ..exceptions import Forbidden, NotFound, Unavailable
from .base import DataOpsHandler, Operation
from .pages import PAGES_PREFIX, SLUG, PageHandler

LIVE_PREFIX = f"{PAGES_PREFIX}/_live"
KERNEL_ID = "(?P<kernel_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
FONTAWESOME_CDN = "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5/css/"


def data_dirs() -> list[str]:
    """Jupyter's data directories, and this environment's own even where JUPYTER_PATH and
    friends leave it out: Voila's templates are installed there."""
    import sys

    from jupyter_core.paths import jupyter_path

    dirs = jupyter_path()
    own = os.path.join(sys.prefix, "share", "jupyter")
    return dirs if own in dirs else [*dirs, own]


class VoilaSetup:
    """Voila's configuration and templates for live views (built once, on first use)."""

    def __init__(self, serverapp: Any) -> None:
        from jinja2 import Environment, FileSystemLoader
        from voila.configuration import VoilaConfiguration
        from voila.paths import ROOT, collect_template_paths

        c = VoilaConfiguration(parent=serverapp)
        c.template = "lab"
        c.strip_sources = True
        c.show_tracebacks = False  # a refused read is shown by the kernel's own handler
        c.progressive_rendering = False
        c.allow_template_override = "NO"  # every query argument is a notebook parameter
        c.allow_theme_override = "NO"
        # This extension's own plugins are JupyterLab's, not a dashboard's.
        c.extension_denylist = [*c.extension_denylist, "jupyter-dataops"]
        from jupyter_core.paths import jupyter_path

        known = jupyter_path()
        extra = [d for d in data_dirs() if d not in known]
        c.extra_labextensions_path = [
            *c.extra_labextensions_path,
            *(os.path.join(d, "labextensions") for d in extra),
            *(os.path.join(d, "voila", "labextensions") for d in extra),
        ]
        # MathJax would come from a CDN: the string "null" for both keeps it out of the page.
        c.page_config_hook = lambda config, **kwargs: {
            **config,
            "fullMathjaxUrl": "null",
            "mathjaxConfig": "null",
        }
        self.configuration = c
        # Voila's templates before nbconvert's of the same name wherever each is installed:
        # an nbconvert `lab` in a user's data directory must not hide Voila's `lab`.
        found = collect_template_paths(["voila"], c.template, root_dirs=data_dirs())
        found += collect_template_paths(["nbconvert"], c.template, root_dirs=data_dirs())
        self.template_paths = list(dict.fromkeys(found))
        env = Environment(
            loader=FileSystemLoader(self.template_paths),
            extensions=["jinja2.ext.i18n"],
            autoescape=True,
        )
        nbui = gettext.translation("nbui", localedir=os.path.join(ROOT, "i18n"), fallback=True)
        env.install_gettext_translations(nbui, newstyle=False)  # type: ignore[attr-defined]
        self.jinja_env = env
        self._exporters: dict[tuple[str, str], Any] = {}

    def shared_exporter(self, made: Any, inner_contents: Any) -> Any:
        """One exporter per template and theme for every live view: Voila makes one per
        request, whose Jinja environment compiles the templates again each time (a third of
        a live view's CPU in this server). It keeps no request's state; images a notebook's
        Markdown shows come from the server's own contents manager."""
        key = (str(made.template_name), str(made.theme))
        if key not in self._exporters:
            made.contents_manager = inner_contents
            self._exporters[key] = made
        return self._exporters[key]


def voila_setup(settings: dict[str, Any], serverapp: Any) -> VoilaSetup:
    if "dataops_voila" not in settings:
        settings["dataops_voila"] = VoilaSetup(serverapp)
    return settings["dataops_voila"]


class _OneNotebook:
    """The contents manager Voila reads its notebook from: the viewer's, parameters injected;
    other files (images a notebook shows) come from the server's own."""

    def __init__(self, run: LiveRun, inner: Any) -> None:
        self.run = run
        self.inner = inner

    def get(self, path: str, content: bool = True, **kwargs: Any) -> Any:
        if path == self.run.notebook_path:
            name = os.path.basename(path)
            return {"type": "notebook", "content": self.run.notebook, "path": path, "name": name}
        return self.inner.get(path, content=content, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _SeatKernels:
    """The kernel manager Voila sees for one request: its ``start_kernel`` hands the viewer's
    seat its kernel; the rest is the live kernels' manager."""

    def __init__(self, live: LiveKernels, seat: Seat, root: Any) -> None:
        self.live = live
        self.seat = seat
        self.root = root

    async def start_kernel(self, kernel_name: str = "", path: str = "", env: Any = None,
                           **kwargs: Any) -> str:  # fmt: skip
        cwd = (self.root / (path or "")).resolve()
        return await self.live.hand_out(self.seat, kernel_name, cwd, dict(env or {}))

    def get_kernel(self, kernel_id: str) -> Any:
        return self.live.for_voila(kernel_id)

    def __getattr__(self, name: str) -> Any:
        if name in ("notebook_data", "get_pool_size"):
            raise AttributeError(name)  # no preheated kernels: Voila renders for this viewer
        return getattr(self.live, name)


def live_kernels(settings: dict[str, Any]) -> LiveKernels:
    live = settings.get("dataops_live")
    if live is None:
        raise Unavailable("live views are not running on this server (see c.DataOps.live_*)")
    return live


def _voila_handler() -> type:
    from voila.handler import VoilaHandler

    return VoilaHandler


class LivePage(PageHandler, _voila_handler()):  # type: ignore[misc]
    path = f"{SLUG}/live"
    operations = {
        "get": Operation(
            "The live view: its notebook executed now for you, as you, with the query "
            "string's parameters (400 naming a bad one; 503 and Retry-After when every "
            "live kernel is in use)",
            None,
            kernel_token=False,
        )
    }

    def initialize(self, name: str, *args: Any, **kwargs: Any) -> None:
        serverapp = self.settings["serverapp"]
        setup = voila_setup(self.settings, serverapp)
        super().initialize(
            name,
            *args,
            **kwargs,
            voila_configuration=setup.configuration,
            template_paths=setup.template_paths,
            config=serverapp.config,
        )
        self._setup = setup
        self._seat: Seat | None = None
        self._run: LiveRun | None = None

    # What Voila reads off its handler, pointed at this request's viewer and notebook.
    @property
    def base_url(self) -> str:  # type: ignore[override]
        return f"{self.settings.get('base_url', '/').rstrip('/')}{LIVE_PREFIX}/"

    @property
    def kernel_manager(self) -> Any:  # type: ignore[override]
        assert self._seat is not None
        return _SeatKernels(live_kernels(self.settings), self._seat, self.platform.root)

    @property
    def contents_manager(self) -> Any:  # type: ignore[override]
        assert self._run is not None
        return _OneNotebook(self._run, self.settings["contents_manager"])

    def get_template(self, name: str) -> Any:
        return self._setup.jinja_env.get_template(name)

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("set_content_type", "text/html; charset=utf-8")
        return super().finish(*args, **kwargs)

    @allow_unauthenticated  # authenticated in prepare (users only: never a share link)
    async def get(self, slug: str) -> None:
        if self.platform.settings.mode == "service":
            # Its kernels would run as the service's own OS user (keys, store, data).
            raise Unavailable(
                "the team's service does not run live views yet: their kernels must run "
                "sandboxed, as job kernels do; the published view is there"
            )
        live = live_kernels(self.settings)
        query = {k: v for k, v in self.request.query_arguments.items()}
        try:
            self._run = await self.platform.store.run(
                self.platform.dashboards.live_run, self.principal(), slug, query
            )
        except NoView as e:
            raise NotFound(e.message) from None
        self._seat = live.admit(self._run.viewer, slug)
        self.notebook_path = self._run.notebook_path
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        async for html in self._render():
            self.write(html.replace(FONTAWESOME_CDN, f"{self.base_url}fontawesome/css/"))
            await self.flush()

    async def _render(self) -> Any:
        """Voila's rendering of a notebook for a new kernel (voila/handler.py, without the
        preheated kernels this never has), with one exporter for every request."""
        from tornado.httputil import split_host_and_port
        from voila import __version__ as voila_version
        from voila.notebook_renderer import NotebookRenderer
        from voila.utils import ENV_VARIABLE, get_page_config

        assert self._run is not None
        host, port = split_host_and_port(self.request.host.lower())
        env = {
            ENV_VARIABLE.SCRIPT_NAME: self.request.path,
            ENV_VARIABLE.PATH_INFO: "",
            ENV_VARIABLE.QUERY_STRING: str(self.request.query),
            ENV_VARIABLE.SERVER_SOFTWARE: f"voila/{voila_version}",
            ENV_VARIABLE.SERVER_PROTOCOL: str(self.request.version),
            ENV_VARIABLE.SERVER_PORT: str(port) if port else "",
            ENV_VARIABLE.SERVER_NAME: host,
            ENV_VARIABLE.VOILA_PREHEAT: "False",
            ENV_VARIABLE.VOILA_BASE_URL: self.base_url,
            ENV_VARIABLE.VOILA_SERVER_URL: self.settings.get("server_url", "/"),
            ENV_VARIABLE.VOILA_REQUEST_URL: self.request.full_url(),
            ENV_VARIABLE.VOILA_APP_PORT: str(port) if port else "",
        }
        page_config = get_page_config(
            base_url=self.base_url, settings=self.settings, log=self.log,
            voila_configuration=self.voila_configuration,
        )  # fmt: skip
        hook = self.voila_configuration.page_config_hook
        page_config = hook(page_config) if hook else page_config
        gen = NotebookRenderer(
            request_handler=self, voila_configuration=self.voila_configuration,
            traitlet_config=self.traitlet_config, notebook_path=self.notebook_path,
            template_paths=self.template_paths, config_manager=self.config_manager,
            contents_manager=self.contents_manager, base_url=self.base_url,
            kernel_spec_manager=self.kernel_spec_manager, prelaunch_hook=None,
            page_config=page_config, mathjax_config=None, mathjax_url=None,
        )  # fmt: skip
        await gen.initialize(template=None, theme=None)
        gen.exporter = self._setup.shared_exporter(gen.exporter, self.settings["contents_manager"])
        kernels = self.kernel_manager
        kernel_id = await kernels.start_kernel(
            kernel_name=gen.notebook.metadata.kernelspec.name,
            path=os.path.dirname(self.notebook_path),
            env=env,
        )
        async for html, _ in gen.generate_content_generator(
            kernel_id, kernels.get_kernel(kernel_id)
        ):
            yield html

    def on_finish(self) -> None:
        seat = self._seat
        if seat is not None:
            live = live_kernels(self.settings)
            live.rendered(seat)
            if seat.kernel_id is None:
                live.release(seat)  # refused before its kernel started
        super().on_finish()


class _LiveKernelMixin:
    """A route of one viewer's live kernel: only that viewer may use it."""

    def check_viewer(self, kernel_id: str, viewer: str) -> LiveKernels:
        live = live_kernels(self.settings)  # type: ignore[attr-defined]
        owner = live.viewer_of(kernel_id)
        if owner is None or owner != viewer:
            raise Forbidden("this is not your live view's kernel, or it has ended")
        return live


class LiveKernelHandler(_LiveKernelMixin, DataOpsHandler):
    """What Voila's page asks of its kernel (``api/kernels/<id>``)."""

    path = f"_live/api/kernels/{KERNEL_ID}"
    operations = {
        "get": Operation("Your live view's kernel (Voila's page asks)", None, kernel_token=False),
        "delete": Operation(
            "End your live view: its kernel is shut down and its place freed",
            None,
            kernel_token=False,
        ),
    }

    @web.authenticated
    async def get(self, kernel_id: str) -> None:
        live = self.check_viewer(kernel_id, self.principal().name)
        self.finish(live.kernel_model(kernel_id))

    @web.authenticated
    async def delete(self, kernel_id: str) -> None:
        live = self.check_viewer(kernel_id, self.principal().name)
        await live.shutdown_kernel(kernel_id, now=True)
        self.set_status(204)
        self.finish()


class LiveKernelSocket(_LiveKernelMixin, KernelWebsocketHandler):
    """The websocket of a live view's kernel (its widgets), for its viewer only."""

    path = f"_live/api/kernels/{KERNEL_ID}/channels"
    auth_resource = "dataops"

    @property
    def kernel_manager(self) -> Any:  # type: ignore[override]
        return live_kernels(self.settings)

    @property
    def platform(self) -> Any:
        return self.settings["dataops"]

    async def pre_get(self) -> None:
        viewer = await self.platform.store.run(DataOpsHandler._resolve_principal, self)
        self.check_viewer(self.kernel_id, viewer.name)
        await super().pre_get()

    @ws_authenticated
    async def get(self, kernel_id: str) -> None:  # type: ignore[override]
        try:
            await super().get(kernel_id)
        except (Forbidden, Unavailable) as e:
            raise web.HTTPError(e.status, e.message) from None


class LiveAssetsHandler(FileFindHandler):
    """Voila's page: the lab extensions' scripts (the widget managers), public as Jupyter's
    own static files are."""

    @allow_unauthenticated
    def get(self, path: str, include_body: bool = True) -> Any:
        return super().get(path, include_body)

    @allow_unauthenticated
    def head(self, path: str) -> Any:
        return super().head(path)


class LiveTemplateAssets(JupyterHandler, web.StaticFileHandler):
    """Voila's templates' static files (its front end, styles and themes)."""

    def initialize(self) -> None:  # type: ignore[override]
        self.roots: list[str] = []
        web.StaticFileHandler.initialize(self, path="/fake-root/voila-template-system/")

    def parse_url_path(self, url_path: str) -> str:
        from voila.paths import collect_static_paths

        template, kind, _ = url_path.split("/", 2)
        if kind != "static":
            raise web.HTTPError(404)
        self.roots = collect_static_paths(["voila", "nbconvert"], template, root_dirs=data_dirs())
        return str(super().parse_url_path(url_path))

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        for r in self.roots:
            if absolute_path.startswith(os.path.abspath(r) + os.sep):
                return str(super().validate_absolute_path(r, absolute_path))
        raise web.HTTPError(404)

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        # Voila's, with this environment's data directory (see data_dirs).
        from voila.paths import collect_static_paths

        template, _, relpath = os.path.normpath(path).split(os.path.sep, 2)
        roots = collect_static_paths(["voila", "nbconvert"], template, root_dirs=data_dirs())
        for r in roots:
            found = os.path.abspath(os.path.join(r, relpath))
            if os.path.exists(found):
                return found
        return os.path.abspath(os.path.join(roots[0] if roots else root, relpath))

    @allow_unauthenticated
    async def get(self, path: str, include_body: bool = True) -> None:
        await web.StaticFileHandler.get(self, path, include_body)

    @allow_unauthenticated
    async def head(self, path: str) -> None:
        await web.StaticFileHandler.get(self, path, include_body=False)


class LiveStaticAssets(LiveTemplateAssets):
    """Voila's front end (``voila/static/voila.js``): its ``lab`` template's static files."""

    def parse_url_path(self, url_path: str) -> str:
        return super().parse_url_path(f"lab/static/{url_path}")


# The live view's routes with an authorization-matrix row (the websocket: tests/server/
# test_dashboards_live.py).
LIVE_PAGES: list[type[DataOpsHandler]] = [LivePage, LiveKernelHandler]


def live_routes(labextensions_path: list[str]) -> list[tuple[Any, ...]]:
    from .pages import ASSETS_KWARGS, AssetsHandler

    fontawesome = {"path": os.path.join(ASSETS_KWARGS["path"], "fontawesome")}
    return [
        (f"{PAGES_PREFIX}/{LivePage.path}", LivePage),
        (f"{PAGES_PREFIX}/{LiveKernelHandler.path}", LiveKernelHandler),
        (f"{PAGES_PREFIX}/{LiveKernelSocket.path}", LiveKernelSocket),
        (f"{LIVE_PREFIX}/voila/templates/(.*)", LiveTemplateAssets),
        (f"{LIVE_PREFIX}/voila/static/(.*)", LiveStaticAssets),
        (f"{LIVE_PREFIX}/voila/labextensions/(.*)", LiveAssetsHandler,
         {"path": labextensions_path, "no_cache_paths": ["/"]}),
        (f"{LIVE_PREFIX}/fontawesome/(.*)", AssetsHandler, fontawesome),
    ]  # fmt: skip
