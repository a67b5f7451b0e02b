"""Checks of a record an admin adds to a zone we serve, sans-IO: the record and the zone's
other records in, the record in canonical form out, or :class:`InvalidRecord` with the reason.

What this module owns: the DNS rules a hand-made record must keep — its name inside the zone,
a type an admin may add (not the ones signing and the SOA make), a value that parses as that
type in zone-file syntax (a TXT string longer than 255 octets or unbalanced quotes, an A
that is not an IPv4 address…), a TTL in range, a CNAME alone at its name and never at the
apex, an MX or SRV that names a host (not an IP literal nor a CNAME). Policy records (SPF,
DMARC) are checked for meaning by the caller (``courrier.provisioning``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.txtbase

from courrier.dns.records import Record

#: Types an admin may add. SOA, NS at the apex, DNSKEY, RRSIG, NSEC are the server's own.
ALLOWED = (
    *("A", "AAAA", "CAA", "CNAME", "DS", "HTTPS", "MX", "NS", "SRV", "SSHFP", "SVCB", "TLSA"),
    "TXT",
)
#: A host name's label: letters, digits and hyphens (RFC 1123 §2.1, RFC 5321 §2.3.5).
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
#: RFC 2181 §8: a TTL is at most 2^31 - 1.
MAX_TTL = 2**31 - 1


class InvalidRecord(ValueError):
    """The record cannot go into the zone; the message says why."""


def check(
    zone: str, name: str, type_: str, value: str, ttl: int, others: Sequence[Record]
) -> Record:
    """``name`` (``@``, relative to ``zone`` or absolute with a final dot) ``type_ value``
    checked against the zone's ``others``; the record with an absolute name and the value in
    dnspython's canonical text."""
    origin = dns.name.from_text(zone)
    owner = _owner(origin, name)
    rdtype = type_.upper()
    if rdtype not in ALLOWED:
        raise InvalidRecord(
            f"{type_} records cannot be added by hand (allowed: {', '.join(ALLOWED)})."
        )
    if not 0 <= ttl <= MAX_TTL:
        raise InvalidRecord(f"The TTL {ttl} is out of range (0 to {MAX_TTL}, RFC 2181 §8).")
    rdata = _parse(rdtype, value, origin)
    text = _text(rdata)
    record = Record(owner.to_text(omit_final_dot=True), rdtype, text, "added by an admin", ttl)
    _check_placement(origin, owner, rdtype, others)
    if rdtype in ("MX", "SRV"):
        _check_target(rdtype, value, rdata, others)
    for other in others:
        if other.name.lower() == record.name and other.type == rdtype:
            same = other.value if rdtype == "TXT" else _text(_parse(rdtype, other.value, origin))
            if same == text:
                raise InvalidRecord(f"{record.name} {rdtype} {text} is already in the zone.")
    return record


def _text(rdata: dns.rdata.Rdata) -> str:
    """A record's value as :class:`Record` holds it: zone-file text with absolute names, and
    for TXT the character-strings joined (:meth:`Record.zone_line` splits them again)."""
    if isinstance(rdata, dns.rdtypes.txtbase.TXTBase):
        return b"".join(rdata.strings).decode("utf-8", "backslashreplace")
    return str(rdata.to_text(origin=None, relativize=False))


def _owner(origin: dns.name.Name, name: str) -> dns.name.Name:
    try:
        owner = origin if name.strip() == "@" else dns.name.from_text(name.strip(), origin)
    except dns.exception.DNSException as exc:
        raise InvalidRecord(f"{name!r} is not a valid DNS name: {exc}") from None
    if not owner.is_subdomain(origin):
        raise InvalidRecord(f"{owner} is outside the zone {origin}.")
    return owner.canonicalize()


def _parse(rdtype: str, value: str, origin: dns.name.Name) -> dns.rdata.Rdata:
    try:
        return dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rdtype),
            value,
            origin=origin,
            relativize=False,
        )
    except (dns.exception.DNSException, ValueError) as exc:
        hint = ""
        if rdtype == "TXT":
            hint = ' (quote each string, at most 255 octets: "part one" "part two")'
        raise InvalidRecord(f"{value!r} is not a valid {rdtype} value: {exc}{hint}") from None


def _check_placement(
    origin: dns.name.Name,
    owner: dns.name.Name,
    rdtype: str,
    others: Sequence[Record],
) -> None:
    at_owner = {r.type for r in others if dns.name.from_text(r.name) == owner}
    if rdtype == "CNAME":
        if owner == origin:
            raise InvalidRecord(
                "A CNAME cannot be at the zone's apex: the SOA and NS are there (RFC 1912 §2.4)."
            )
        if at_owner - {"CNAME"}:
            raise InvalidRecord(
                f"{owner} already has {', '.join(sorted(at_owner))} records; a CNAME must be "
                "alone at its name (RFC 1034 §3.6.2)."
            )
    elif "CNAME" in at_owner:
        raise InvalidRecord(
            f"{owner} is a CNAME; no other record can be at that name (RFC 1034 §3.6.2)."
        )
    if rdtype == "NS" and owner == origin:
        raise InvalidRecord("The apex's NS records are the server's own (this server).")


def _check_target(
    rdtype: str, value: str, rdata: dns.rdata.Rdata, others: Sequence[Record]
) -> None:
    target: dns.name.Name = getattr(rdata, "exchange" if rdtype == "MX" else "target")
    if target == dns.name.root:
        return  # null MX (RFC 7505) or "no service" SRV (RFC 2782)
    # As written: a bare 192.0.2.1 would otherwise read as a name inside the zone.
    written = value.split()[-1].rstrip(".")
    try:
        ipaddress.ip_address(written)
    except ValueError:
        pass
    else:
        raise InvalidRecord(
            f"{rdtype} must name a host, not the address {written} (RFC 5321 §5.1, RFC 2782)."
        )
    text = target.to_text(omit_final_dot=True)
    if not all(_HOST_LABEL.fullmatch(label) for label in text.split(".")):
        raise InvalidRecord(
            f"{rdtype} must name a host; {text!r} is not a host name (RFC 5321 §2.3.5)."
        )
    if any(dns.name.from_text(r.name) == target and r.type == "CNAME" for r in others):
        raise InvalidRecord(
            f"{rdtype} points at {text}, which is a CNAME; it must name the host itself "
            "(RFC 2181 §10.3)."
        )
