"""DNSSEC: our zones signed, checked by the field's tools — ldns-verify-zone (ldnsutils) on the
zone as a secondary would transfer it, and unbound (Debian's validating resolver) asking our
server with our DS as its trust anchor, which must set the AD bit on answers and denials alike,
and refuse (SERVFAIL) when the anchor is not ours. Also sans-IO: what a DO query gets."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from courrier import provisioning
from courrier.dns.answer import Authority
from courrier.dns.signing import PERIOD, SigningKey, new_key
from courrier.dns.zone import Zone, rrset
from courrier.dns.zonedata import signed_zone
from courrier.store import Store
from tests.dns.serving import free_port, serving
from tests.support.server import Running

ORIGIN = dns.name.from_text("example.org")
NOW = 1_800_000_000


def key(origin: dns.name.Name = ORIGIN, algorithm: int = 13) -> SigningKey:
    return SigningKey.from_pem(origin, algorithm, new_key(algorithm))


def plain_zone() -> Zone:
    return Zone(
        ORIGIN,
        [
            rrset("example.org.", 3600, "SOA", "ns.example.org. h.example.org. 1 2 3 4 300"),
            rrset("example.org.", 3600, "NS", "ns.example.org."),
            rrset("ns.example.org.", 3600, "A", "192.0.2.1"),
            rrset("example.org.", 3600, "MX", "10 ns.example.org."),
            rrset("*.wild.example.org.", 3600, "TXT", '"any"'),
            rrset("www.example.org.", 3600, "CNAME", "ns.example.org."),
            rrset("deep.er.example.org.", 3600, "A", "192.0.2.9"),
            rrset("sub.example.org.", 3600, "NS", "ns.sub.example.org."),
            rrset("ns.sub.example.org.", 3600, "A", "192.0.2.53"),
            rrset("secure.example.org.", 3600, "NS", "ns.example.org."),
            rrset("secure.example.org.", 3600, "DS", "12345 13 2 " + "ab" * 32),
        ],
    )


def ask(authority: Authority, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    wire = authority.respond(query.to_wire(), tcp=True)
    assert wire is not None
    return dns.message.from_wire(wire)


def valid(response: dns.message.Message, zone_key: SigningKey, section: str) -> list[str]:
    """The RRsets of ``section`` that carry a valid signature by ``zone_key``."""
    keys = {zone_key.origin: dns.rrset.from_rdata_list(zone_key.origin, 3600, [zone_key.dnskey])}
    rrsets = getattr(response, section)
    ok = []
    for found in rrsets:
        if found.rdtype == dns.rdatatype.RRSIG:
            continue
        sig = next(
            (s for s in rrsets if s.rdtype == dns.rdatatype.RRSIG and s.name == found.name
             and s[0].type_covered == found.rdtype),
            None,
        )  # fmt: skip
        if sig is None:
            continue
        dns.dnssec.validate(found, sig, keys, now=NOW)  # raises if not valid
        ok.append(f"{found.name} {dns.rdatatype.to_text(found.rdtype)}")
    return ok


@pytest.fixture(scope="module")
def signed() -> tuple[Authority, SigningKey]:
    k = key()
    return Authority([signed_zone(plain_zone(), k, NOW, [])]), k


def test_answers_come_with_valid_signatures(signed: tuple[Authority, SigningKey]) -> None:
    authority, k = signed
    r = ask(authority, "example.org", "MX")
    assert r.ednsflags & dns.flags.DO  # RFC 3225 §3
    assert valid(r, k, "answer") == ["example.org. MX"]
    r = ask(authority, "example.org", "DNSKEY")
    assert valid(r, k, "answer") == ["example.org. DNSKEY"]
    assert r.answer[0][0] == k.dnskey
    plain = dns.message.from_wire(
        authority.respond(dns.message.make_query("example.org", "MX").to_wire()) or b""
    )
    assert [s.rdtype for s in plain.answer] == [dns.rdatatype.MX]  # no DO, no RRSIG


def test_nxdomain_is_proven_by_two_nsec(signed: tuple[Authority, SigningKey]) -> None:
    authority, k = signed
    r = ask(authority, "nobody.example.org", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    proven = valid(r, k, "authority")
    assert "example.org. SOA" in proven
    nsecs = [s for s in r.authority if s.rdtype == dns.rdatatype.NSEC]
    qname = dns.name.from_text("nobody.example.org")
    wildcard = dns.name.from_text("*.example.org")
    assert any(_covers(n, qname) for n in nsecs)  # no such name
    assert any(_covers(n, wildcard) for n in nsecs)  # and no wildcard to make one


def test_nodata_shows_the_types_at_the_name(signed: tuple[Authority, SigningKey]) -> None:
    authority, k = signed
    r = ask(authority, "ns.example.org", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    (nsec,) = [s for s in r.authority if s.rdtype == dns.rdatatype.NSEC]
    assert nsec.name == dns.name.from_text("ns.example.org")
    types = {t for window, bits in nsec[0].windows for t in _types(window, bits)}
    assert types == {dns.rdatatype.A, dns.rdatatype.RRSIG, dns.rdatatype.NSEC}
    assert "ns.example.org. NSEC" in valid(r, k, "authority")
    # An empty non-terminal (er.example.org, above deep.er): covered, not matched.
    r = ask(authority, "er.example.org", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    (nsec,) = [s for s in r.authority if s.rdtype == dns.rdatatype.NSEC]
    assert _covers(nsec, dns.name.from_text("er.example.org"))


def test_wildcard_answers_carry_the_wildcard_signature(
    signed: tuple[Authority, SigningKey],
) -> None:
    authority, _ = signed
    r = ask(authority, "x.wild.example.org", "TXT")
    sig = next(s for s in r.answer if s.rdtype == dns.rdatatype.RRSIG)
    assert sig.name == dns.name.from_text("x.wild.example.org")
    assert sig[0].labels == 3  # *.wild.example.org: the wildcard label is not counted
    nsecs = [s for s in r.authority if s.rdtype == dns.rdatatype.NSEC]
    assert any(_covers(n, dns.name.from_text("x.wild.example.org")) for n in nsecs)


def test_delegations_are_not_signed_but_their_ds_is(signed: tuple[Authority, SigningKey]) -> None:
    authority, k = signed
    r = ask(authority, "www.sub.example.org", "A")
    assert not r.flags & dns.flags.AA
    types = [s.rdtype for s in r.authority]
    assert dns.rdatatype.NS in types and dns.rdatatype.DS not in types
    # No DS: the NSEC at the cut says so (an insecure delegation, RFC 4035 §3.1.4).
    assert "sub.example.org. NSEC" in valid(r, k, "authority")
    assert [str(s.name) for s in r.additional] == ["ns.sub.example.org."]
    assert not any(s.rdtype == dns.rdatatype.RRSIG for s in r.additional)  # glue: unsigned
    r = ask(authority, "a.secure.example.org", "A")
    assert "secure.example.org. DS" in valid(r, k, "authority")


def test_signatures_are_renewed_each_period_and_stable_within_it() -> None:
    k = key()
    first = signed_zone(plain_zone(), k, NOW, [])
    again = signed_zone(plain_zone(), k, NOW + 3600, [])
    later = signed_zone(plain_zone(), k, NOW + PERIOD, [])
    mx = (ORIGIN, dns.rdatatype.MX)
    assert first.signatures[mx] == again.signatures[mx]  # nothing new: same zone
    old, new = first.signatures[mx][0], later.signatures[mx][0]
    assert new.expiration - old.expiration == PERIOD
    assert old.expiration - NOW >= 2 * PERIOD - 3600  # weeks ahead of expiry, always
    assert old.inception < NOW


def test_ed25519_zones_validate() -> None:
    k = key(algorithm=15)
    authority = Authority([signed_zone(plain_zone(), k, NOW, [])])
    r = ask(authority, "example.org", "MX")
    assert valid(r, k, "answer") == ["example.org. MX"]
    assert r.answer[1][0].algorithm == 15


def _covers(nsec: dns.rrset.RRset, name: dns.name.Name) -> bool:
    owner, nxt = nsec.name, nsec[0].next
    if owner < nxt:
        return owner < name < nxt
    return name > owner or name < nxt  # the last NSEC wraps round to the apex


def _types(window: int, bits: bytes) -> Iterator[int]:
    for i, byte in enumerate(bits):
        for bit in range(8):
            if byte & (0x80 >> bit):
                yield window * 256 + i * 8 + bit


# -- with the real tools, against the running server ---------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Running]:
    async with serving(tmp_path, host_addresses=["192.0.2.25"], rate_limit=0) as running:
        await provisioning.add_domain(running.store, "prenom.example.org")
        await provisioning.add_dns_record(
            running.store, running.server.settings, "example.org", "*.any", "TXT", '"wild"', 300
        )
        assert running.server.dns is not None
        await running.server.dns.refresh()
        yield running


async def ds_of(store: Store, running: Running, domain: str) -> str:
    assert running.server.dns is not None
    k = await running.server.dns.builder.signing_key(store, domain)
    return f"{domain}. 3600 IN DS {k.ds().to_text()}"


async def test_ldns_verify_zone_accepts_our_signed_zone(served: Running, tmp_path: Path) -> None:
    assert shutil.which("ldns-verify-zone"), "apt-get install ldnsutils (.ci/run)"
    assert shutil.which("dnssec-verify"), "apt-get install bind9-utils (.ci/run)"
    assert served.server.dns is not None
    for origin in ("example.org.", "prenom.example.org."):
        zone = served.server.dns.authority.zones[dns.name.from_text(origin)]
        assert zone.signed
        path = tmp_path / f"{origin}zone"
        path.write_text("".join(r.to_text() + "\n" for r in zone.records()))
        code, out = await run("ldns-verify-zone", "-V", "3", str(path))
        assert code == 0 and "Zone is verified and complete" in out, out
        # BIND's verifier too (-z: one combined key signs everything, as BIND's own CSK).
        code, out = await run("dnssec-verify", "-z", "-o", origin, str(path))
        assert code == 0 and "Zone fully signed" in out, out
        # A tampered record must fail, or the check proves nothing.
        if origin == "example.org.":
            path.write_text(path.read_text().replace("192.0.2.25", "192.0.2.66"))
            code, out = await run("ldns-verify-zone", str(path))
            assert code != 0 and "Bogus DNSSEC signature for mail.example.org." in out, out


async def run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


@contextlib.asynccontextmanager
async def unbound(tmp_path: Path, port: int, anchor: str) -> AsyncIterator[int]:
    """unbound on 127.0.0.1, asking our server for example.org with ``anchor`` trusted."""
    assert shutil.which("unbound"), "apt-get install unbound (.ci/run)"
    own = free_port("127.0.0.1")
    conf = tmp_path / "unbound.conf"
    (tmp_path / "anchor").write_text(anchor + "\n")
    conf.write_text(
        f"""server:
    interface: 127.0.0.1@{own}
    port: {own}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{tmp_path}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    do-ip6: no
    do-not-query-localhost: no
    module-config: "validator iterator"
    trust-anchor-file: "{tmp_path}/anchor"
    qname-minimisation: no
