"""Who is asking: DataOps users, their groups, and the signed tokens kernels and jobs carry.

Identity comes from Jupyter Server (``current_user``), so JupyterHub users work unchanged.
Kernels and job runs call the server with a token minted here: a JSON Web Token (PyJWT,
HS256) naming a user, a scope and what the token is bound to, and expiring. Scopes:

``kernel``
    an interactive kernel of this server, bound to its kernel id: valid only while that
    kernel lives, and acting as the kernel's user;
``run:<id>``
    a job run, bound to the run: valid only while the run is running, and allowed only
    what a run needs (governed reads as its owner, its own run's record and input).
``live``
    the kernel of a dashboard's live view, bound to that kernel and acting as its viewer:
    governed reads only (what a run's token may), so the dashboard's code, which is not the
    viewer's, can read what the viewer may read and do nothing else in the viewer's name.

An expired token is refused everywhere but the renewal route, which exchanges it for a fresh
one while its kernel or run still lives. The keys live in ``.dataops/keys/`` (one file each,
mode 0600): the signing key, the mask salt and the webhook key are separate, so rotating one
(delete its file) leaves the others, and masked values and webhook signatures, unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUTH_SCHEME = "DataOps"
ISSUER = "jupyter-dataops"
ALGORITHM = "HS256"
DEFAULT_TTL_S = 3600.0
GROUP_PREFIX = "group:"


@dataclass(frozen=True)
class Principal:
    """A DataOps user as policies see it."""

    name: str
    display_name: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)
    # "user" (browser/REST), "kernel", "run:<id>" for a job's kernel, "live" for a dashboard's
    scope: str = "user"
    # The person acting when ``name`` is not one: the member who triggered a group job's run.
    actor: str | None = None

    @property
    def is_group(self) -> bool:
        """A team (``group:<name>``): the owner of a group's jobs and their runs."""
        return self.name.startswith(GROUP_PREFIX)

    @property
    def label(self) -> str:
        return self.display_name or self.name

    @property
    def kind(self) -> str:
        """``user``, ``kernel`` or ``run``: what kind of credential this request carries."""
        return self.scope.split(":", 1)[0]

    @property
    def run_id(self) -> str | None:
        return self.scope.split(":", 1)[1] if self.scope.startswith("run:") else None


class TokenError(Exception):
    """A DataOps token that cannot be used; ``reason`` is ``invalid`` or ``expired``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _create_key_file(path: Path, make: Any) -> bytes:
    """Read ``path``, or create it (0600, atomically against other servers) from ``make()``."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data: bytes = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server created it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return data


class KeyRing:
    """The workspace's three keys, each in its own file under ``keys_dir``.

    A workspace made before the keys were split has one ``.dataops/secret``: the mask salt and
    the webhook key are then derived from it once, as before, so hashed values and webhook
    signatures stay what they were; only the signing key is new.
    """

    def __init__(self, keys_dir: Path, legacy_secret: Path | None = None) -> None:
        legacy: bytes | None = None
        if legacy_secret is not None and legacy_secret.is_file():
            legacy = legacy_secret.read_bytes()

        def salt() -> bytes:
            if legacy is not None:
                return (
                    hmac.new(legacy, b"dataops-mask-salt", hashlib.sha256).hexdigest()[:32].encode()
                )
            return secrets.token_hex(16).encode()

        self.signing_key = _create_key_file(keys_dir / "signing", lambda: secrets.token_bytes(32))
        # Hash masks use one salt per workspace: equal values hash equally across datasets
        # (joins still work) but cannot be looked up in a table of known hashes.
        self.mask_salt = _create_key_file(keys_dir / "mask-salt", salt).decode().strip()
        self.webhook_key = _create_key_file(
            keys_dir / "webhook", lambda: legacy if legacy is not None else secrets.token_bytes(32)
        )


class TokenSigner:
    """Mints and checks DataOps tokens (JWT, HS256) with the workspace's signing key."""

    def __init__(self, key: bytes, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._key = key
        self.ttl_s = ttl_s

    def mint(
        self,
        user: str,
        scope: str = "kernel",
        ttl: float | None = None,
        *,
        kernel_id: str | None = None,
    ) -> str:
        import jwt

        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user,
            "scope": scope,
            "iat": now,
            "exp": now + int(ttl if ttl is not None else self.ttl_s),
            "jti": uuid.uuid4().hex,
        }
        if kernel_id is not None:
            claims["kid"] = kernel_id
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str, *, allow_expired: bool = False) -> dict[str, Any]:
        """The token's claims; :class:`TokenError` when it is forged, malformed or expired.

        Never raises anything else, whatever the token holds (non-ASCII text, huge or
        nested claims, another algorithm).
        """
        import jwt

        if not isinstance(token, str) or not token or len(token) > 4096:
            raise TokenError("invalid", "malformed DataOps token")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "scope"], "verify_exp": False},
            )
        except Exception:
            raise TokenError("invalid", "invalid DataOps token") from None
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope"), str):
            raise TokenError("invalid", "invalid DataOps token")
        scope = claims["scope"]
        if scope in ("kernel", "live"):
            if not isinstance(claims.get("kid"), str):
                raise TokenError("invalid", "invalid DataOps token")
        elif not scope.startswith("run:") or len(scope) != 36:
            raise TokenError("invalid", "invalid DataOps token")
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise TokenError("invalid", "invalid DataOps token")
        if not allow_expired and time.time() > exp:
            raise TokenError("expired", "the DataOps token has expired; renew it")
        return claims
