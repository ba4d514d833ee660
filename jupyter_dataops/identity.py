"""Who is asking: DataOps users, their groups, and the signed tokens kernels and jobs carry.

Identity comes from Jupyter Server (``current_user``), so JupyterHub users work unchanged.
Kernels and jobs call the server with a token minted here: an HMAC-signed claim of a user name
and a scope, verified without a database round-trip. The signing key is per workspace
(``.dataops/secret``, mode 0600), so tokens outlive a server restart and work across the
servers of one workspace; delete the file to revoke every token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOKEN_PREFIX = "dops1"
AUTH_SCHEME = "DataOps"


@dataclass(frozen=True)
class Principal:
    """A DataOps user as policies see it."""

    name: str
    display_name: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)
    scope: str = "user"  # "user" (browser/REST), "kernel", or "run:<id>" for a job's kernel

    @property
    def label(self) -> str:
        return self.display_name or self.name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_secret(path: Path) -> bytes:
    """The workspace signing key, created on first use with owner-only permissions."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server created it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class TokenSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sig(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def mint(self, user: str, scope: str = "kernel", ttl: float | None = None) -> str:
        claims: dict[str, Any] = {"sub": user, "scope": scope, "iat": int(time.time())}
        if ttl is not None:
            claims["exp"] = int(time.time() + ttl)
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{TOKEN_PREFIX}.{payload}.{self._sig(payload)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The token's claims, or None when it is forged, malformed or expired."""
        try:
            prefix, payload, sig = token.split(".")
        except ValueError:
            return None
        if prefix != TOKEN_PREFIX or not hmac.compare_digest(sig, self._sig(payload)):
            return None
        try:
            claims = json.loads(_unb64(payload))
        except (ValueError, json.JSONDecodeError):
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            return None
        if "exp" in claims and time.time() > claims["exp"]:
            return None
        return claims
