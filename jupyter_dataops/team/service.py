"""``jupyter dataops serve``: the DataOps service, as its own long-lived process.

It is a Jupyter Server that loads this extension and no other, in ``service`` mode, with an
authorizer that allows the DataOps API only: nothing of Jupyter's contents, kernels or
terminals APIs is reachable, so a user of the service cannot run code in it. Identity:

- under JupyterHub (a Hub-managed service: ``JUPYTERHUB_SERVICE_URL`` and friends are in the
  environment), JupyterHub's own identity provider: browsers log in with Hub OAuth, kernels and
  servers send their Hub API token (``Authorization: token ...``); users and groups come from
  the Hub;
- standalone, the tokens of a users file (:class:`TokenFileUsers`);

and in both, the DataOps run tokens that the service mints for job kernels.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.auth import Authorizer, IdentityProvider, User
from traitlets import Unicode
from traitlets.config import Config


class ServiceAuthorizer(Authorizer):
    """The service serves the DataOps API (resource ``dataops``) and nothing else."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource == "dataops"


class TeamUser(User):
    """A user of the service with the groups its identity provider vouches for."""

    def __init__(self, username: str, groups: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(username=username)
        self.groups = tuple(groups)


class TokenFileUsers(IdentityProvider):
    """Standalone identity: ``Authorization: token <token>`` of a users file.

    The file (JSON) maps user names to the SHA-256 of their token and their groups::

        {"alice": {"token_sha256": "9f86d0...", "groups": ["analysts"]}}

    It is re-read when it changes; tokens are compared in constant time. Create entries with
    ``jupyter dataops token USER --groups G``.
    """

    users_file = Unicode("", help="JSON file of users, token hashes and groups.").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, dict[str, Any]] = {}

    def _load(self) -> dict[str, dict[str, Any]]:
        path = Path(self.users_file)
        try:
            st = path.stat()
        except OSError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._users = dict(json.loads(path.read_text()))
                except (OSError, ValueError) as e:
                    self.log.error("DataOps service: cannot read %s: %s", path, e)
                self._stamp = stamp
            return self._users

    def get_user(self, handler: Any) -> User | None:
        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "token" or not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        for name, entry in self._load().items():
            if hmac.compare_digest(str(entry.get("token_sha256", "")), digest):
                handler._token_authenticated = True  # a header token: no XSRF cookie
                return TeamUser(name, entry.get("groups") or [])
        return None

    def validate_security(self, app: Any, ssl_options: Any = None) -> None:
        return  # no server token of Jupyter's own: users authenticate with their tokens


def hub_managed() -> bool:
    """Whether this process was started by JupyterHub as a managed service."""
    return bool(os.environ.get("JUPYTERHUB_SERVICE_URL") and os.environ.get("JUPYTERHUB_API_TOKEN"))


def service_config(
    root: Path, *, ip: str = "", port: int = 0, users_file: str = "", base_url: str = ""
) -> Config:
    """The Jupyter Server configuration of the service (before the user's own config)."""
    c = Config()
    c.ServerApp.root_dir = str(root)
    c.ServerApp.open_browser = False
    c.ServerApp.authorizer_class = ServiceAuthorizer
    c.ServerApp.allow_unauthenticated_access = False
    c.ServerApp.jpserver_extensions = {"jupyter_dataops": True}
    c.ServerApp.terminals_enabled = False
    c.DataOps.mode = "service"
    if hub_managed():
        url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
        c.ServerApp.ip = ip or url.hostname or "127.0.0.1"
        c.ServerApp.port = port or url.port or 80
        c.ServerApp.base_url = base_url or os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        from jupyterhub.singleuser.extension import JupyterHubIdentityProvider

        c.ServerApp.identity_provider_class = JupyterHubIdentityProvider
        # The Hub answers "who is this token" once per token per cache period: a revoked
        # token keeps working that long (HubAuth's default is 300 s).
        c.HubOAuth.cache_max_age = 30
    else:
        if not users_file:
            from ..exceptions import InvalidRequest

            raise InvalidRequest(
                "standalone, the service needs --users-file (users, token hashes, groups); "
                "under JupyterHub it is started by the Hub as a managed service"
            )
        c.ServerApp.ip = ip or "127.0.0.1"
        c.ServerApp.port = port or 8890
        c.ServerApp.base_url = base_url or "/"
        c.ServerApp.identity_provider_class = TokenFileUsers
        c.TokenFileUsers.users_file = str(Path(users_file).resolve())
    return c


def serve(root: Path, cli_config: Config, **options: Any) -> None:
    """Start the service and serve until SIGTERM/SIGINT."""
    from jupyter_server.serverapp import ServerApp

    class ServiceServerApp(ServerApp):
        def init_server_extensions(self) -> None:
            # Extensions enabled in jupyter_server_config.d (JupyterLab, Voila...) are not
            # the service's: it loads this one alone.
            self.jpserver_extensions = {"jupyter_dataops": True}
            super().init_server_extensions()

    config = service_config(root, **options)
    config.merge(cli_config)
    app = ServiceServerApp.instance(config=config)
    app.initialize(argv=[], find_extensions=False)
    app.start()
