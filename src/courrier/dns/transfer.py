"""Zone transfers to our secondaries (AXFR, RFC 5936; IXFR, RFC 1995), TSIG (RFC 8945), and the
NOTIFY that tells them of a change (RFC 1996), sans-IO: query bytes in, response bytes out.

:class:`Transfers` answers the queries :class:`~courrier.dns.answer.Authority` does not: AXFR and
IXFR, and every TSIG-signed query (a secondary checking our SOA signs it too), whose answer it
has the Authority make and then signs. Who may transfer: with TSIG keys configured, whoever
signs with one of them, from any address (the key is the credential, as with BIND's
``allow-transfer { key name; };``), so that an unsigned query is REFUSED even from a listed
secondary; with no keys, the listed secondaries' addresses. Transfers happen over TCP only: an
AXFR over UDP is REFUSED (RFC 5936 §4.2 leaves it undefined), an IXFR over UDP gets our SOA, the
way RFC 1995 §2 tells a client to come back over TCP. An IXFR is answered with the whole zone
(RFC 1995 §4: we keep no history), or with the SOA alone when the client is up to date.

:func:`notify` makes the NOTIFY a change sends; :func:`acknowledged` recognizes its answer.
"""

from __future__ import annotations

import io
import ipaddress
import logging
from collections.abc import Iterable, Iterator

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.serial
import dns.tsig

from courrier.dns import tsig
from courrier.dns.answer import PAYLOAD, Authority, udp_limit
from courrier.dns.rendered import question_type
from courrier.dns.zone import Zone

log = logging.getLogger("courrier.dns")

#: Octets of records per message of a transfer (RFC 5936 §2.2: as many messages as needed,
#: each at most 64 KiB): well under the limit, with room for the header, question and TSIG.
MESSAGE_SIZE = 16384
#: The largest DNS message over TCP (RFC 1035 §4.2.2: a two-octet length).
TCP_MAX = 65535

TRANSFER_TYPES = (dns.rdatatype.AXFR, dns.rdatatype.IXFR)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Transfers:
    """Who may transfer our zones, and the transfers themselves."""

    def __init__(self, secondaries: Iterable[str], keys: tsig.Keyring) -> None:
        #: The secondaries' addresses: who may transfer when no key is configured.
        self.addresses = {_address(a) for a in secondaries}
        self.keys = keys

    def respond(
        self, authority: Authority, wire: bytes, peer: str, *, tcp: bool
    ) -> list[bytes] | None:
        """The response messages to ``wire`` from ``peer`` when it is a transfer or signed;
        None for any other query (and for what does not parse): the Authority answers it.
        Plain queries for other types can be left to the Authority without asking
        (:func:`leaves_to_authority`)."""
        try:
            unverified = dns.message.from_wire(wire, keyring=False)  # the TSIG is checked below
        except dns.exception.DNSException:
            return None
        if unverified.flags & dns.flags.QR:
            return None
        if not (unverified.had_tsig or _is_transfer(unverified)):
            return None
        query = unverified
        if unverified.had_tsig:
            try:
                query = tsig.verify(wire, unverified, self.keys)
            except tsig.Rejected as rejected:
                log.info("dns: TSIG from %s rejected: %s", peer, rejected)
                return [rejected.response]
            except dns.exception.DNSException:
                return None  # a malformed TSIG: the Authority answers FORMERR
        if not _is_transfer(query):
            return [_signed_answer(authority, unverified, query, tcp=tcp)]
        return self._transfer(authority, query, peer, tcp=tcp)

    def _transfer(
        self, authority: Authority, query: dns.message.Message, peer: str, *, tcp: bool
    ) -> list[bytes]:
        if len(query.question) != 1:
            return [_error(query, dns.rcode.FORMERR)]
        question = query.question[0]
        qtype = dns.rdatatype.to_text(question.rdtype)
        if not self._allowed(query, peer):
            log.info("dns: %s of %s from %s refused", qtype, question.name, peer)
            return [_error(query, dns.rcode.REFUSED)]
        zone = authority.zones.get(question.name)
        if zone is None or question.rdclass != dns.rdataclass.IN:
            # RFC 5936 §2.2.1: "not authoritative for the queried zone": NotAuth.
            return [_error(query, dns.rcode.NOTAUTH)]
        if question.rdtype == dns.rdatatype.AXFR and not tcp:
            return [_error(query, dns.rcode.REFUSED)]  # RFC 5936 §4.2: not defined over UDP
        if question.rdtype == dns.rdatatype.IXFR:
            serial = _client_serial(query, zone)
            if serial is None:
                # RFC 1995 §3: the authority section holds the client's SOA.
                return [_error(query, dns.rcode.FORMERR)]
            if not tcp or dns.serial.Serial(serial) >= zone.serial:
                # RFC 1995 §2: up to date (or over UDP: ask again over TCP): our SOA alone.
                return _messages(query, [zone.soa])
        log.info("dns: %s of %s (serial %d) to %s", qtype, zone.origin, zone.serial, peer)
        # RFC 5936 §2.2: the SOA, every record, the SOA again; Zone.records starts with the SOA.
        return _messages(query, [*zone.records(), zone.soa])

    def _allowed(self, query: dns.message.Message, peer: str) -> bool:
        if self.keys:
            return query.had_tsig  # verified by now: a bad signature was answered NOTAUTH
        return _address(peer) in self.addresses


