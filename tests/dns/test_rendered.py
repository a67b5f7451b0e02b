"""Answers kept in wire format: a kept answer must be what the long way gives for that query
(its id, its letter case, its flags, EDNS and size), and must go when the zones change."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.dns.answer import Authority
from courrier.dns.signing import SigningKey, new_key
from courrier.dns.zone import Zone, rrset
from courrier.dns.zonedata import signed_zone

ORIGIN = dns.name.from_text("example.org")


def zone(mx: str = "10 mail.example.org.") -> Zone:
    return Zone(
        ORIGIN,
        [
            rrset("example.org.", 3600, "SOA", "mail.example.org. h.example.org. 1 2 3 4 300"),
            rrset("example.org.", 3600, "NS", "mail.example.org."),
            rrset("example.org.", 3600, "MX", mx),
            rrset("example.org.", 3600, "TXT", '"v=spf1 mx -all"', '"' + "x" * 250 + '"'),
            rrset("mail.example.org.", 3600, "A", "192.0.2.25"),
            rrset("big.example.org.", 3600, "TXT", *[f'"{i:03} {"y" * 200}"' for i in range(8)]),
            rrset("www.example.org.", 3600, "CNAME", "mail.example.org."),
        ],
    )


KEY = SigningKey.from_pem(ORIGIN, 13, new_key(13))
ZONES = [signed_zone(zone(), KEY, 1_800_000_000, [])]

names = st.sampled_from(
    ["example.org", "mail.example.org", "big.example.org", "www.example.org", "nx.example.org",
     "example.com", "a.b.mail.example.org"]
).flatmap(
    lambda n: st.lists(st.booleans(), min_size=len(n), max_size=len(n)).map(
        lambda ups: "".join(c.upper() if u else c for c, u in zip(n, ups, strict=True))
    )
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    names,
    st.sampled_from(["A", "MX", "TXT", "SOA", "NS", "DNSKEY", "ANY", "AAAA", "CNAME"]),
    st.integers(0, 0xFFFF),
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, 512, 1232, 4096, 600]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_a_kept_answer_is_the_answer(
    name: str,
    rdtype: str,
    qid: int,
    rd: bool,
    cd: bool,
    payload: int | None,
    do: bool,
    cookie: bool,
    tcp: bool,
) -> None:
    options = [dns.edns.GenericOption(dns.edns.COOKIE, b"\x01" * 8)] if cookie else []
    query = dns.message.make_query(
        name,
        rdtype,
        use_edns=0 if payload else False,
        payload=payload or 512,
        want_dnssec=do and bool(payload),
        options=options if payload else None,
    )
    query.id = qid
    query.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0)
    wire = query.to_wire()
    warm = Authority(ZONES)
    warm.respond(wire, tcp=tcp)  # kept, by another id and letter case it may not share
    other = dns.message.make_query(name.lower(), rdtype)
    warm.respond(other.to_wire(), tcp=tcp)
    kept = warm.respond(wire, tcp=tcp)
    fresh = Authority(ZONES)._render(wire, tcp=tcp, truncate=False)
    assert kept is not None and fresh is not None
    # The same bytes but for the order of records in a set (dnspython shuffles them).
    assert len(kept) == len(fresh) and kept[:12] == fresh[:12]
    assert dns.message.from_wire(kept) == dns.message.from_wire(fresh)
    assert dns.message.from_wire(kept).question[0].name.to_text() == name + "."


def test_the_askers_letter_case_and_id_come_back() -> None:
    authority = Authority(ZONES)
    authority.respond(dns.message.make_query("example.org", "MX").to_wire())
    query = dns.message.make_query("ExAmPlE.oRg", "MX")
    wire = authority.respond(query.to_wire())
    assert wire is not None
    response = dns.message.from_wire(wire)
    assert response.id == query.id
    assert response.question[0].name.to_text() == "ExAmPlE.oRg."  # RFC 4343 §4.1, 0x20
    assert response.answer[0][0].to_text().lower() == "10 mail.example.org."


def test_answers_kept_go_when_a_zone_changes() -> None:
    authority = Authority([zone()])
    query = dns.message.make_query("example.org", "MX").to_wire()
    assert b"mail" in (authority.respond(query) or b"")
    authority.replace([zone()])  # another build, whatever its content
    authority.replace([zone("20 backup.example.net.")])
    response = dns.message.from_wire(authority.respond(query) or b"")
    assert response.answer[0][0].to_text() == "20 backup.example.net."


def test_unusual_queries_are_answered_the_long_way() -> None:
    authority = Authority(ZONES)
    query = dns.message.make_query("example.org", "MX")
    wire = query.to_wire()
    authority.respond(wire)
    for odd in (wire + b"\x00", wire[:-1]):
        out = authority.respond(odd)
        assert out is not None
        assert dns.message.from_wire(out).rcode() != 0 or out != authority.respond(wire)
    assert len(authority.rendered._kept) == 1  # neither was kept