stub-zone:
    name: "example.org"
    stub-addr: 127.0.0.1@{port}
"""
    )
    process = await asyncio.create_subprocess_exec(
        "unbound", "-d", "-c", str(conf), stdout=asyncio.subprocess.DEVNULL
    )
    try:
        for _ in range(100):  # until it answers (dig waits up to 2 s a try)
            if "status:" in await dig(own, ".", "SOA"):
                break
        yield own
    finally:
        process.terminate()
        await process.wait()


async def dig(port: int, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=2", "+dnssec", *args,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    return out.decode()


async def test_a_validating_resolver_trusts_our_answers(served: Running, tmp_path: Path) -> None:
    anchor = await ds_of(served.store, served, "example.org")
    async with unbound(tmp_path, served.port("dns"), anchor) as port:
        for args in (
            ("example.org", "MX"),
            ("_dmarc.example.org", "TXT"),
            ("mail.example.org", "A"),
            ("_25._tcp.mail.example.org", "TLSA"),
            ("x.any.example.org", "TXT"),  # a wildcard
            ("prenom.example.org", "MX"),  # a hosted subdomain: signed via our DS
        ):
            out = await dig(port, *args)
            assert "status: NOERROR" in out and " ad" in out.split("flags:")[1].split(";")[0], out
            assert "ANSWER: 0" not in out, out
        for args in (("nobody.example.org", "A"), ("nobody.prenom.example.org", "A")):
            out = await dig(port, *args)
            assert "status: NXDOMAIN" in out and " ad" in out.split("flags:")[1].split(";")[0], out
        out = await dig(port, "mail.example.org", "MX")  # NODATA, proven
        assert "status: NOERROR" in out and " ad" in out.split("flags:")[1].split(";")[0], out


async def test_a_wrong_anchor_makes_the_resolver_refuse(served: Running, tmp_path: Path) -> None:
    other = key(dns.name.from_text("example.org"))
    anchor = f"example.org. 3600 IN DS {other.ds().to_text()}"
    async with unbound(tmp_path, served.port("dns"), anchor) as port:
        out = await dig(port, "example.org", "MX")
        assert "status: SERVFAIL" in out, out