def notify(zone: Zone, key: dns.tsig.Key | None) -> dns.message.Message:
    """The NOTIFY of ``zone``'s current version (RFC 1996 §3.7): opcode NOTIFY, AA, the zone's
    SOA as the question and the SOA itself as an answer (the hint §3.7 allows); signed with
    ``key`` if any."""
    message = dns.message.make_query(zone.origin, dns.rdatatype.SOA)
    message.flags = dns.flags.AA
    message.set_opcode(dns.opcode.NOTIFY)
    message.answer.append(zone.soa)
    if key is not None:
        message.use_tsig(key)
    return message


def acknowledged(query: dns.message.Message, wire: bytes) -> dns.rcode.Rcode | None:
    """The rcode of ``wire`` when it answers the NOTIFY ``query`` (rendered, so signed if it is
    to be): same id, QR and opcode NOTIFY, a valid TSIG when the query had one. Any rcode ends
    the NOTIFY (RFC 1996 §3.12: even NOTIMP); None for anything else, to be ignored."""
    try:
        response = dns.message.from_wire(
            wire, keyring=query.keyring if query.had_tsig else None, request_mac=query.mac or b""
        )
    except dns.exception.DNSException:
        return None
    if response.id != query.id or not response.flags & dns.flags.QR:
        return None
    if response.opcode() != dns.opcode.NOTIFY:
        return None
    return response.rcode()


def leaves_to_authority(wire: bytes, end: int | None) -> bool:
    """Whether ``wire``, whose question ends at ``end`` if it is a plain query
    (:func:`courrier.dns.rendered.plain_end`), is neither signed nor a transfer: no TSIG (it
    would be an additional record after the OPT, RFC 8945 §5.1), not AXFR or IXFR."""
    return end is not None and question_type(wire, end) not in TRANSFER_TYPES


def _is_transfer(query: dns.message.Message) -> bool:
    return any(q.rdtype in TRANSFER_TYPES for q in query.question)


def _signed_answer(
    authority: Authority,
    unverified: dns.message.Message,
    query: dns.message.Message,
    *,
    tcp: bool,
) -> bytes:
    """A signed query other than a transfer: the Authority's answer to it without its TSIG,
    signed (RFC 8945 §5.3). Over UDP, if the signature makes it too long, the truncated
    answer, signed (RFC 1035 §4.2.1: the client asks again over TCP)."""
    unverified.tsig = None  # no longer needed: ``query`` keeps the verified TSIG
    unsigned = unverified.to_wire(max_size=TCP_MAX)
    answer = authority.respond(unsigned, tcp=tcp)
    assert answer is not None  # a query, not a response
    signed = tsig.sign(answer, query)
    if not tcp and len(signed) > udp_limit(query):
        truncated = authority.respond(unsigned, truncate=True)
        assert truncated is not None
        signed = tsig.sign(truncated, query)
    return signed


def _client_serial(query: dns.message.Message, zone: Zone) -> int | None:
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == zone.origin and len(rrset):
            return int(rrset[0].serial)
    return None


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    """An error response, signed if the query was (RFC 8945 §5.3)."""
    response = dns.message.make_response(query, our_payload=PAYLOAD)
    response.set_rcode(rcode)
    return response.to_wire(max_size=TCP_MAX)


def _messages(query: dns.message.Message, records: Iterable[dns.rrset.RRset]) -> list[bytes]:
    """``records`` as the answers of as many messages as they need, each signed when the query
    was, every MAC after the first covering the one before (RFC 8945 §5.3.1)."""
    messages = []
    context = None
    for chunk in _chunks(records, MESSAGE_SIZE):
        response = dns.message.make_response(query, our_payload=PAYLOAD)
        response.flags |= dns.flags.AA
        response.answer = chunk
        messages.append(response.to_wire(max_size=TCP_MAX, multi=True, tsig_ctx=context))
        context = response.tsig_ctx
    return messages


def _chunks(records: Iterable[dns.rrset.RRset], size: int) -> Iterator[list[dns.rrset.RRset]]:
    """``records`` in groups of at most ``size`` octets in wire form (counted uncompressed: the
    messages come out smaller), an RRset too big for one message split into its records."""
    chunk: list[dns.rrset.RRset] = []
    used = 0
    for piece in _pieces(records, size):
        length = _wire_length(piece)
        if chunk and used + length > size:
            yield chunk
            chunk, used = [], 0
        chunk.append(piece)
        used += length
    if chunk:
        yield chunk


def _pieces(records: Iterable[dns.rrset.RRset], size: int) -> Iterator[dns.rrset.RRset]:
    for rrset in records:
        if len(rrset) > 1 and _wire_length(rrset) > size:
            for rdata in rrset:
                yield dns.rrset.from_rdata(rrset.name, rrset.ttl, rdata)
        else:
            yield rrset


def _wire_length(rrset: dns.rrset.RRset) -> int:
    buffer = io.BytesIO()
    rrset.to_wire(buffer)
    return len(buffer.getvalue())


def _address(text: str) -> Address:
    """An address, an IPv4-mapped IPv6 one (a dual-stack socket's peer) as IPv4."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
