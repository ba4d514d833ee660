"""Under JupyterHub a user's server authorizes with JupyterHub's own authorizer, which reads
``user.hub_user``: a kernel's DataOps token (no Hub user behind it) must still be served.

JupyterHub's identity provider asks the Hub who a token is; here that answer is given by the
test (no Hub runs in this test: tests/team runs a real one). The authorizer, the user model and
the scope checks are JupyterHub's own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jupyterhub.singleuser.extension import (
    JupyterHubAuthorizer,
    JupyterHubIdentityProvider,
    JupyterHubUser,
)

from jupyter_dataops.client import TOKEN_ENV

from .conftest import server_config

pytestmark = pytest.mark.kernel

SCOPE = "access:servers!server=ada/"


class HubAnswers(JupyterHubIdentityProvider):
    async def get_user(self, handler: Any) -> Any:
        if handler.request.headers.get("Authorization") == "token hub-ada":
            handler._token_authenticated = True
            return JupyterHubUser(
                {"name": "ada", "kind": "user", "groups": ["analysts"], "scopes": [SCOPE]}
            )
        return None


@pytest.fixture
def jp_server_config(store_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("JUPYTERHUB_OAUTH_ACCESS_SCOPES", json.dumps([SCOPE]))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    return server_config(
        store_url,
        ServerApp={"identity_provider_class": HubAnswers, "authorizer_class": JupyterHubAuthorizer},
    )


@pytest.fixture
def store_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'store' / 'dataops.db'}"


async def test_kernel_tokens_pass_jupyterhubs_authorizer(jp_serverapp, http_server_client, api):
    code, body = await api("GET", "status", headers={"Authorization": "token hub-ada"})
    assert code == 200 and body["user"] == {"name": "ada", "display_name": "ada",
                                            "groups": ["analysts"]}  # fmt: skip
    km = jp_serverapp.kernel_manager
    kernel_id = await km.start_kernel(kernel_name="python3")
    try:
        token = km.get_kernel(kernel_id)._launch_args["env"][TOKEN_ENV]
        code, body = await api("GET", "status", headers={"Authorization": f"DataOps {token}"})
        assert code == 200, body  # was a 500: AttributeError 'TokenUser' has no 'hub_user'
        assert body["user"]["name"] == "ada"
    finally:
        await km.shutdown_kernel(kernel_id, now=True)
