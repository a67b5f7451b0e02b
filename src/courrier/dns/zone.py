"""One authoritative zone in memory: its records by owner name and type, ready to answer from.

A zone is built whole (from the records of a hosted domain, :mod:`courrier.dns.zonedata`) and
replaced whole when they change, never edited in place, so a lookup never sees half a change.
:meth:`Zone.find` is RFC 1034 §4.3.2's algorithm for one zone: the exact name, a CNAME at it,
a delegation on the way down (NS below the apex, with glue), a wildcard at the closest
encloser (RFC 4592), or the proof of absence (NXDOMAIN or NODATA, told with the SOA).
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Key = tuple[dns.name.Name, int]


class Outcome(enum.Enum):
    ANSWER = "answer"
    CNAME = "cname"
    DELEGATION = "delegation"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"


@dataclass(slots=True)
class Found:
    outcome: Outcome
    #: The answer (or the CNAME), or the delegation's NS set.
    rrset: dns.rrset.RRset | None = None
    #: Addresses of in-zone name servers of a delegation (glue, RFC 1034 §4.2.1).
    glue: list[dns.rrset.RRset] = field(default_factory=list)
    #: The wildcard an answer or NODATA comes from (RFC 4592), whose signatures prove it.
    wildcard: dns.name.Name | None = None
    #: For NXDOMAIN: the closest encloser, whose wildcard child the denial must rule out.
    encloser: dns.name.Name | None = None


class ZoneError(ValueError):
    """The records do not make a valid zone (a CNAME beside other data, no SOA…)."""


class Zone:
    def __init__(
        self,
        origin: dns.name.Name,
        rrsets: Iterable[dns.rrset.RRset],
        signatures: Iterable[dns.rrset.RRset] = (),
    ) -> None:
        self.origin = origin
        self.rrsets: dict[Key, dns.rrset.RRset] = {}
        #: The RRSIGs of a signed zone (DNSSEC), by the name and type they cover.
        self.signatures: dict[Key, dns.rrset.RRset] = {
            (sig.name, sig.covers): sig for sig in signatures
        }
        #: Every owner name, and every name between an owner and the apex (empty
        #: non-terminals exist too: RFC 8020, NODATA rather than NXDOMAIN).
        self.names: set[dns.name.Name] = {origin}
        for rrset in rrsets:
            if not rrset.name.is_subdomain(origin):
                raise ZoneError(f"{rrset.name} is outside the zone {origin}")
            key = (rrset.name, rrset.rdtype)
            if key in self.rrsets:
                old = self.rrsets[key]
                rrset = dns.rrset.from_rdata_list(
                    rrset.name, min(old.ttl, rrset.ttl), [*old, *rrset]
                )
            self.rrsets[key] = rrset
            name = rrset.name
            while name != origin:
                self.names.add(name)
                name = name.parent()
        soa = self.rrsets.get((origin, dns.rdatatype.SOA))
        if soa is None:
            raise ZoneError(f"the zone {origin} has no SOA record")
        self.soa: dns.rrset.RRset = soa
        types: dict[dns.name.Name, set[int]] = {}
        for name, rdtype in self.rrsets:
            types.setdefault(name, set()).add(rdtype)
        for name, present in types.items():
            # RFC 1034 §3.6.2: a CNAME is alone at its name (but for DNSSEC's NSEC and
            # RRSIG, RFC 4035 §2.5).
            if dns.rdatatype.CNAME in present and present - {
                dns.rdatatype.CNAME,
                dns.rdatatype.NSEC,
            }:
                raise ZoneError(f"{name} has a CNAME and other records")
        #: Owners of the NSEC chain of a signed zone, in canonical order.
        self._nsec_owners = sorted(n for n, t in self.rrsets if t == dns.rdatatype.NSEC)
        #: Names below the apex with NS records: the zone's cuts (delegated subdomains).
        self.cuts = {
            name for name, rdtype in self.rrsets if rdtype == dns.rdatatype.NS and name != origin
        }

    @property
    def signed(self) -> bool:
        return bool(self.signatures)

    def records(self) -> Iterator[dns.rrset.RRset]:
        """Every RRset of the zone with its signatures, the SOA first (a zone transfer's
        content, RFC 5936 §2.2, less the closing SOA), the rest in canonical order."""
        apex_soa = (self.origin, dns.rdatatype.SOA)
        others = sorted(key for key in self.rrsets if key != apex_soa)
        for key in [apex_soa, *others]:
            yield self.rrsets[key]
            sig = self.signatures.get(key)
            if sig is not None:
                yield sig

    @property
    def serial(self) -> int:
        return int(self.soa[0].serial)

    def negative_ttl(self) -> int:
        """RFC 2308 §5: the SOA's own TTL or its minimum, whichever is less."""
        return min(self.soa.ttl, int(self.soa[0].minimum))

    def find(self, qname: dns.name.Name, qtype: int) -> Found:
        cut = self._cut_above(qname)
        if cut is not None and not (cut == qname and qtype == dns.rdatatype.DS):
            ns = self.rrsets[(cut, dns.rdatatype.NS)]
            return Found(Outcome.DELEGATION, ns, self._glue(ns))
        exact = self._at(qname, qtype)
        if exact is not None:
            return exact
        if qname in self.names:
            return Found(Outcome.NODATA)
        # RFC 4592 §3.3.1: the wildcard child of the closest encloser.
        encloser = qname.parent()
        while encloser not in self.names:
            encloser = encloser.parent()
        wildcard = dns.name.Name((b"*", *encloser.labels))
        if wildcard in self.names:
            found = self._at(wildcard, qtype)
            if found is None:
                return Found(Outcome.NODATA, wildcard=wildcard)
            assert found.rrset is not None
            synthesized = dns.rrset.from_rdata_list(qname, found.rrset.ttl, list(found.rrset))
            return Found(found.outcome, synthesized, wildcard=wildcard)
        return Found(Outcome.NXDOMAIN, encloser=encloser)

    def signature(
        self, rrset: dns.rrset.RRset, source: dns.name.Name | None = None
    ) -> dns.rrset.RRset | None:
        """The RRSIG of ``rrset`` (of the wildcard ``source`` it was made from, renamed:
        RFC 4035 §3.1.3.3), at the TTL the RRset is given with."""
        sig = self.signatures.get((source or rrset.name, rrset.rdtype))
        if sig is None:
            return None
        return dns.rrset.from_rdata_list(rrset.name, rrset.ttl, list(sig))

    def nsec_at(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        return self.rrsets.get((name, dns.rdatatype.NSEC))

    def covering_nsec(self, name: dns.name.Name) -> dns.rrset.RRset:
        """The NSEC whose owner comes last before ``name`` in canonical order (RFC 4034 §6.1):
        it proves that nothing exists between its owner and its next name."""
        i = bisect.bisect_right(self._nsec_owners, name) - 1
        return self.rrsets[(self._nsec_owners[i], dns.rdatatype.NSEC)]

    def _at(self, name: dns.name.Name, qtype: int) -> Found | None:
        rrset = self.rrsets.get((name, qtype))
        if rrset is not None:
            return Found(Outcome.ANSWER, rrset)
        cname = self.rrsets.get((name, dns.rdatatype.CNAME))
        if cname is not None:
            return Found(Outcome.CNAME, cname)
        return None

    def _cut_above(self, qname: dns.name.Name) -> dns.name.Name | None:
        """The highest delegation point at or above ``qname``, if any."""
        if not self.cuts:
            return None
        found = None
        name = qname
        while name != self.origin and name.is_subdomain(self.origin):
            if name in self.cuts:
                found = name
            name = name.parent()
        return found

    def _glue(self, ns: dns.rrset.RRset) -> list[dns.rrset.RRset]:
        glue = []
        for rdata in ns:
            target = rdata.target
            if target.is_subdomain(self.origin):
                for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    found = self.rrsets.get((target, rdtype))
                    if found is not None:
                        glue.append(found)
        return glue


def rrset(name: str, ttl: int, rdtype: str, *values: str) -> dns.rrset.RRset:
    """An IN rrset from zone-file text."""
    return dns.rrset.from_text_list(
        dns.name.from_text(name), ttl, dns.rdataclass.IN, rdtype, list(values)
    )
