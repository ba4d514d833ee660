from __future__ import annotations

import hashlib
import hmac
import os
import stat
import time

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_dataops.identity import KeyRing, TokenError, TokenSigner
from jupyter_dataops.jobs.notify import webhook_secret

RUN = "run:" + "a" * 32


def test_three_keys_in_owner_only_files_rotated_apart(tmp_path):
    keys = tmp_path / ".dataops" / "keys"
    ring = KeyRing(keys)
    for name in ("signing", "mask-salt", "webhook"):
        assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600
    assert len({ring.signing_key, ring.mask_salt.encode(), ring.webhook_key}) == 3
    again = KeyRing(keys)
    assert (again.signing_key, again.mask_salt, again.webhook_key) == (
        ring.signing_key, ring.mask_salt, ring.webhook_key)  # fmt: skip
    # Rotating the signing key (delete its file) changes neither masks nor webhook keys.
    (keys / "signing").unlink()
    rotated = KeyRing(keys)
    assert rotated.signing_key != ring.signing_key
    assert (rotated.mask_salt, rotated.webhook_key) == (ring.mask_salt, ring.webhook_key)
    (keys / "mask-salt").unlink()
    assert KeyRing(keys).signing_key == rotated.signing_key


def test_a_workspace_with_the_old_single_secret_keeps_its_masks_and_webhook_keys(tmp_path):
    legacy = tmp_path / ".dataops" / "secret"
    legacy.parent.mkdir()
    legacy.write_bytes(b"s" * 32)
    ring = KeyRing(tmp_path / ".dataops" / "keys", legacy_secret=legacy)
    # The values the single secret gave before the split:
    old_salt = hmac.new(b"s" * 32, b"dataops-mask-salt", hashlib.sha256).hexdigest()[:32]
    assert ring.mask_salt == old_salt
    assert webhook_secret(ring.webhook_key, "job1") == webhook_secret(b"s" * 32, "job1")
    assert ring.signing_key != b"s" * 32  # tokens signed with the old secret are not accepted


def test_token_round_trip_scopes_and_forgery():
    signer = TokenSigner(b"k" * 32)
    tok = signer.mint("ada", scope=RUN)
    claims = signer.verify(tok)
    assert claims["sub"] == "ada" and claims["scope"] == RUN and claims["exp"] > time.time()
    kernel = signer.verify(signer.mint("ada", "kernel", kernel_id="k1"))
    assert kernel["kid"] == "k1"
    with pytest.raises(TokenError):  # a kernel token names its kernel
        signer.verify(signer.mint("ada", "kernel"))
    with pytest.raises(TokenError):
        signer.verify(signer.mint("ada", "admin"))  # no such scope
    with pytest.raises(TokenError):
        TokenSigner(b"x" * 32).verify(tok)  # another workspace's key
    header, _payload, sig = tok.split(".")
    evil = TokenSigner(b"x" * 32).mint("root", RUN).split(".")[1]
    with pytest.raises(TokenError):
        signer.verify(f"{header}.{evil}.{sig}")  # swapped claims
    none = jwt.encode(jwt.decode(tok, options={"verify_signature": False}), None, "none")
    with pytest.raises(TokenError):
        signer.verify(none)  # the "none" algorithm


def test_expired_tokens_are_refused_but_can_be_read_for_renewal():
    signer = TokenSigner(b"k" * 32, ttl_s=60)
    old = signer.mint("ada", RUN, ttl=-1)
    with pytest.raises(TokenError) as e:
        signer.verify(old)
    assert e.value.reason == "expired"
    assert signer.verify(old, allow_expired=True)["sub"] == "ada"
    fresh = signer.verify(signer.mint("ada", RUN))
    assert fresh["exp"] - fresh["iat"] == 60


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_verify_never_raises_anything_but_token_error(text):
    signer = TokenSigner(b"k" * 32)
    for candidate in (text, f"eyJhbGciOiJIUzI1NiJ9.{text}.{text}", f"{text}.{text}.{text}"):
        with pytest.raises(TokenError):
            signer.verify(candidate)
