"""The authoritative answers, sans-IO: bytes of a query in, bytes of a response out, checked
with dnspython's parser. Exact answers, CNAMEs, wildcards, delegations with glue, NXDOMAIN and
NODATA with the SOA (RFC 2308), REFUSED outside our zones, EDNS and truncation; fuzzed input
never raises."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.dns.answer import Authority
from courrier.dns.zone import Zone, ZoneError, rrset

SOA = "ns.example.org. hostmaster.example.org. 2026112301 3600 900 1209600 300"


def zone() -> Zone:
    return Zone(
        rrset("example.org.", 3600, "SOA", SOA).name,
        [
            rrset("example.org.", 3600, "SOA", SOA),
            rrset("example.org.", 3600, "NS", "ns.example.org."),
            rrset("example.org.", 3600, "MX", "10 mail.example.org."),
            rrset("example.org.", 3600, "TXT", '"v=spf1 mx -all"'),
            rrset("mail.example.org.", 3600, "A", "192.0.2.25"),
            rrset("ns.example.org.", 3600, "A", "192.0.2.53"),
            rrset("autoconfig.example.org.", 3600, "CNAME", "mail.example.org."),
            rrset("outside.example.org.", 3600, "CNAME", "elsewhere.test."),
            rrset("_dmarc.deep.sub.example.org.", 3600, "TXT", '"v=DMARC1; p=none"'),
            rrset("*.wild.example.org.", 600, "A", "192.0.2.80"),
            rrset("prenom.example.org.", 3600, "NS", "ns.prenom.example.org."),
            rrset("ns.prenom.example.org.", 3600, "A", "192.0.2.99"),
            rrset("big.example.org.", 3600, "TXT", *(f'"{"x" * 200}{i}"' for i in range(12))),
        ],
    )


AUTHORITY = Authority([zone()])


def ask(name: str, rdtype: str, *, tcp: bool = False, **kwargs: object) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kwargs)  # type: ignore[arg-type]
    wire = AUTHORITY.respond(query.to_wire(), tcp=tcp)
    assert wire is not None
    response = dns.message.from_wire(wire)
    assert response.id == query.id and response.flags & dns.flags.QR
    return response


def texts(response: dns.message.Message, section: str = "answer") -> list[str]:
    return [r.to_text() for r in getattr(response, section)]


def test_an_exact_answer_is_authoritative() -> None:
    r = ask("example.org", "MX")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert not r.flags & dns.flags.RA  # never a resolver
    assert texts(r) == ["example.org. 3600 IN MX 10 mail.example.org."]


def test_a_cname_is_followed_inside_our_zones() -> None:
    r = ask("autoconfig.example.org", "A")
    assert texts(r) == [
        "autoconfig.example.org. 3600 IN CNAME mail.example.org.",
        "mail.example.org. 3600 IN A 192.0.2.25",
    ]
    r = ask("outside.example.org", "A")  # the client follows it elsewhere
    assert texts(r) == ["outside.example.org. 3600 IN CNAME elsewhere.test."]
    assert r.rcode() == dns.rcode.NOERROR


def test_nxdomain_and_nodata_carry_the_soa() -> None:
    r = ask("nobody.example.org", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA
    (soa,) = r.authority
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 300  # RFC 2308 §5
    r = ask("mail.example.org", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    # An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
    r = ask("sub.example.org", "TXT")
    assert (r.rcode(), r.answer) == (dns.rcode.NOERROR, [])


def test_wildcards_answer_for_names_below_them() -> None:
    r = ask("anything.wild.example.org", "A")
    assert texts(r) == ["anything.wild.example.org. 600 IN A 192.0.2.80"]
    r = ask("anything.wild.example.org", "MX")
    assert (r.rcode(), r.answer) == (dns.rcode.NOERROR, [])


def test_a_delegated_subdomain_gets_a_referral_with_glue() -> None:
    r = ask("www.prenom.example.org", "A")
    assert not r.flags & dns.flags.AA and r.answer == []
    assert texts(r, "authority") == ["prenom.example.org. 3600 IN NS ns.prenom.example.org."]
    assert texts(r, "additional") == ["ns.prenom.example.org. 3600 IN A 192.0.2.99"]


def test_names_outside_our_zones_are_refused() -> None:
    for name in ("example.com", "org", "."):
        r = ask(name, "A")
        assert r.rcode() == dns.rcode.REFUSED and r.answer == []


def test_edns_and_truncation() -> None:
    classic = ask("big.example.org", "TXT", use_edns=False)
    assert classic.flags & dns.flags.TC and classic.answer == []
    r = ask("big.example.org", "TXT", use_edns=0, payload=4096)
    assert r.flags & dns.flags.TC  # our payload is 1232
    assert r.edns == 0 and r.payload == 1232
    whole = ask("big.example.org", "TXT", tcp=True)
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == 12
    bad = dns.message.make_query("example.org", "A", use_edns=1)
    response = dns.message.from_wire(AUTHORITY.respond(bad.to_wire()) or b"")
    assert response.rcode() == dns.rcode.BADVERS


def test_other_opcodes_and_any() -> None:
    query = dns.message.make_query("example.org", "A")
    query.set_opcode(dns.opcode.STATUS)
    response = dns.message.from_wire(AUTHORITY.respond(query.to_wire()) or b"")
    assert response.rcode() == dns.rcode.NOTIMP
    r = ask("example.org", "ANY")  # RFC 8482: one RRset
    assert len(r.answer) == 1
    assert ask("example.org", "AXFR", tcp=True).rcode() == dns.rcode.REFUSED


def test_responses_and_garbage_get_no_answer_or_formerr() -> None:
    response = ask("example.org", "MX")
    assert AUTHORITY.respond(response.to_wire()) is None  # never answer an answer
    assert AUTHORITY.respond(b"\x01") is None
    formerr = AUTHORITY.respond(b"\x12\x34\x01\x00" + b"\x00\x01" + b"\x00" * 6 + b"\xff")
    assert formerr is not None and formerr[:2] == b"\x12\x34"
    assert formerr[3] & 0x0F == dns.rcode.FORMERR


def test_a_cname_beside_other_data_is_not_a_zone() -> None:
    with pytest.raises(ZoneError):
        Zone(
            rrset("example.org.", 1, "SOA", SOA).name,
            [
                rrset("example.org.", 1, "SOA", SOA),
                rrset("a.example.org.", 1, "CNAME", "b.example.org."),
                rrset("a.example.org.", 1, "TXT", '"x"'),
            ],
        )


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_get_an_answer_or_nothing(data: bytes) -> None:
    response = AUTHORITY.respond(data)
    if response is not None:
        assert response[:2] == data[:2]  # the query's id
        assert len(response) <= 1232  # never more than our UDP payload


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.from_regex(r"[a-z0-9*_-]{1,10}", fullmatch=True), min_size=0, max_size=5),
    st.sampled_from(["A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "SRV", "ANY", "DS"]),
)
def test_any_name_gets_a_sound_answer(labels: list[str], rdtype: str) -> None:
    name = ".".join([*labels, "example.org"])
    r = ask(name, rdtype)
    assert r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    if r.rcode() == dns.rcode.NXDOMAIN or not r.answer:
        assert r.authority  # a SOA, or a referral
