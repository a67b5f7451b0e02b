"""A zone as a BIND master file (RFC 1035 §5), for users who keep their own DNS.

``courrier dns export`` writes the zone we would serve (:func:`courrier.dns.zonedata.zone_of`),
unsigned: ``$ORIGIN`` and ``$TTL`` (RFC 2308 §4) first, then the SOA, then every RRset in
canonical order, owner names relative to the origin, record data with absolute names, and
above each RRset what its records are for. ``named-checkzone`` and ``dns.zone.from_text``
read it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dns.rdatatype

from courrier.dns.records import Record
from courrier.dns.zone import Zone

__all__ = ["zone_file"]


def zone_file(zone: Zone, records: Sequence[Record], header: Iterable[str] = ()) -> str:
    """The master file of ``zone``, commented with the ``why`` of ``records`` and opened with
    the ``header`` lines as comments."""
    whys: dict[tuple[str, str], list[str]] = {}
    for record in records:
        key = (record.name.lower().rstrip("."), record.type.upper())
        whys.setdefault(key, [])
        if record.why not in whys[key]:
            whys[key].append(record.why)
    lines = [f"; {line}" for line in header]
    lines += [f"$ORIGIN {zone.origin}", f"$TTL {zone.soa.ttl}"]
    for rrset in zone.records():
        owner = rrset.name.relativize(zone.origin).to_text()
        rdtype = dns.rdatatype.to_text(rrset.rdtype)
        name = rrset.name.to_text(omit_final_dot=True).lower()
        lines += [f"; {why}" for why in whys.get((name, rdtype), [])]
        lines += [
            f"{owner}\t{rrset.ttl}\tIN\t{rdtype}\t{rdata.to_text(origin=None, relativize=False)}"
            for rdata in rrset
        ]
    return "\n".join(lines) + "\n"
