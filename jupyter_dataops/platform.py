"""The composition root: one object that wires settings, store, config and identity.

The server extension, the CLI and the tests all build a :class:`Platform`; services hang off
it and know nothing of Tornado.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import func, select

from . import __version__
from .config import ConfigLoader, WorkspaceConfig
from .identity import Principal, TokenSigner, load_or_create_secret
from .models import Counts, StatusResponse, StoreInfo, UserInfo, WorkspaceInfo
from .settings import DataOps
from .store import Store
from .store import tables as t

log = logging.getLogger(__name__)


class Platform:
    def __init__(self, settings: DataOps, fallback_root: str | Path, *, migrate: bool = True):
        self.settings = settings
        self.root = settings.resolved_root(fallback_root)
        self.state_dir = self.root / ".dataops"
        self.config = ConfigLoader(settings.resolved_config_path(self.root))
        self.store = Store(settings.resolved_db_url(self.root), threads=settings.db_threads)
        if migrate:
            self.store.migrate()
        self.tokens = TokenSigner(load_or_create_secret(self.state_dir / "secret"))

    # identity -----------------------------------------------------------------------------
    def workspace_config(self) -> WorkspaceConfig:
        return self.config.get()

    def principal(
        self, name: str, display_name: str = "", extra_groups: tuple[str, ...] = (), scope="user"
    ) -> Principal:
        groups = set(self.workspace_config().groups_of(name)) | set(extra_groups)
        return Principal(name, display_name or name, tuple(sorted(groups)), scope)

    def kernel_owner(self) -> str:
        """The user whose kernels this server starts (the hub user under JupyterHub)."""
        return os.environ.get("JUPYTERHUB_USER") or self.settings.local_user

    # status -------------------------------------------------------------------------------
    def counts(self) -> Counts:
        with self.store.session() as s:

            def n(table: type[t.Base]) -> int:
                return int(s.scalar(select(func.count()).select_from(table)) or 0)

            return Counts(
                datasets=n(t.Dataset),
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

    def close(self) -> None:
        self.store.close()
