"""SASL exchanges: RFC 7677's SCRAM-SHA-256 example end to end, PLAIN, LOGIN, failures."""

from __future__ import annotations

import base64

import pytest

from courrier.security import passwords
from courrier.security.sasl import (
    Challenge,
    Exchange,
    Failure,
    NeedPassword,
    NeedVerifier,
    Success,
)

NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)


def _pencil() -> str:
    return passwords.scram_sha256("pencil", salt=base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="))


def test_rfc7677_exchange() -> None:
    exchange = Exchange("SCRAM-SHA-256", nonce=NONCE)
    assert exchange.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO") == NeedVerifier("user", "")
    assert exchange.verifier(_pencil()) == Challenge(
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    assert exchange.step(CLIENT_FINAL) == Challenge(
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    )
    assert exchange.step(b"") == Success("user")


def test_scram_wrong_password_and_unknown_user_fail_alike() -> None:
    wrong = Exchange("SCRAM-SHA-256", nonce=NONCE)
    wrong.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    wrong.verifier(passwords.scram_sha256("not pencil", salt=b"0123456789abcdef"))
    assert isinstance(wrong.step(CLIENT_FINAL), Failure)
    unknown = Exchange("SCRAM-SHA-256", nonce=NONCE)
    unknown.start(b"n,,n=nobody,r=rOprNGfwEbeRWgbNEkqO")
    challenge = unknown.verifier("")
    assert isinstance(challenge, Challenge) and b",i=4096" in challenge.data
    assert unknown.step(CLIENT_FINAL) == Failure("invalid credentials")


@pytest.mark.parametrize(
    "first",
    [b"p=tls-unique,,n=user,r=abc", b"n,,r=abc", b"n,,m=ext,n=user,r=abc", b"\xff\xfe", b""],
)
def test_scram_refuses_malformed_or_channel_bound_starts(first: bytes) -> None:
    assert isinstance(Exchange("SCRAM-SHA-256").start(first), Failure)


def test_scram_final_must_match_nonce_and_binding() -> None:
    exchange = Exchange("SCRAM-SHA-256", nonce=NONCE)
    exchange.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    exchange.verifier(_pencil())
    assert isinstance(exchange.step(CLIENT_FINAL.replace(b"k0,p", b"k1,p")), Failure)


def test_plain_with_and_without_initial_response() -> None:
    assert Exchange("PLAIN").start(b"\0alice@example.org\0secret pass") == NeedPassword(
        "alice@example.org", "secret pass", ""
    )
    exchange = Exchange("plain")
    assert exchange.start(None) == Challenge(b"")
    assert exchange.step(b"admin\0alice\0pw") == NeedPassword("alice", "pw", "admin")
    assert exchange.password_checked(True, "alice@example.org") == Success("alice@example.org")
    assert exchange.password_checked(False, "") == Failure("invalid credentials")
    for bad in (b"no-nul", b"\0\0pw", b"a\0b\0c\0d", b"\0\xff\0pw"):
        assert isinstance(Exchange("PLAIN").start(bad), Failure)


def test_login_asks_for_user_then_password() -> None:
    exchange = Exchange("LOGIN")
    assert exchange.start(None) == Challenge(b"Username:")
    assert exchange.step(b"alice@example.org") == Challenge(b"Password:")
    assert exchange.step(b"pw") == NeedPassword("alice@example.org", "pw", "")
    with_initial = Exchange("LOGIN")
    assert with_initial.start(b"bob") == Challenge(b"Password:")


def test_unknown_mechanism() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        Exchange("CRAM-MD5")
