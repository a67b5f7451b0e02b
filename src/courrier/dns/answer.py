"""The authoritative answer to a DNS query, sans-IO: query bytes in, response bytes out.

:class:`Authority` holds the zones we serve and answers from them alone (RFC 1034 §4.3.2):
authoritative answers with the AA bit, CNAMEs followed inside our zones, delegations with glue,
NXDOMAIN and NODATA with the SOA in the authority section for negative caching (RFC 2308 §3).
A name outside our zones is REFUSED: this is never a resolver, so never an open one. EDNS(0)
(RFC 6891) is answered with our payload size; over UDP an answer that does not fit is cut to its
header with TC set (RFC 1035 §4.2.1) and the client asks again over TCP. ``ANY`` gets one
RRset (RFC 8482 §4.1). Client subnet options are ignored (not echoed): answers do not depend on
who asks.
"""

from __future__ import annotations

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from courrier.dns.rendered import Rendered, shape
from courrier.dns.zone import Outcome, Zone

#: Our EDNS payload size (the DNS flag day 2020 value: no fragmentation).
PAYLOAD = 1232
#: Without EDNS a UDP message is at most 512 octets (RFC 1035 §2.3.4).
CLASSIC = 512
#: CNAMEs followed for one answer before giving up.
MAX_CHAIN = 8


class Authority:
    """The zones served, by origin; replaced whole when one changes."""

    def __init__(self, zones: list[Zone] | None = None) -> None:
        self.zones: dict[dns.name.Name, Zone] = {z.origin: z for z in zones or []}
        self.rendered = Rendered()

    def replace(self, zones: list[Zone]) -> None:
        """Serve ``zones`` from now on; the answers kept go when any of them changed."""
        new = {z.origin: z for z in zones}
        if new.keys() != self.zones.keys() or any(z is not self.zones[o] for o, z in new.items()):
            self.rendered.clear()
        self.zones = new

    def zone_for(self, name: dns.name.Name) -> Zone | None:
        """The zone with the longest origin that contains ``name``."""
        while True:
            zone = self.zones.get(name)
            if zone is not None:
                return zone
            if name == dns.name.root:
                return None
            name = name.parent()

    def respond(
        self, wire: bytes, *, tcp: bool = False, truncate: bool = False, end: int | None = None
    ) -> bytes | None:
        """The response to ``wire``; None when nothing is to be sent (a response, or too
        short to have a header to answer). ``truncate``: only the header and question, with
        TC set ("ask again over TCP"), as for a client over its rate limit. ``end``: where
        the question ends, when the caller found ``wire`` a plain query (rendered.plain_end)."""
        plain = None if truncate else shape(wire, tcp=tcp, payload=PAYLOAD, end=end)
        if plain is not None:
            kept = self.rendered.get(plain[0], wire, plain[1])
            if kept is not None:
                return kept
        answer = self._render(wire, tcp=tcp, truncate=truncate)
        if plain is not None and answer is not None:
            self.rendered.put(plain[0], answer)
        return answer

    def _render(self, wire: bytes, *, tcp: bool, truncate: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.message.BadEDNS:
            return _error_from_header(wire, dns.rcode.FORMERR)
        except dns.exception.DNSException:
            return _error_from_header(wire, dns.rcode.FORMERR)
        if query.flags & dns.flags.QR:
            return None  # never answer an answer (reflection loops)
        response = self._answer(query)
        limit = 65535 if tcp else udp_limit(query)
        if not truncate:
            try:
                return response.to_wire(max_size=limit)
            except dns.exception.TooBig:
                pass
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query, our_payload=PAYLOAD)
        response.flags &= ~dns.flags.RA
        if query.edns > 0:
            response.use_edns(0, payload=PAYLOAD)
            response.set_rcode(dns.rcode.BADVERS)  # RFC 6891 §6.1.3
            return response
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        zone = self.zone_for(question.name)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            response.set_rcode(dns.rcode.REFUSED)  # transfers are courrier.dns.transfer's business
            return response
        qtype: int = question.rdtype
        if qtype == dns.rdatatype.DS and question.name == zone.origin != dns.name.root:
            # RFC 4035 §3.1.4.1: the DS of a zone whose parent we serve too comes from the
            # parent; without it, the child's NODATA.
            zone = self.zone_for(zone.origin.parent()) or zone
        response.flags |= dns.flags.AA
        if qtype == dns.rdatatype.ANY:
            qtype = _any_type(zone, question.name)
        dnssec = query.edns >= 0 and bool(query.ednsflags & dns.flags.DO)
        if dnssec:
            response.ednsflags |= dns.flags.DO  # RFC 3225 §3: echoed
        _Resolution(self, response, dnssec).run(zone, question.name, qtype)
        return response


