"""ARC (RFC 8617): chains we seal validated by us over a DNS stand-in on loopback and, for
each, by dkimpy's ``arc_verify`` as the independent check; broken chains (a changed body, an
altered seal, a missing or a 51st set, a key the DNS does not give) fail; a failed chain is
sealed with ``cv=fail`` over the new set alone (RFC 8617 §5.1.2)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence

import dkim as dkimpy
import dns.asyncresolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from courrier import config
from courrier.dns.resolver import make_resolver
from courrier.mailauth import arc, keys
from courrier.mailauth.arc import ARCResult, seal, verify_arc
from courrier.mailauth.dkim import ED25519, RSA, UnusableKey, field_name, split
from courrier.store import DkimKey
from tests.mailauth.helpers import table_lookup
from tests.support.dnsstub import DNSStub

NONE = ARCResult("none", 0, (), "")
T1 = 1_700_000_000
T2 = T1 + 60
T3 = T1 + 120

MESSAGE = (
    b"Received: from mail.example.org by mx.forwarder.test; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"From: Alice <alice@example.org>\r\n"
    b"To: list@forwarder.test\r\n"
    b"Subject: Minutes\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"Message-ID: <minutes@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The minutes of today's meeting.\r\n"
)


def rsa_key(domain: str, selector: str, bits: int = 2048) -> DkimKey:
    private = rsa.generate_private_key(65537, bits)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return DkimKey(1, domain, selector, RSA, pem, keys.public_value(private), T1, T1)


@pytest.fixture(scope="module")
def origin() -> DkimKey:
    return rsa_key("example.org", "arc1")


@pytest.fixture(scope="module")
def forwarder() -> DkimKey:
    return rsa_key("forwarder.test", "seal")


@pytest.fixture(scope="module")
def third() -> DkimKey:
    return rsa_key("third.test", "s2026")


def txt(value: str) -> str:
    """A TXT record in zone-file text, in strings of at most 255 octets (RFC 1035 §3.3)."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def records(*dkim_keys: DkimKey) -> dict[str, list[str]]:
    return {f"{keys.record_name(k)} TXT": [txt(keys.record_value(k))] for k in dkim_keys}


def dkimpy_cv(message: bytes, *dkim_keys: DkimKey) -> bytes | None:
    """dkimpy's verdict on the chain: b"pass", b"fail", b"none", or None (a cv=fail seal)."""
    lookup = table_lookup({keys.record_name(k): keys.record_value(k) for k in dkim_keys})
    cv, _, _ = dkimpy.arc_verify(message, dnsfunc=lookup)
    return cv  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def resolving(stub: DNSStub) -> AsyncIterator[dns.asyncresolver.Resolver]:
    async with stub.serving() as address:
        settings = config.load(env={}, overrides={"dns.resolvers": [address]})
        yield make_resolver(settings, timeout=3)


async def check(message: bytes, *dkim_keys: DkimKey, failing: Sequence[str] = ()) -> ARCResult:
    async with resolving(DNSStub(records(*dkim_keys), failing=set(failing))) as resolver:
        return await verify_arc(message, resolver)


def hop(message: bytes, key: DkimKey, chain: ARCResult, now: int, results: str = "") -> bytes:
    """``message`` as it leaves an intermediary that validated ``chain`` and seals it."""
    mx = f"mx.{key.domain}"
    payload = results or f"{mx}; spf=pass smtp.mailfrom=example.org; arc={chain.result}"
    return (
        seal(
            message,
            key=key,
            authserv_id=mx,
            authentication_results=payload,
            chain=chain,
            now=now,
        )
        + message
    )


def arc_fields(message: bytes) -> list[bytes]:
    return [f for f in split(message)[0] if field_name(f).startswith("arc-")]


def replace_field(message: bytes, old: bytes, new: bytes) -> bytes:
    assert message.count(old) == 1
    return message.replace(old, new)


