"""DKIM verification of inbound mail: the RFC 8463 example message (both its signatures) and
our own signatures pass, keys fetched from a loopback DNS stand-in; a changed body or header
fails; a missing key is a permerror, a DNS failure a temperror, an RSA key under 1024 bits a
``policy`` result (RFC 8301)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from courrier import config
from courrier.dns.resolver import make_resolver
from courrier.mailauth import dkim as ours
from courrier.mailauth.dkimverify import DKIMResult, verify_dkim
from tests.mailauth.test_dkim import (
    ED25519_B,
    ED25519_TEMPLATE,
    EXAMPLE,
    KEYS,
    MESSAGE,
    RFC8463_ED25519_RECORD,
    RFC8463_RSA_RECORD,
    RSA_B,
    RSA_TEMPLATE,
    _record,
    signed,
)
from tests.support.dnsstub import DNSStub


def txt(value: str) -> list[str]:
    """A TXT record in zone-file text, split into strings of at most 255 octets."""
    return [" ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))]


RECORDS = {
    "brisbane._domainkey.football.example.com TXT": txt(RFC8463_ED25519_RECORD),
    "test._domainkey.football.example.com TXT": txt(RFC8463_RSA_RECORD),
    **{f"{k.selector}._domainkey.example.org TXT": txt(_record(k)) for k in KEYS},
}


Verify = Callable[[bytes], Awaitable[list[DKIMResult]]]


@pytest.fixture
async def check() -> AsyncIterator[Verify]:
    stub = DNSStub(RECORDS, failing={"down._domainkey.example.org"})
    async with stub.serving() as resolver:
        settings = config.load(env={}, overrides={"dns.resolvers": [resolver]})
        dns_resolver = make_resolver(settings, timeout=2)

        async def verify(message: bytes) -> list[DKIMResult]:
            return await verify_dkim(message, dns_resolver)

        yield verify


RFC8463_SIGNED = (
    ours.finish(ED25519_TEMPLATE, base64.b64decode(ED25519_B))
    + ours.finish(RSA_TEMPLATE, base64.b64decode(RSA_B))
    + EXAMPLE
)


async def test_the_rfc8463_example_passes(check: Verify) -> None:
    """RFC 8463 Appendix A.3: an Ed25519 and an RSA signature of RFC 6376's example message."""
    ed, rsa_result = await check(RFC8463_SIGNED)
    assert (ed.result, ed.algorithm, ed.key_bits, ed.selector) == (
        "pass", "ed25519-sha256", 256, "brisbane",
    )  # fmt: skip
    assert (rsa_result.result, rsa_result.key_bits) == ("pass", 1024)
    assert ed.domain == rsa_result.domain == "football.example.com"
    assert ed.identity == "@football.example.com"
    assert ed.header_b == ED25519_B[:8]


async def test_a_changed_body_or_header_fails(check: Verify) -> None:
    body = RFC8463_SIGNED.replace(b"We lost the game", b"We won the game")
    assert [r.result for r in await check(body)] == ["fail", "fail"]
    assert "body hash" in (await check(body))[0].reason
    subject = RFC8463_SIGNED.replace(b"Is dinner ready?", b"Is lunch ready?")
    assert [r.result for r in await check(subject)] == ["fail", "fail"]


async def test_our_signatures_pass(check: Verify) -> None:
    results = await check(signed())
    assert [(r.result, r.domain, r.key_bits) for r in results] == [
        ("pass", "example.org", 2048),
        ("pass", "example.org", 256),
    ]
    assert await check(MESSAGE) == []  # unsigned


async def test_key_problems(check: Verify) -> None:
    message = signed()
    missing = message.replace(b"s=r1;", b"s=gone;", 1)
    assert (await check(missing))[0].result == "permerror"
    down = message.replace(b"s=r1;", b"s=down;", 1)
    assert (await check(down))[0].result == "temperror"


#: A 768-bit RSA key, made for this test (``openssl genrsa 768``): too small to trust.
SMALL_KEY = """-----BEGIN RSA PRIVATE KEY-----
MIIBygIBAAJhAJ7EIWg28Sh4Cm23rtnc+Rg6IxG2J/T7xEI0By58+7IPtEdAhw2Q
QwonZwdf+EpC6yzxJf0g7pv651t5vm0WKcaRkiL3F/geFn2L2KpJVuMA5O4c3hjn
I7Q3E3ytairUGwIDAQABAmBv3GJpSeSqDcHTQgrZB18eGcAht4T5j/Xca0nwEDFK
aNQtK6K8BLunSNHHmW+X6wMpqBMjZhwvElZL+KztoQbxk8b1cKKVIfHMIzeqBYoQ
dBmtvIDz1wkWNxx1RcY2tMkCMQDPX/i9CSKm5M6NSNRmEZq84z14v8OwhQeAp4FO
jYb1ZhgfDzGY3a8/neJCB+HI1+UCMQDD/lYQR28kZDYqWH6GbuLn73iiTSaY7WKU
7EJlCRo2w5k4vAnOTaz/pNvkS6pSO/8CME0+1oyzxnCcckQ2iMesbxNFIjTEWcR7
CRxnSMdV+JuYeAu5wSPMD+eGjC1Eelox8QIwctvvhfTHHpWX5LMd2xzK30/I65y5
HPApUMswkdOGyEdS2Rvhx0RgOSVdNGpfc3fzAjEAlLXILQr415+QGDJgtv+VHBVn
vcnYrH2foqN8uLQNnIpcQ+8MBSaXK1C9ftBHNcNW
-----END RSA PRIVATE KEY-----
"""
SMALL_PUBLIC = (
    "MHwwDQYJKoZIhvcNAQEBBQADawAwaAJhAJ7EIWg28Sh4Cm23rtnc+Rg6IxG2J/T7xEI0By58+7IPtEdAhw2QQwonZw"
    "df+EpC6yzxJf0g7pv651t5vm0WKcaRkiL3F/geFn2L2KpJVuMA5O4c3hjnI7Q3E3ytairUGwIDAQAB"
)


async def test_a_small_rsa_key_gets_policy() -> None:
    """RFC 8301 §3.2: RSA keys under 1024 bits do not make a signature valid."""
    key = ours.SigningKey.from_pem("example.org", "tiny", SMALL_KEY)
    record = f"v=DKIM1; k=rsa; p={SMALL_PUBLIC}"
    async with DNSStub({"tiny._domainkey.example.org TXT": txt(record)}).serving() as resolver:
        settings = config.load(env={}, overrides={"dns.resolvers": [resolver]})
        message = ours.sign(MESSAGE, [key], 1_790_000_000) + MESSAGE
        (result,) = await verify_dkim(message, make_resolver(settings, timeout=2))
    assert (result.result, result.key_bits) == ("policy", 768)
