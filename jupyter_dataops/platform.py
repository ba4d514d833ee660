"""The composition root: one object that wires settings, store, config and identity.

The server extension, the CLI and the tests all build a :class:`Platform`; services hang off
it and know nothing of Tornado.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select

from . import __version__
from .config import ConfigLoader, WorkspaceConfig
from .identity import GROUP_PREFIX, KeyRing, Principal, TokenSigner
from .models import Counts, StatusResponse, StoreInfo, UserInfo, WorkspaceInfo
from .settings import DataOps
from .store import Store
from .store import tables as t

log = logging.getLogger(__name__)
T = TypeVar("T")


class Platform:
    def __init__(self, settings: DataOps, fallback_root: str | Path, *, migrate: bool = True):
        self.settings = settings
        self.root = settings.resolved_root(fallback_root)
        self.state_dir = self.root / ".dataops"
        self.config = ConfigLoader(settings.resolved_config_path(self.root))
        self.store = Store(settings.resolved_db_url(self.root), threads=settings.db_threads)
        if migrate:
            self.store.migrate()
        self.keys = KeyRing(self.state_dir / "keys", legacy_secret=self.state_dir / "secret")
        self.tokens = TokenSigner(self.keys.signing_key, ttl_s=settings.token_ttl)
        self.mask_salt = self.keys.mask_salt
        # Is this kernel id a live kernel of this server? Set by the server extension; kernel
        # tokens are good only while their kernel lives (elsewhere, e.g. the CLI: never).
        self.kernel_alive: Callable[[str], bool] = lambda kernel_id: False
        # Where the groups of users who are not asking come from (the service: JupyterHub).
        self.directory: Any = None
        self._query_pool = ThreadPoolExecutor(
            max_workers=settings.query_threads, thread_name_prefix="dataops-query"
        )
        from .catalog.service import Catalog

        self.catalog = Catalog(
            self.store, self.config, self.root, self.mask_salt, settings.source_url_env
        )
        from .jobs.notify import Notifier, SmtpSettings, WebhookPolicy
        from .jobs.service import JobService

        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
        webhooks = WebhookPolicy(
            allowed_hosts=tuple(settings.webhook_allowed_hosts),
            allowed_networks=tuple(settings.webhook_allowed_networks),
        )
        self.notifier = Notifier(self.store, self.keys.webhook_key, smtp, webhooks=webhooks)
        from .tracking.service import Tracking

        self.tracking = Tracking(
            self.store,
            self.root,
            settings.mlflow_tracking_uri,
            lambda: self.workspace_config().admins,
            ui_url=settings.mlflow_ui_url,
        )
        from .tracking.openlineage import LineageEvents

        self.tracking.events = LineageEvents(
            settings.openlineage_namespace,
            Path(settings.openlineage_file or self.state_dir / "openlineage" / "events.jsonl"),
            settings.openlineage_url,
        )
        self.jobs = JobService(
            self.store,
            self.root,
            self.tokens,
            lambda: self.workspace_config().admins,
            default_executor=settings.executor,
            notifier=self.notifier,
            outputs_url=settings.outputs_url,
            tracking=self.tracking if settings.track_runs else None,
        )
        from .dashboards.service import DashboardService

        self.dashboards = DashboardService(
            self.store,
            self.jobs,
            self.root,
            lambda: self.workspace_config().admins,
            notifier=self.notifier,
        )
        self.jobs.on_run_end.append(self.dashboards.run_ended)
        self.notifier.settle = self.jobs.settle

    def start_query(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Start data-plane work in the query pool; await the result later."""
        return asyncio.get_running_loop().run_in_executor(self._query_pool, fn)

    async def run_query(self, fn: Callable[..., T], *args: Any) -> T:
        """Run data-plane work (DuckDB, source databases) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._query_pool, functools.partial(fn, *args))

    # identity -----------------------------------------------------------------------------
    def workspace_config(self) -> WorkspaceConfig:
        return self.config.get()

    def principal(
        self,
        name: str,
        display_name: str = "",
        extra_groups: tuple[str, ...] | None = None,
        scope: str = "user",
    ) -> Principal:
        """The user as policies see them (blocking: may read dataops.yaml, ask the Hub).

        Groups: those of dataops.yaml, plus those the identity provider vouched for with the
        request (``extra_groups``), or else those of the directory (JupyterHub's, for users
        who are not the one asking: job owners, scheduled runs).
        """
        if name.startswith(GROUP_PREFIX):
            # A team acts with its own grants: the group's, never the union of its members'.
            return Principal(name, display_name or name, (name[len(GROUP_PREFIX) :],), scope)
        if extra_groups is None:
            extra_groups = self.directory.groups_of(name) if self.directory else ()
        groups = set(self.workspace_config().groups_of(name)) | set(extra_groups)
        return Principal(name, display_name or name, tuple(sorted(groups)), scope)

    def run_principal(self, name: str, scope: str) -> Principal:
        """The principal of a job run's token (blocking): its owner, and the member who
        triggered it when the owner is a team."""
        p = self.principal(name, scope=scope)
        if p.is_group and scope.startswith("run:"):
            with self.store.session() as s:
                actor = s.scalar(select(t.Run.triggered_by).where(t.Run.id == scope[4:]))
            p = Principal(p.name, p.display_name, p.groups, p.scope, actor=actor or None)
        return p

    def token_lives(self, claims: dict[str, Any]) -> bool:
        """Whether what a verified DataOps token is bound to still lives (blocking).

        A kernel token: its kernel is a live kernel of this server. A run token: its run is
        running, as the token's user.
        """
        scope = claims["scope"]
        if scope in ("kernel", "live"):  # live: a dashboard's live kernel (see dashboards/live.py)
            return self.kernel_alive(str(claims.get("kid", "")))
        if scope.startswith("run:"):
            with self.store.session() as s:
                run = s.get(t.Run, scope[4:])
                return run is not None and run.status == "running" and run.owner == claims["sub"]
        return False

    def renew_token(self, token: str) -> tuple[str, float]:
        """A fresh token for a kernel or run token, expired or not, while its kernel or run
        lives (blocking): (token, expires at, epoch seconds)."""
        from .exceptions import Unauthorized
        from .identity import TokenError

        try:
            claims = self.tokens.verify(token, allow_expired=True)
        except TokenError as e:
            raise Unauthorized(e.message, details={"reason": e.reason}) from None
        if not self.token_lives(claims):
            what = "run" if claims["scope"].startswith("run:") else "kernel"
            raise Unauthorized(
                f"the token's {what} is no longer running: it cannot be renewed",
                details={"reason": "gone"},
            )
        fresh = self.tokens.mint(claims["sub"], claims["scope"], kernel_id=claims.get("kid"))
        return fresh, self.tokens.verify(fresh)["exp"]

    def kernel_owner(self) -> str:
        """The user whose kernels this server starts (the hub user under JupyterHub)."""
        return os.environ.get("JUPYTERHUB_USER") or self.settings.local_user

    # status -------------------------------------------------------------------------------
    def counts(self) -> Counts:
        self.catalog.sync()
        with self.store.session() as s:

            def n(table: type[t.Base]) -> int:
                return int(s.scalar(select(func.count()).select_from(table)) or 0)

            active = select(func.count()).select_from(t.Dataset)
            return Counts(
                datasets=int(s.scalar(active.where(t.Dataset.retired_at.is_(None))) or 0),
                jobs=n(t.JobDefinition),
                runs=n(t.Run),
                dashboards=n(t.Dashboard),
            )

    def status(self, user: Principal) -> StatusResponse:
        """Blocking: call through ``store.run`` from async code."""
        problems = self.config.problems
        return StatusResponse(
            version=__version__,
            user=UserInfo(name=user.name, display_name=user.label, groups=list(user.groups)),
            store=StoreInfo(
                url=self.store.redacted_url,
                dialect=self.store.dialect,
                revision=self.store.revision(),
            ),
            workspace=WorkspaceInfo(
                root=str(self.root),
                config_path=str(self.config.path),
                config_loaded=self.config.loaded,
                config_error=problems[0] if problems else None,
            ),
            counts=self.counts(),
        )

    def executor(
        self,
        server_url: str,
        workers: int | None = None,
        warm: int | None = None,
        kind: str = "server",
    ) -> Any:
        """The run dispatcher (local runners, and Dask when configured) for this workspace;
        ``kind`` names its identity (see jobs/dispatchers.py)."""
        from .jobs.executors.local import LocalExecutor

        if server_url:
            self.notifier.server_url = server_url  # notifications then link to their run
        sandbox, refuse = None, ""
        if self.settings.mode == "service":
            from .jobs.executors.local import Sandbox
            from .team import sandbox as team_sandbox

            if team_sandbox.LAUNCHER is not None:
                sandbox = Sandbox(
                    team_sandbox.LAUNCHER,
                    run_as=self.settings.run_as or "{owner}",
                    group_run_as=self.settings.group_run_as,
                )
            elif not self.settings.unsandboxed_kernels:
                refuse = (
                    "the DataOps service runs job kernels only as their owners' OS users: "
                    "start it as root with `jupyter dataops serve --user NAME`, or run this "
                    "job on Dask (executor 'dask')"
                )
        return LocalExecutor(
            self.jobs,
            self.store.run,
            server_url,
            workers=self.settings.job_workers if workers is None else workers,
            warm=self.settings.warm_kernels if warm is None else warm,
            dask_scheduler_address=self.settings.dask_scheduler_address,
            fork_kernels=self.settings.fork_kernels,
            kernel_preload=tuple(self.settings.kernel_preload),
            kind=kind,
            sandbox=sandbox,
            refuse_local=refuse,
        )

    def is_admin(self, user: Principal) -> bool:
        return user.name in self.workspace_config().admins

    def close(self) -> None:
        self._query_pool.shutdown(wait=False, cancel_futures=True)
        self.dashboards.close()  # renders under way finish (a CLI run's too)
        self.notifier.close()  # deliveries under way finish and are recorded
        self.jobs.stop_dispatching()
        self.tracking.close()  # lineage events under way are sent
        self.store.close()
