"""Routing: MX by preference, implicit MX, null MX, addresses, failures, over a real DNS
stand-in on loopback."""

from __future__ import annotations

import pytest

from courrier import config
from courrier.dns.resolver import make_resolver
from courrier.queue.routing import Host, LookupFailed, NoMail, route
from tests.support.dnsstub import DNSStub

RECORDS = {
    "b.test MX": ["20 backup.b.test.", "10 mx1.b.test.", "10 mx2.b.test."],
    "mx1.b.test A": ["127.0.0.3"],
    "mx2.b.test A": ["127.0.0.4"],
    "mx2.b.test AAAA": ["::1"],
    "backup.b.test A": ["127.0.0.5"],
    "plain.test A": ["127.0.0.6"],
    "nullmx.test MX": ["0 ."],
    "half.test MX": ["10 broken.half.test.", "20 ok.half.test."],
    "ok.half.test A": ["127.0.0.7"],
    "noaddr.test MX": ["10 nowhere.noaddr.test."],
}


async def routes(domain: str, stub: DNSStub) -> list[Host]:
    async with stub.serving() as resolver_address:
        settings = config.load(env={}, overrides={"dns.resolvers": [resolver_address]})
        return await route(domain, make_resolver(settings, timeout=3))


async def test_mx_by_preference_equal_ones_shuffled_ipv6_first() -> None:
    stub = DNSStub(RECORDS)
    orders = set()
    for _ in range(12):
        hosts = await routes("b.test", stub)
        assert hosts[-1] == Host("backup.b.test", ("127.0.0.5",))
        assert {h.name for h in hosts[:2]} == {"mx1.b.test", "mx2.b.test"}
        orders.add(tuple(h.name for h in hosts[:2]))
        assert next(h for h in hosts if h.name == "mx2.b.test").addresses == ("::1", "127.0.0.4")
    assert len(orders) == 2  # random order among equals (RFC 5321 §5.1)


async def test_implicit_mx_and_domain_literals() -> None:
    assert await routes("plain.test", DNSStub(RECORDS)) == [
        Host("plain.test", ("127.0.0.6",), implicit=True)
    ]
    assert await routes("[127.0.0.9]", DNSStub({})) == [Host("[127.0.0.9]", ("127.0.0.9",))]
    assert await routes("[IPv6:::1]", DNSStub({})) == [Host("[IPv6:::1]", ("::1",))]


async def test_what_is_final_and_what_is_tried_again() -> None:
    with pytest.raises(NoMail) as null:
        await routes("nullmx.test", DNSStub(RECORDS))
    assert null.value.code == "5.1.10"  # RFC 7505 §4.2
    with pytest.raises(NoMail) as missing:
        await routes("nowhere.test", DNSStub(RECORDS))
    assert missing.value.code == "5.1.2"
    with pytest.raises(NoMail):
        await routes("noaddr.test", DNSStub(RECORDS))
    with pytest.raises(LookupFailed):
        await routes("b.test", DNSStub(RECORDS, failing={"b.test"}))
    # One MX host failing to resolve: the others still count.
    hosts = await routes("half.test", DNSStub(RECORDS, failing={"broken.half.test"}))
    assert hosts == [Host("ok.half.test", ("127.0.0.7",))]
