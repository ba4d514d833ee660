from __future__ import annotations

import os
import stat

from jupyter_dataops.identity import TokenSigner, load_or_create_secret


def test_token_round_trip_and_forgery(tmp_path):
    key = load_or_create_secret(tmp_path / ".dataops" / "secret")
    assert stat.S_IMODE(os.stat(tmp_path / ".dataops" / "secret").st_mode) == 0o600
    assert load_or_create_secret(tmp_path / ".dataops" / "secret") == key  # stable
    signer = TokenSigner(key)
    tok = signer.mint("ada", scope="run:42")
    claims = signer.verify(tok)
    assert claims is not None and claims["sub"] == "ada" and claims["scope"] == "run:42"

    other = TokenSigner(b"x" * 32)
    assert other.verify(tok) is None  # another workspace's key
    prefix, _payload, sig = tok.split(".")
    evil = other.mint("root").split(".")[1]
    assert signer.verify(f"{prefix}.{evil}.{sig}") is None  # swapped claims
    assert signer.verify("not-a-token") is None
    assert signer.verify("") is None


def test_expired_token_is_rejected():
    signer = TokenSigner(b"k" * 32)
    assert signer.verify(signer.mint("ada", ttl=-1)) is None
    assert signer.verify(signer.mint("ada", ttl=60)) is not None
