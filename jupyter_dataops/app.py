"""The Jupyter Server extension: wiring and lifecycle, nothing else."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import uuid
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Instance

from .client import ROOT_ENV, SCHEME_ENV, TOKEN_ENV, URL_ENV
from .handlers import handlers
from .platform import Platform
from .settings import DataOps


def _kernel_facing_url(serverapp) -> str | None:  # type: ignore[no-untyped-def]
    """The URL a kernel on this machine uses to reach the server."""
    if getattr(serverapp, "sock", ""):
        return None  # a Unix socket: urllib cannot follow it
    scheme = "https" if serverapp.certfile else "http"
    host = serverapp.ip or "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1"
    except ValueError:
        if host in ("localhost", "*"):
            host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{serverapp.port}{serverapp.base_url}"


class DataOpsApp(ExtensionApp):
    """Governed data, experiment tracking, production jobs and dashboards for Jupyter."""

    name = "jupyter_dataops"
    load_other_extensions = True
    classes = [DataOps]

    platform = Instance(Platform, allow_none=True)
    client_of = ""  # the service's URL in client mode

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        settings = DataOps(parent=self)
        self.client_of = settings.service_url
        if self.client_of:
            self._export_client_env()
            self.log.info("DataOps: client of the DataOps service at %s", self.client_of)
            return
        # Startup is the one place blocking store work is fine: the loop is not serving yet.
        self.platform = Platform(settings, self.serverapp.root_dir)
        self.settings["dataops"] = self.platform
        # Under JupyterHub (the service, or a user's server in personal mode), the groups of
        # users who are not asking come from the Hub.
        self._use_hub_directory()
        if settings.mode != "service":
            self._export_kernel_env()
        self.log.info(
            "DataOps: %s, workspace %s, store %s (revision %s)",
            "the team's service" if settings.mode == "service" else "personal mode",
            self.platform.root,
            self.platform.store.redacted_url,
            self.platform.store.revision(),
        )

    def _export_client_env(self) -> None:
        # Kernels call the service themselves, with the Hub API token they inherit from this
        # server; no secret is copied anywhere.
        assert self.serverapp is not None
        os.environ[URL_ENV] = self.client_of
        os.environ[SCHEME_ENV] = "token"
        os.environ[ROOT_ENV] = str(Path(self.serverapp.root_dir).expanduser().resolve())

    def _use_hub_directory(self) -> None:
        """Groups of users who are not the one asking (a kernel's or a job's token, scheduled
        runs) come from the Hub, asked with this process's own Hub API token."""
        from .team.hub import HubDirectory

        assert self.platform is not None
        directory = HubDirectory.from_environment()
        if directory is not None:
            self.platform.directory = directory

    def _export_kernel_env(self) -> None:
        """Give each kernel this server starts its URL and a token of its own.

        This is how `import jupyter_dataops` in a notebook finds its server and acts as the
        server's user. The token is minted per kernel, bound to its kernel id and expiring:
        it is in that kernel's environment only (never the server's, which terminals and
        other processes inherit), and useless once the kernel is gone.
        """
        assert self.serverapp is not None and self.platform is not None
        self.kernel_url = _kernel_facing_url(self.serverapp) or ""
        if not self.kernel_url:
            self.log.warning("DataOps: kernels cannot reach a server on a Unix socket")
            return
        km = self.serverapp.kernel_manager
        platform, url = self.platform, self.kernel_url
        platform.kernel_alive = lambda kernel_id: kernel_id in km
        start = km.start_kernel

        async def start_kernel(*args: Any, kernel_id: str | None = None, **kwargs: Any) -> str:
            if kernel_id is None or kernel_id not in km:
                # Choose the id now, so the token can name the kernel it belongs to.
                kernel_id = kernel_id or str(uuid.uuid4())
                token = platform.tokens.mint(platform.kernel_owner(), "kernel", kernel_id=kernel_id)
                env = dict(kwargs.get("env") or os.environ)
                env.update({URL_ENV: url, TOKEN_ENV: token})
                # A notebook's MLflow sends its vendor no telemetry (unless the user says so).
                env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
                kwargs["env"] = env
            return await start(*args, kernel_id=kernel_id, **kwargs)

        # Jupyter Server has no hook for a kernel's environment; wrapping this one instance's
        # method keeps every caller (sessions, the kernels API) on one path.
        km.start_kernel = start_kernel  # type: ignore[method-assign]

    def initialize_handlers(self) -> None:
        if self.client_of:
            from .team.client import forward_handlers

            self.handlers.extend(forward_handlers(self.client_of))
            return
        self.handlers.extend(handlers())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        await super()._start_jupyter_server_extension(serverapp)
        if self.platform is None:
            return  # a client of the team's service: it runs the jobs
        # Background work starts here, with the loop running, never at import or in
        # initialize_settings.
        p = self.platform
        # MLflow's first use imports it and creates the store's tables (about 2 s): done in a
        # thread now, so neither the loop nor the first run waits for it.
        self._tracking_warmup = asyncio.get_running_loop().run_in_executor(None, p.tracking.warm)
        if p.settings.observe_interval > 0:
            self._observer = asyncio.create_task(self._observe(p.settings.observe_interval))
        # Job kernels (and, in personal mode, interactive ones) call this server directly.
        url = getattr(self, "kernel_url", "") or _kernel_facing_url(serverapp) or ""
        self.executor = p.executor(url)
        self.settings["dataops_executor"] = self.executor
        serverapp.web_app.settings["dataops_executor"] = self.executor
        await self.executor.start()
        if p.settings.run_scheduler:
            from .jobs.scheduler import Scheduler

            # A personal server fires its user's jobs only (their runs execute here, as that
            # user); the team's service fires everyone's.
            self.scheduler = Scheduler(
                p.jobs,
                principal=p.principal,
                owner=None if p.settings.mode == "service" else p.kernel_owner(),
                on_fire=self.executor.wake,
                run_blocking=p.store.run,
            )
            serverapp.web_app.settings["dataops_scheduler"] = self.scheduler
            await self.scheduler.start()
        await self._start_live_views(serverapp, url)

    async def _start_live_views(self, serverapp: Any, url: str) -> None:
        """The kernels of dashboards' live views (a pool of their own, capped)."""
        p = self.platform
        assert p is not None
        if p.settings.mode == "service" or p.settings.live_kernels <= 0 or not url:
            return  # the service: live kernels must run sandboxed first (see handlers/live.py)
        from .dashboards.live import LiveKernels

        live = LiveKernels(
            parent=serverapp,
            log=self.log,
            connection_dir=serverapp.runtime_dir,
            kernel_spec_manager=serverapp.kernel_spec_manager,
            root_dir=str(p.root),
        )
        live.setup(
            tokens=p.tokens,
            server_url=url,
            cap=p.settings.live_kernels,
            pool_size=p.settings.live_pool,
            idle_timeout_s=p.settings.live_idle_timeout,
            preload=list(p.settings.live_preload),
        )
        serverapp.web_app.settings["dataops_live"] = self.live = live
        # A live kernel's token is good while its viewer's kernel lives.
        kernel_alive = p.kernel_alive
        p.kernel_alive = lambda kernel_id: live.alive(kernel_id) or kernel_alive(kernel_id)
        await live.start()

    async def _observe(self, every: float) -> None:
        """Hash the file datasets' changed files in the background (the query pool)."""
        assert self.platform is not None
        while True:
            try:
                await self.platform.run_query(self.platform.catalog.observe)
            except Exception:
                self.log.warning("DataOps: observing the sources failed", exc_info=True)
            await asyncio.sleep(every)

    async def stop_extension(self) -> None:
        live = getattr(self, "live", None)
        if live is not None:
            try:
                await live.stop()
            except Exception:  # the rest (scheduler, executor, store) still stops
                self.log.exception("DataOps: stopping the live views' kernels failed")
        observer = getattr(self, "_observer", None)
        if observer is not None:
            observer.cancel()
        warmup = getattr(self, "_tracking_warmup", None)
        if warmup is not None:
            await asyncio.wait([warmup], timeout=30)  # never closes a store being opened
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None:
            await scheduler.stop()
        executor = getattr(self, "executor", None)
        if executor is not None:
            await executor.stop()
        if self.platform is not None:
            self.platform.close()
