"""A multi-user identity provider for tests, shaped as JupyterHub's is to Jupyter Server.

A personal Jupyter server knows one user; the authorization tests need several (a user, another
user, an admin). ``Authorization: token user-<name>`` authenticates as <name>. This stands in
for JupyterHub's identity provider, which tests/team runs for real.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth import IdentityProvider, User


class HeaderUsers(IdentityProvider):
    def get_user(self, handler: Any) -> User | None:
        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "token" or not token.startswith("user-"):
            return None
        handler._token_authenticated = True  # a header token: no XSRF cookie needed
        name = token[5:]
        return User(username=name, name=name, display_name=name.title())
