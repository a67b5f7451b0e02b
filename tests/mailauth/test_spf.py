"""SPF checks (RFC 7208) through our resolver and a DNS stand-in on loopback: the results, the
HELO identity, the processing limits, DNS failures, the event loop kept free, resolvers kept
apart, and the Received-SPF field. The RFC's own test suite runs in test_spf_suite.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import dns.asyncresolver
import pytest
import spf

from courrier import config
from courrier.dns.resolver import make_resolver
from courrier.mailauth import spf as ours
from courrier.mailauth.spf import SPFResult, check_spf
from tests.support.spfzone import ZoneServer

CLIENT = "192.0.2.1"

ZONE: dict[str, list[Any]] = {
    "pass.test": [{"TXT": f"v=spf1 ip4:{CLIENT} -all"}],
    "fail.test": [{"TXT": "v=spf1 ip4:192.0.2.99 -all"}],
    "softfail.test": [{"TXT": "v=spf1 ~all"}],
    "neutral.test": [{"TXT": "v=spf1 ?all"}],
    "nospf.test": [{"TXT": "not an spf record"}, {"MX": [10, "mx.nospf.test"]}],
    "mx.a.test": [{"TXT": "v=spf1 a -all"}, {"A": CLIENT}],
    "exp.test": [{"TXT": "v=spf1 -all exp=why.exp.test"}],
    "why.exp.test": [{"TXT": "%{i} may not send for %{d}"}],
    "broken.test": [{"TXT": "v=spf1 ip4:192.0.2.1 moo -all"}],
    "six.test": [{"TXT": "v=spf1 ip6:2001:db8::/32 -all"}],
}


def resolver_for(address: str, timeout: float = 3.0) -> dns.asyncresolver.Resolver:
    return make_resolver(
        config.load(env={}, overrides={"dns.resolvers": [address]}), timeout=timeout
    )


@contextlib.contextmanager
def serving(zonedata: dict[str, list[Any]], **kwargs: Any) -> Iterator[ZoneServer]:
    server = ZoneServer(zonedata, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def zone() -> Iterator[tuple[ZoneServer, dns.asyncresolver.Resolver]]:
    server = ZoneServer(ZONE)
    with server.serving() as address:
        yield server, resolver_for(address)


async def mailfrom(resolver: dns.asyncresolver.Resolver, address: str, ip: str = CLIENT) -> str:
    result = await check_spf(resolver, client_ip=ip, mail_from=address, helo="mx.a.test")
    return result.result


def test_pyspf_looks_names_up_through_us() -> None:
    assert spf.DNSLookup is ours._lookup
    # The RFC's limits, which pyspf enforces in strict mode (RFC 7208 §4.6.4).
    assert (spf.MAX_LOOKUP, spf.MAX_VOID_LOOKUPS) == (10, 2)
    # Outside check_spf there is no resolver to ask: a temporary error, not a system lookup.
    query = spf.query(i=CLIENT, s="a@pass.test", h="mx.a.test")
    assert query.check()[0] == "temperror"


async def test_results(zone: tuple[ZoneServer, dns.asyncresolver.Resolver]) -> None:
    _, resolver = zone
    assert await mailfrom(resolver, "a@pass.test") == "pass"
    assert await mailfrom(resolver, "a@fail.test") == "fail"
    assert await mailfrom(resolver, "a@softfail.test") == "softfail"
    assert await mailfrom(resolver, "a@neutral.test") == "neutral"
    assert await mailfrom(resolver, "a@nospf.test") == "none"
    assert await mailfrom(resolver, "a@nowhere.test") == "none"  # §4.3: no such domain
    assert await mailfrom(resolver, "a@broken.test") == "permerror"
    assert await mailfrom(resolver, "a@six.test", ip="2001:db8::25") == "pass"
    assert await mailfrom(resolver, "a@six.test") == "fail"


async def test_result_fields_and_explanation(
    zone: tuple[ZoneServer, dns.asyncresolver.Resolver],
) -> None:
    _, resolver = zone
    result = await check_spf(resolver, client_ip=CLIENT, mail_from="Ann@exp.test", helo="x.test")
    # §6.2: the explanation is the domain's exp= text, macros expanded.
    assert result == SPFResult(
        "fail", "mailfrom", "exp.test", "Ann@exp.test", f"{CLIENT} may not send for exp.test"
    )
    result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@pass.test", helo="x.test")
    assert result == SPFResult(
        "pass", "mailfrom", "pass.test", "a@pass.test", spf.EXPLANATIONS["pass"]
    )
    none = await check_spf(resolver, client_ip=CLIENT, mail_from="a@nospf.test", helo="x.test")
    assert (none.result, none.explanation) == ("none", "")
    broken = await check_spf(resolver, client_ip=CLIENT, mail_from="a@broken.test", helo="x")
    assert broken.explanation == "SPF Permanent Error: Unknown mechanism found: moo"


async def test_null_sender_checks_the_helo_name(
    zone: tuple[ZoneServer, dns.asyncresolver.Resolver],
) -> None:
    server, resolver = zone
    result = await check_spf(resolver, client_ip=CLIENT, mail_from="", helo="mx.a.test")
    # §2.4: the HELO identity, as "postmaster@" + the HELO name.
    assert result == SPFResult(
        "pass", "helo", "mx.a.test", "postmaster@mx.a.test", spf.EXPLANATIONS["pass"]
    )
    result = await check_spf(resolver, client_ip="192.0.2.7", mail_from="", helo="mx.a.test")
    assert (result.result, result.identity) == ("fail", "helo")
    # A HELO name is not looked at when there is a MAIL FROM address.
    result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@fail.test", helo="mx.a.test")
    assert (result.result, result.identity, result.domain) == ("fail", "mailfrom", "fail.test")
    # An address literal is no domain name: nothing to check (§2.3), nothing asked.
    server.queries.clear()
    for literal in ("[192.0.2.1]", "[IPv6:2001:db8::1]", "192.0.2.1", ""):
        result = await check_spf(resolver, client_ip=CLIENT, mail_from="", helo=literal)
        assert result == SPFResult("none", "helo", literal, f"postmaster@{literal}", "")
    # Nor is a MAIL FROM domain that is an address literal (§4.3: malformed).
    result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@[192.0.2.1]", helo="h")
    assert result == SPFResult("none", "mailfrom", "[192.0.2.1]", "a@[192.0.2.1]", "")
    assert server.queries == []


def includes(count: int) -> dict[str, list[Any]]:
    names = [f"i{n}.limit.test" for n in range(count)]
    terms = " ".join(f"include:{name}" for name in names)
    record = f"v=spf1 {terms} ip4:{CLIENT} -all"
    # More than 255 bytes: several strings, joined (RFC 7208 §3.3).
    strings = [record[i : i + 200] for i in range(0, len(record), 200)]
    zonedata: dict[str, list[Any]] = {"limit.test": [{"TXT": strings}]}
    zonedata.update({name: [{"TXT": "v=spf1 ?all"}] for name in names})
    return zonedata


@pytest.mark.parametrize(("count", "expected"), [(10, "pass"), (11, "permerror")])
async def test_at_most_ten_dns_querying_terms(count: int, expected: str) -> None:
    # RFC 7208 §4.6.4: more than 10 terms that query the DNS is a permerror.
    with serving(includes(count)) as server:
        resolver = resolver_for(server.address)
        result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@limit.test", helo="x")
    assert result.result == expected, result
    if expected == "permerror":
        assert "Too many DNS lookups" in result.explanation


@pytest.mark.parametrize(("count", "expected"), [(2, "pass"), (3, "permerror")])
async def test_at_most_two_void_lookups(count: int, expected: str) -> None:
    # RFC 7208 §4.6.4: more than 2 lookups answered NXDOMAIN or with no records: permerror.
    # Here: names that do not exist, and one that does but has no address.
    voids = ["a:gone1.void.test", "a:empty.void.test", "a:gone2.void.test"][:count]
    record = f"v=spf1 {' '.join(voids)} ip4:{CLIENT} -all"
    zonedata = {"void.test": [{"TXT": record}], "empty.void.test": [{"MX": [10, "x.test"]}]}
    with serving(zonedata) as server:
        resolver = resolver_for(server.address)
        result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@void.test", helo="x")
    assert result.result == expected, result
    if expected == "permerror":
        assert "Void lookup limit of 2 exceeded" in result.explanation


async def test_servfail_is_a_temperror() -> None:
    # §4.4: an RCODE other than 0 or 3 on the record lookup: temperror.
    with serving(ZONE, failing=["pass.test"]) as server:
        resolver = resolver_for(server.address)
        result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@pass.test", helo="x")
    assert result.result == "temperror"
    assert result.explanation == (
        "SPF Temporary Error: DNS error looking up TXT pass.test: SERVFAIL"
    )


async def test_timeout_is_a_temperror() -> None:
    zonedata = {"slow.test": ["TIMEOUT"]}
    with serving(zonedata) as server:
        resolver = resolver_for(server.address, 0.3)
        result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@slow.test", helo="x")
    assert result.result == "temperror"
    assert result.explanation == "SPF Temporary Error: DNS timeout looking up TXT slow.test"


async def test_large_answers_come_over_tcp() -> None:
    # Answers larger than the EDNS buffer (1232 bytes) come truncated over UDP, then by TCP.
    padding = [{"TXT": f"filler {n} " + "x" * 200} for n in range(8)]
    zonedata = {"big.test": [*padding, {"TXT": f"v=spf1 ip4:{CLIENT} -all"}]}
    with serving(zonedata) as server:
        resolver = resolver_for(server.address)
        result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@big.test", helo="x")
    assert result.result == "pass"
    assert server.tcp_queries == 1


async def test_the_event_loop_runs_while_a_check_waits_on_the_dns() -> None:
    zonedata = {
        "slow.test": [{"TXT": "v=spf1 a:host.slow.test -all"}],
        "host.slow.test": [{"A": CLIENT}],
    }
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    with serving(zonedata, delay=0.5) as server:
        resolver = resolver_for(server.address)
        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        result = await check_spf(resolver, client_ip=CLIENT, mail_from="a@slow.test", helo="x")
        elapsed = time.monotonic() - started
        ticker.cancel()
    assert result.result == "pass"
    assert elapsed >= 1.0  # two lookups, each answered after 0.5 s
    assert ticks >= 20  # the loop ticked on through both (~100 ticks if undisturbed)


async def test_concurrent_checks_use_their_own_resolvers() -> None:
    # The same domain, two different records, two resolvers: each check sees its own. Answers
    # are slowed down so that the checks overlap.
    allows = {"both.test": [{"TXT": f"v=spf1 ip4:{CLIENT} -all"}]}
    denies = {"both.test": [{"TXT": f"v=spf1 -ip4:{CLIENT} +all"}]}
    with serving(allows, delay=0.2) as one, serving(denies, delay=0.2) as other:
        resolvers = [resolver_for(server.address) for server in (one, other)] * 4
        started = time.monotonic()
        results = await asyncio.gather(
            *(
                check_spf(resolver, client_ip=CLIENT, mail_from="a@both.test", helo="x")
                for resolver in resolvers
            )
        )
        elapsed = time.monotonic() - started
    assert [r.result for r in results] == ["pass", "fail"] * 4
    assert elapsed < 1.0  # side by side (one after the other: 8 × 0.2 s)
    assert len(one.queries) == len(other.queries) == 4


async def test_lookups_share_the_resolver_cache(
    zone: tuple[ZoneServer, dns.asyncresolver.Resolver],
) -> None:
    server, resolver = zone
    for _ in range(3):
        assert await mailfrom(resolver, "a@pass.test") == "pass"
    assert server.queries.count(("pass.test", "TXT")) == 1


# --- Received-SPF (RFC 7208 §9.1)


def test_received_spf_as_in_the_example() -> None:
    result = SPFResult("pass", "mailfrom", "example.org", "a@example.org", "sender SPF authorized")
    field = result.received_spf(client_ip="127.0.0.2", helo="mx.a.test", receiver="mx.b.test")
    assert field == (
        "Received-SPF: pass (mx.b.test: domain of a@example.org designates 127.0.0.2 as\r\n"
        '\tpermitted sender) client-ip=127.0.0.2; envelope-from="a@example.org";\r\n'
        "\thelo=mx.a.test; receiver=mx.b.test; identity=mailfrom\r\n"
    )
    assert unfold(field) == (
        "Received-SPF: pass (mx.b.test: domain of a@example.org designates 127.0.0.2 as"
        ' permitted sender) client-ip=127.0.0.2; envelope-from="a@example.org";'
        " helo=mx.a.test; receiver=mx.b.test; identity=mailfrom"
    )


def unfold(field: str) -> str:
    assert field.endswith("\r\n")
    assert all(len(line) <= 78 for line in field[:-2].split("\r\n"))
    return field[:-2].replace("\r\n\t", " ")


@pytest.mark.parametrize(
    ("result", "comment"),
    [
        ("pass", "domain of a@example.org designates 192.0.2.1 as permitted sender"),
        ("fail", "domain of a@example.org does not designate 192.0.2.1 as permitted sender"),
        (
            "softfail",
            "domain of transitioning a@example.org does not designate 192.0.2.1 as"
            " permitted sender",
        ),
        ("neutral", "192.0.2.1 is neither permitted nor denied by domain of a@example.org"),
        ("none", "domain of a@example.org does not designate permitted sender hosts"),
    ],
)
def test_received_spf_comments(result: str, comment: str) -> None:
    spf_result = SPFResult(result, "mailfrom", "example.org", "a@example.org", "x")
    field = unfold(spf_result.received_spf(client_ip=CLIENT, helo="h.test", receiver="r.test"))
    assert field.startswith(f"Received-SPF: {result} (r.test: {comment}) client-ip=")
    assert "problem=" not in field


def test_received_spf_errors_helo_identity_and_quoting() -> None:
    result = SPFResult(
        "permerror",
        "helo",
        "[bad]",
        "postmaster@[bad]",
        'SPF Permanent Error: Unknown mechanism found: moo (x\\y) "q"\r\n',
    )
    field = unfold(result.received_spf(client_ip="2001:db8::1", helo="[bad]", receiver="r.test"))
    assert field == (
        "Received-SPF: permerror (r.test: permanent error in processing domain of [bad])"
        ' client-ip="2001:db8::1"; helo="[bad]"; receiver=r.test;'
        ' problem="SPF Permanent Error: Unknown mechanism found: moo (x\\\\y) \\"q\\"";'
        " identity=helo"
    )
    # Parentheses in a comment are quoted-pairs (RFC 5322 §3.2.2).
    odd = SPFResult("fail", "mailfrom", "b.test", "a(b)@b.test", "")
    field = unfold(odd.received_spf(client_ip=CLIENT, helo="h", receiver="r"))
    assert field.startswith(r"Received-SPF: fail (r: domain of a\(b\)@b.test does not")
    assert 'envelope-from="a(b)@b.test";' in field
