"""DKIM signing: the RFCs' own examples reproduced bit for bit, and every signature we make
verified by an independent implementation (dkimpy), before and after changes a relaxed
verifier must tolerate or must refuse."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.mailauth import dkim as ours
from tests.mailauth.helpers import table_lookup, verified

# RFC 8463 Appendix A: keys, the message (RFC 6376 Appendix A.1's) and both signatures.
RFC8463_ED25519_SEED = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
RFC8463_ED25519_PUBLIC = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
RFC8463_RSA_PRIVATE = """-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi
Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM
KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB
AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm
6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe
zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy
6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc
uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy
WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd
WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a
licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst
o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe
uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL
-----END RSA PRIVATE KEY-----
"""
RFC8463_RSA_RECORD = (
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
)
EXAMPLE = (
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n"
)
BH = "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
H = ["from", "to", "subject", "date", "message-id", "from", "subject", "date"]
ED25519_TEMPLATE = (
    "v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    f" bh={BH};\r\n"
    " b="
)
ED25519_B = (
    "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
)
RSA_TEMPLATE = (
    "v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    f" bh={BH};\r\n"
    " b="
)
RSA_B = (
    "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9"
    "mPYQTnGdaSGsgeefOsk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8="
)


def rfc8463_keys() -> tuple[ours.SigningKey, ours.SigningKey]:
    seed = base64.b64decode(RFC8463_ED25519_SEED)
    ed = ours.SigningKey(
        "football.example.com",
        "brisbane",
        ours.ED25519,
        ed25519.Ed25519PrivateKey.from_private_bytes(seed),
    )
    rsa_key = ours.SigningKey.from_pem("football.example.com", "test", RFC8463_RSA_PRIVATE)
    return ed, rsa_key


RFC8463_ED25519_RECORD = f"v=DKIM1; k=ed25519; p={RFC8463_ED25519_PUBLIC}"
RFC8463_DNS = table_lookup(
    {
        "brisbane._domainkey.football.example.com": RFC8463_ED25519_RECORD,
        "test._domainkey.football.example.com": RFC8463_RSA_RECORD,
    }
)


# -- the RFCs' examples ------------------------------------------------------------------


def test_rfc6376_relaxed_examples() -> None:
    """RFC 6376 §3.4.6, example 2 (relaxed header and body)."""
    fields, body = ours.split(b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n")
    assert ours.signed_headers(fields, ["a", "b"]) == b"a:X\r\nb:Y Z\r\n"
    assert ours.relaxed_body(body) == b" C\r\nD E\r\n"


def test_rfc6376_empty_body_hashes_as_nothing() -> None:
    """RFC 6376 §3.4.4: the relaxed canonical form of an empty body is empty (the SHA-256
    of the empty string, unlike simple's CRLF)."""
    assert ours.body_hash(b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert ours.body_hash(b"\r\n\r\n") == ours.body_hash(b"")


def test_rfc8463_body_hash() -> None:
    assert ours.body_hash(ours.split(EXAMPLE)[1]) == BH


@pytest.mark.parametrize(
    ("which", "template", "expected"),
    [(0, ED25519_TEMPLATE, ED25519_B), (1, RSA_TEMPLATE, RSA_B)],
    ids=["ed25519", "rsa"],
)
def test_rfc8463_signatures_reproduced(which: int, template: str, expected: str) -> None:
    """Both signatures of RFC 8463 Appendix A.3, byte for byte (both algorithms are
    deterministic): canonicalization, header selection and signing all agree with the RFC."""
    key = rfc8463_keys()[which]
    fields, _ = ours.split(EXAMPLE)
    data = ours.signature_data(ours.signed_headers(fields, H), template)
    assert base64.b64encode(key.sign(data)).decode() == expected


def test_rfc8463_message_verifies_with_dkimpy() -> None:
    """The vector itself, through the reference verifier: the keys are the RFC's."""
    signed = (
        ours.finish(ED25519_TEMPLATE, base64.b64decode(ED25519_B))
        + ours.finish(RSA_TEMPLATE, base64.b64decode(RSA_B))
        + EXAMPLE
    )
    assert verified(signed, RFC8463_DNS) == [True, True]


def test_our_layout_of_the_example_verifies() -> None:
    ed, rsa_key = rfc8463_keys()
    signed = ours.sign(EXAMPLE, [ed, rsa_key], 1528637909) + EXAMPLE
    assert verified(signed, RFC8463_DNS) == [True, True]
    top = signed.split(b"\r\n\r\n")[0].decode()
    assert "a=ed25519-sha256" in top and "s=brisbane" in top and f"bh={BH}" in top


# -- our signatures, RSA-2048 and Ed25519, through dkimpy --------------------------------

RSA_2048 = rsa.generate_private_key(65537, 2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
KEYS = [
    ours.SigningKey("example.org", "r1", ours.RSA, RSA_2048),
    ours.SigningKey("example.org", "e1", ours.ED25519, ED_KEY),
]


def _record(key: ours.SigningKey) -> str:
    public = key.key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


OUR_DNS = table_lookup({f"{k.selector}._domainkey.example.org": _record(k) for k in KEYS})

MESSAGE = (
    b"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
    b"From: Bob <bob@example.org>\r\n"
    b"To: carol@b.test,\r\n  dave@b.test\r\n"
    b"Subject:   Quarterly   numbers \r\n"
    b"Message-ID: <q4@example.org>\r\n"
    b"X-Mailer: test\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Numbers  attached. \r\n\r\n-- \r\nBob\r\n\r\n\r\n"
)


def signed(message: bytes = MESSAGE) -> bytes:
    return ours.sign(message, KEYS, 1_790_000_000) + message


def test_both_signatures_verify() -> None:
    out = signed()
    assert verified(out, OUR_DNS) == [True, True]
    header = out.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))  # RFC 5322 §2.1.1


def test_relaxed_changes_still_verify() -> None:
    """What forwarders do to white space and folding (refolded header, trailing blanks,
    extra empty lines at the end) leaves both signatures valid."""
    out = signed()
    out = out.replace(b"Subject:   Quarterly   numbers ", b"subject: Quarterly\r\n numbers")
    out = out.replace(b"Numbers  attached. ", b"Numbers attached.")
    out += b"\r\n\r\n"
    assert verified(out, OUR_DNS) == [True, True]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"Numbers  attached.", b"Numbers altered."),
        lambda m: m.replace(b"Subject:   Quarterly", b"Subject: Yearly"),
        # Oversigned: a second From or a Reply-To added on top breaks the signature.
        lambda m: b"From: Mallory <m@evil.test>\r\n" + m,
        lambda m: b"Reply-To: m@evil.test\r\n" + m,
    ],
    ids=["body", "subject", "second-from", "added-reply-to"],
)
def test_tampering_fails(tamper) -> None:  # type: ignore[no-untyped-def]
    out = signed()
    head, _, rest = out.partition(b"From: Bob")  # tamper below the signatures
    assert verified(head + tamper(b"From: Bob" + rest), OUR_DNS) == [False, False]


def test_unlisted_header_may_be_added() -> None:
    out = signed().replace(b"X-Mailer: test\r\n", b"X-Mailer: test\r\nX-Spam: no\r\n")
    assert verified(out, OUR_DNS) == [True, True]


_header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from(" \t"),
    min_size=0,
    max_size=40,
)
_body_line = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from(" \t"),
    max_size=60,
).filter(lambda s: not s.startswith("."))


@settings(max_examples=60, deadline=None)
@given(
    subject=_header_value,
    to=_header_value,
    body=st.lists(_body_line, max_size=8),
    trailing=st.integers(0, 3),
)
def test_any_message_verifies(subject: str, to: str, body: list[str], trailing: int) -> None:
    message = (
        f"From: bob@example.org\r\nTo: {to}\r\nSubject:{subject}\r\n\r\n"
        + "".join(line + "\r\n" for line in body)
        + "\r\n" * trailing
    ).encode()
    assert verified(signed(message), OUR_DNS) == [True, True]


def test_key_from_pem_refuses_other_kinds() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ours.UnusableKey):
        ours.SigningKey.from_pem("example.org", "x", pem)
    with pytest.raises(ours.UnusableKey):
        ours.SigningKey.from_pem("example.org", "x", "not a key")