async def test_one_seal_passes(origin: DkimKey) -> None:
    sealed = hop(MESSAGE, origin, NONE, T1)
    result = await check(sealed, origin)
    assert result == ARCResult("pass", 1, ("example.org",), "")
    assert result.authres() == "arc=pass (i=1, sealed by example.org)"
    assert dkimpy_cv(sealed, origin) == b"pass"
    names = [field_name(f) for f in arc_fields(sealed)]
    assert names == ["arc-seal", "arc-message-signature", "arc-authentication-results"]
    arc_seal, ams, aar = arc_fields(sealed)
    assert arc_seal.startswith(b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; s=arc1;")
    assert ams.startswith(b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert re.sub(rb"\r\n[ \t]", b" ", aar) == (
        b"ARC-Authentication-Results: i=1; mx.example.org;"
        b" spf=pass smtp.mailfrom=example.org; arc=none"
    )
    # RFC 8617 §4.1.2: neither ARC's fields nor Authentication-Results in the AMS's h=.
    h = re.search(rb"h=([^;]*);", ams)
    assert h is not None
    signed = {n.strip().lower() for n in h.group(1).split(b":")}
    assert {b"from", b"subject", b"to", b"date", b"message-id"} <= signed
    assert not {n for n in signed if n.startswith(b"arc-") or n == b"authentication-results"}


async def test_two_hops_pass_even_when_the_second_changed_the_message(
    origin: DkimKey, forwarder: DkimKey
) -> None:
    first = hop(MESSAGE, origin, NONE, T1)
    chain = await check(first, origin)
    # The list adds a tag to the subject and a footer: the first AMS breaks, the chain holds.
    changed = first.replace(b"Subject: Minutes", b"Subject: [list] Minutes") + b"-- \r\nlist\r\n"
    second = hop(changed, forwarder, chain, T2)
    result = await check(second, origin, forwarder)
    assert result == ARCResult("pass", 2, ("example.org", "forwarder.test"), "")
    assert dkimpy_cv(second, origin, forwarder) == b"pass"
    assert b"cv=pass" in arc_fields(second)[0]


async def test_three_hops_and_a_dkim_signature_signed_by_the_ams(
    origin: DkimKey, forwarder: DkimKey, third: DkimKey
) -> None:
    signature = (
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=AA==; b=AA==\r\n"
    )
    first = hop(signature + MESSAGE, origin, NONE, T1)
    ams = arc_fields(first)[1]
    assert b"dkim-signature" in ams.lower()  # RFC 8617 §4.1.2: SHOULD include them
    second = hop(first, forwarder, await check(first, origin), T2)
    third_hop = hop(second, third, await check(second, origin, forwarder), T3)
    result = await check(third_hop, origin, forwarder, third)
    assert result.result == "pass"
    assert result.sealers == ("example.org", "forwarder.test", "third.test")
    assert dkimpy_cv(third_hop, origin, forwarder, third) == b"pass"
    # Changing the signature after the last seal breaks its AMS.
    broken = third_hop.replace(b"bh=AA==; b=AA==", b"bh=AA==; b=AB==")
    assert (await check(broken, origin, forwarder, third)).result == "fail"


async def test_no_arc_fields_is_none(origin: DkimKey) -> None:
    result = await check(MESSAGE, origin)
    assert result == NONE
    assert result.authres() == "arc=none"


async def test_body_changed_after_the_last_seal_fails(origin: DkimKey, forwarder: DkimKey) -> None:
    second = hop(hop(MESSAGE, origin, NONE, T1), forwarder, ARCResult("pass", 1, (), ""), T2)
    assert (await check(second, origin, forwarder)).result == "pass"
    changed = second.replace(b"today's meeting", b"yesterday's meeting")
    result = await check(changed, origin, forwarder)
    assert result.result == "fail"
    assert result.instances == 2
    assert result.reason == "ARC-Message-Signature i=2 did not verify"
    assert result.authres() == "arc=fail (ARC-Message-Signature i=2 did not verify)"
    assert dkimpy_cv(changed, origin, forwarder) == b"fail"


async def test_an_earlier_seal_altered_fails(origin: DkimKey, forwarder: DkimKey) -> None:
    first = hop(MESSAGE, origin, NONE, T1)
    second = hop(first, forwarder, await check(first, origin), T2)
    old_seal = arc_fields(first)[0]
    assert f"t={T1};".encode() in old_seal
    altered = replace_field(
        second, old_seal, old_seal.replace(f"t={T1};".encode(), f"t={T1 + 1};".encode())
    )
    result = await check(altered, origin, forwarder)
    assert result.result == "fail"
    assert "ARC-Seal" in result.reason
    assert dkimpy_cv(altered, origin, forwarder) == b"fail"


async def test_a_missing_instance_fails(
    origin: DkimKey, forwarder: DkimKey, third: DkimKey
) -> None:
    first = hop(MESSAGE, origin, NONE, T1)
    second = hop(first, forwarder, await check(first, origin), T2)
    third_hop = hop(second, third, await check(second, origin, forwarder), T3)
    # Take set i=2 out: i=1 and i=3 remain.
    without = third_hop
    for field in arc_fields(second)[:3]:
        without = replace_field(without, field + b"\r\n", b"")
    instances = [re.search(rb"i=(\d+)", f) for f in arc_fields(without)]
    assert sorted({int(m.group(1)) for m in instances if m}) == [1, 3]
    result = await check(without, origin, forwarder, third)
    assert result.result == "fail"
    assert result.instances == 3
    assert result.reason == "ARC set i=2 has no ARC-Authentication-Results"


async def test_a_set_with_a_field_twice_fails(origin: DkimKey) -> None:
    sealed = hop(MESSAGE, origin, NONE, T1)
    aar = arc_fields(sealed)[2]
    doubled = replace_field(sealed, aar, aar + b"\r\n" + aar)
    result = await check(doubled, origin)
    assert (result.result, result.reason) == (
        "fail",
        "ARC set i=1 has 2 ARC-Authentication-Results",
    )


async def test_more_than_fifty_sets_fails(origin: DkimKey) -> None:
    sealed = hop(MESSAGE, origin, NONE, T1)
    renumbered = sealed
    for field in arc_fields(sealed):
        renumbered = replace_field(renumbered, field, field.replace(b"i=1;", b"i=51;", 1))
    result = await check(renumbered, origin)
    assert (result.result, result.instances) == ("fail", 51)
    assert result.reason == "more than 50 ARC sets"


async def test_a_key_the_dns_does_not_give_is_not_a_pass(
    origin: DkimKey, forwarder: DkimKey
) -> None:
    sealed = hop(MESSAGE, origin, NONE, T1)
    result = await check(sealed, origin, failing=[keys.record_name(origin)])
    assert result.result == "fail"  # RFC 8617 §5.2.1: DNS failures too
    assert result.temporary
    assert result.reason == f"temporary DNS error looking up {keys.record_name(origin)}"
    # No record at all: a failure, not a temporary one.
    absent = await check(sealed, forwarder)
    assert absent.result == "fail"
    assert not absent.temporary
    assert absent.sealers == ("example.org",)


async def test_a_failed_chain_is_sealed_with_cv_fail_over_the_new_set_alone(
    origin: DkimKey, forwarder: DkimKey, third: DkimKey
) -> None:
    first = hop(MESSAGE, origin, NONE, T1)
    broken = first.replace(b"today's meeting", b"yesterday's meeting")
    chain = await check(broken, origin)
    assert chain.result == "fail"
    second = hop(broken, forwarder, chain, T2)
    new_set = arc_fields(second)[:3]
    assert new_set[0].startswith(b"ARC-Seal: i=2; a=rsa-sha256; cv=fail; d=forwarder.test;")
    # RFC 8617 §5.2 step 2: the newest seal saying cv=fail ends the chain.
    result = await check(second, origin, forwarder)
    assert (result.result, result.instances) == ("fail", 2)
    assert result.reason == "ARC-Seal i=2 has cv=fail: the chain was already broken"
    assert dkimpy_cv(second, origin, forwarder) is None  # dkimpy: "the chain is terminated"
    # RFC 8617 §5.1.2: the seal signs the new set alone. dkimpy checks it over just that set.
    message_alone = b"".join(f + b"\r\n" for f in new_set) + MESSAGE
    checker = dkimpy.ARC(message_alone)
    sig = dkimpy.util.parse_tag_value(new_set[0].split(b":", 1)[1])
    sig[b"c"] = b"relaxed/relaxed"
    lookup = table_lookup({keys.record_name(forwarder): keys.record_value(forwarder)})
    include = [b"arc-authentication-results", b"arc-message-signature"]
    assert checker.verify_sig(sig, include, (b"ARC-Seal", new_set[0].split(b":", 1)[1]), lookup)
    # §5.1 step 2: nothing more is added to a chain that says it failed.
    assert (
        seal(
            second,
            key=third,
            authserv_id="mx.third.test",
            authentication_results="mx.third.test; arc=fail",
            chain=result,
        )
        == b""
    )


async def test_a_chain_that_lies_about_its_cv_fails(origin: DkimKey, forwarder: DkimKey) -> None:
    # A second sealer that calls a chain "none" although there is one: cv must be pass.
    first = hop(MESSAGE, origin, NONE, T1)
    second = hop(first, forwarder, await check(first, origin), T2)
    seal_2 = arc_fields(second)[0]
    lying = replace_field(second, seal_2, seal_2.replace(b"cv=pass", b"cv=none"))
    result = await check(lying, origin, forwarder)
    assert (result.result, result.reason) == ("fail", "ARC-Seal i=2 has cv=none, not pass")


def test_seal_takes_cv_from_the_chain_and_the_message(origin: DkimKey) -> None:
    # No ARC field: cv=none whatever the caller passes.
    assert b"cv=none" in seal(
        MESSAGE,
        key=origin,
        authserv_id="mx",
        authentication_results="mx; arc=pass",
        chain=ARCResult("pass", 1, (), ""),
        now=T1,
    )
    sealed = hop(MESSAGE, origin, NONE, T1)
    # A chain the caller did not validate (or validated as none) is not vouched for.
    for chain in (NONE, ARCResult("fail", 1, (), "x"), ARCResult("pass", 3, (), "")):
        out = seal(
            sealed,
            key=origin,
            authserv_id="mx",
            authentication_results="mx; none",
            chain=chain,
            now=T2,
        )
        assert out.startswith(b"ARC-Seal: i=2; a=rsa-sha256; cv=fail;")


def test_seal_puts_the_authserv_id_first_and_folds_long_results(origin: DkimKey) -> None:
    results = "; ".join(
        f"dkim=pass header.d=signer{n}.example header.s=selector{n}" for n in range(6)
    )
    out = seal(
        MESSAGE,
        key=origin,
        authserv_id="mx.example.org",
        authentication_results=results,
        chain=NONE,
        now=T1,
    )
    aar = next(f for f in split(out + MESSAGE)[0] if field_name(f) == "arc-authentication-results")
    assert all(len(line) <= 78 for line in aar.split(b"\r\n"))
    assert re.sub(rb"\r\n[ \t]", b" ", aar) == (
        f"ARC-Authentication-Results: i=1; mx.example.org; {results}".encode()
    )
    # Line breaks in what the caller gives do not make new header fields.
    out = seal(
        MESSAGE,
        key=origin,
        authserv_id="mx",
        authentication_results="mx; spf=pass\nX-Evil: 1",
        chain=NONE,
        now=T1,
    )
    assert b"\nX-Evil" not in out


def test_seal_refuses_fifty_sets_and_non_rsa_keys(origin: DkimKey) -> None:
    sets = b"".join(
        f"ARC-Seal: i={i}; a=rsa-sha256; cv={'pass' if i > 1 else 'none'}; d=x.test; b=AA==\r\n"
        f"ARC-Message-Signature: i={i}; a=rsa-sha256; d=x.test; s=s; h=from; bh=AA==; b=AA==\r\n"
        f"ARC-Authentication-Results: i={i}; mx.x.test; arc=pass\r\n".encode()
        for i in range(50, 0, -1)
    )
    chain = ARCResult("pass", 50, ("x.test",) * 50, "")
    assert (
        seal(
            sets + MESSAGE,
            key=origin,
            authserv_id="mx",
            authentication_results="mx; none",
            chain=chain,
        )
        == b""
    )
    ed = DkimKey(2, "example.org", "ed", ED25519, keys.generate([], T1)[1].private_key, "", T1, T1)
    with pytest.raises(UnusableKey):
        seal(MESSAGE, key=ed, authserv_id="mx", authentication_results="mx; none", chain=NONE)


def test_authres_escapes_the_comment() -> None:
    result = ARCResult("fail", 1, ("a.example",), "bad (very) \\ bad")
    assert result.authres() == "arc=fail (bad \\(very\\) \\\\ bad)"
    assert not result.temporary
    assert arc.ARCResult("fail", 1, (), f"{arc.TEMPORARY} looking up x").temporary
