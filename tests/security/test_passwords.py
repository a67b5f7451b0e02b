"""Password policy, argon2id hashes and the SCRAM-SHA-256 verifier (RFC 7677 test vector)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from courrier.security import passwords


def test_rfc7677_scram_sha256_vector() -> None:
    """RFC 7677 §3: user "user", password "pencil"; the stored keys must verify its proofs."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = passwords.scram_sha256("pencil", salt=salt)
    iterations, salt_b64, stored_b64, server_b64 = verifier.split(",")
    assert (int(iterations), base64.b64decode(salt_b64)) == (4096, salt)
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = (
        "n=user,r=rOprNGfwEbeRWgbNEkqO,"
        f"r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        f"c=biws,r={nonce}"
    ).encode()
    stored_key = base64.b64decode(stored_b64)
    client_signature = hmac.digest(stored_key, auth_message, "sha256")
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    server_signature = hmac.digest(base64.b64decode(server_b64), auth_message, "sha256")
    assert base64.b64encode(server_signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_argon2id_hash_verifies_only_the_right_password() -> None:
    creds = passwords.make_credentials("a fine passphrase")
    assert creds.password_hash.startswith("$argon2id$")
    assert passwords.verify(creds.password_hash, "a fine passphrase")
    assert not passwords.verify(creds.password_hash, "a fine passphrasE")
    assert not passwords.verify("not a hash", "a fine passphrase")
    assert creds.password_hash != passwords.make_credentials("a fine passphrase").password_hash


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "empty"),
        ("short", "too short"),
        ("aaaaaaaaaaaaaa", "too few different"),
        ("Password123!", "most common"),
        ("azertyuiop", "most common"),
        ("alice-is-great-2026", "user name"),
        (" padded password ", "space"),
    ],
)
def test_policy_refuses_weak_passwords(password: str, reason: str) -> None:
    with pytest.raises(passwords.WeakPassword, match=reason):
        passwords.check_policy(password, min_length=10, address="alice@example.org")


def test_policy_accepts_generated_passwords() -> None:
    for _ in range(20):
        generated = passwords.generate_password()
        passwords.check_policy(generated, min_length=10, address="alice@example.org")
        assert len(generated) == 20


def test_login_cache_hits_only_the_same_password_and_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = passwords.LoginCache(ttl=60, size=2)
    cache.remember("bob@example.org", "hash-1", "right password")
    assert cache.hit("bob@example.org", "hash-1", "right password")
    assert not cache.hit("bob@example.org", "hash-1", "wrong password")
    assert not cache.hit("carol@example.org", "hash-1", "right password")
    # A password change (a new stored hash) forgets the entry.
    assert not cache.hit("bob@example.org", "hash-2", "right password")
    assert not cache.hit("bob@example.org", "hash-1", "right password")
    # Entries expire, and the cache keeps at most ``size`` of them.
    cache.remember("a@x.org", "h", "p")
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 61)
    assert not cache.hit("a@x.org", "h", "p")
    monkeypatch.setattr(time, "monotonic", lambda: now)
    for name in ("a", "b", "c"):
        cache.remember(f"{name}@x.org", "h", "p")
    assert not cache.hit("a@x.org", "h", "p") and cache.hit("c@x.org", "h", "p")