class _Resolution:
    """One answer being put together: the records, and with DNSSEC (the DO bit, RFC 3225)
    their signatures and the NSEC records that prove what is not there (RFC 4035 §3.1)."""

    def __init__(self, authority: Authority, response: dns.message.Message, dnssec: bool) -> None:
        self.authority = authority
        self.response = response
        self.dnssec = dnssec

    def add(
        self,
        section: list[dns.rrset.RRset],
        zone: Zone,
        rrset: dns.rrset.RRset,
        source: dns.name.Name | None = None,
    ) -> None:
        if rrset in section:
            return
        section.append(rrset)
        if self.dnssec:
            sig = zone.signature(rrset, source)
            if sig is not None:
                section.append(sig)

    def deny(self, zone: Zone, *names: dns.name.Name, exact: bool = False) -> None:
        """NSEC records proving ``names`` absent (covering them), or with ``exact`` the
        first one's types (the NSEC at it), in the authority section."""
        if not (self.dnssec and zone.signed):
            return
        for i, name in enumerate(names):
            nsec = zone.nsec_at(name) if exact and i == 0 else None
            self.add(self.response.authority, zone, nsec or zone.covering_nsec(name))

    def run(self, zone: Zone, qname: dns.name.Name, qtype: int) -> None:
        response = self.response
        for _ in range(MAX_CHAIN):
            found = zone.find(qname, qtype)
            if found.outcome in (Outcome.ANSWER, Outcome.CNAME):
                assert found.rrset is not None
                self.add(response.answer, zone, found.rrset, found.wildcard)
                if found.wildcard is not None:
                    self.deny(zone, qname)  # no closer match (RFC 4035 §3.1.3.3)
                if found.outcome is Outcome.ANSWER or qtype == dns.rdatatype.CNAME:
                    return
                target = found.rrset[0].target
                next_zone = self.authority.zone_for(target)
                if next_zone is None:
                    return  # the client follows it elsewhere
                zone, qname = next_zone, target
                continue
            if found.outcome is Outcome.DELEGATION:
                assert found.rrset is not None
                response.flags &= ~dns.flags.AA  # RFC 1034 §4.3.2 step 3b: a referral
                response.authority.append(found.rrset)
                ds = zone.rrsets.get((found.rrset.name, dns.rdatatype.DS))
                if ds is not None:
                    self.add(response.authority, zone, ds)  # RFC 4035 §3.1.4
                else:
                    self.deny(zone, found.rrset.name, exact=True)  # an insecure delegation
                response.additional.extend(found.glue)
                return
            soa = dns.rrset.from_rdata_list(zone.origin, zone.negative_ttl(), list(zone.soa))
            self.add(response.authority, zone, soa)
            if found.outcome is Outcome.NXDOMAIN:
                # RFC 6604 §3: after a CNAME too, the rcode tells about the last name.
                response.set_rcode(dns.rcode.NXDOMAIN)
                assert found.encloser is not None
                wildcard = dns.name.Name((b"*", *found.encloser.labels))
                self.deny(zone, qname, wildcard)  # RFC 4035 §3.1.3.2
            elif found.wildcard is not None:
                self.deny(zone, found.wildcard, qname, exact=True)  # RFC 4035 §3.1.3.4
            else:
                self.deny(zone, qname, exact=True)  # RFC 4035 §3.1.3.1
            return


def _any_type(zone: Zone, name: dns.name.Name) -> int:
    """RFC 8482 §4.1: one RRset of those at the name stands for all."""
    for owner, rdtype in zone.rrsets:
        if owner == name:
            return rdtype
    return dns.rdatatype.SOA if name == zone.origin else dns.rdatatype.A


def udp_limit(query: dns.message.Message) -> int:
    if query.edns < 0:
        return CLASSIC
    return max(CLASSIC, min(query.payload, PAYLOAD))


def _error_from_header(wire: bytes, rcode: int) -> bytes | None:
    """A bare error response echoing the query's id (RFC 1035 §4.1.1), if there is one."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x79) << 8 | (wire[3] & 0x10)  # QR, opcode, RD; CD
    return wire[:2] + (flags | rcode).to_bytes(2, "big") + bytes(8)
