"""Users and groups from JupyterHub, for the service.

A request carries its user's groups (the Hub returns them with the token's user), but the
service also acts for users who are not asking: a job run's owner (its token names the user
only), a scheduled run while everyone is logged out. Their groups are asked of the Hub with the
service's own token (its role needs ``read:users:groups``), and kept for a short while.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

log = logging.getLogger(__name__)


class HubDirectory:
    """``groups_of(user)`` from the Hub's REST API, cached ``ttl_s`` seconds (blocking)."""

    def __init__(self, api_url: str, token: str, ttl_s: float = 60.0) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self._token = token
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> HubDirectory | None:
        api, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
        return cls(api, token) if api and token else None

    def groups_of(self, user: str) -> tuple[str, ...]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(user)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        url = self.api_url + "users/" + urllib.parse.quote(user, safe="")
        req = urllib.request.Request(url, headers={"Authorization": f"token {self._token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                groups = tuple(sorted(json.loads(resp.read()).get("groups") or ()))
        except urllib.error.HTTPError as e:
            if e.code != 404:
                log.warning("DataOps: the Hub answered %s for user %r's groups", e.code, user)
                return hit[1] if hit else ()
            groups = ()  # not a Hub user (yet, or any more): no Hub groups
        except (urllib.error.URLError, OSError, ValueError) as e:
            log.warning("DataOps: cannot ask the Hub for user %r's groups: %s", user, e)
            return hit[1] if hit else ()
        with self._lock:
            self._cache[user] = (now, groups)
        return groups
