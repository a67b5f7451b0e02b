"""TSIG on the server side (RFC 8945), sans-IO: checking a signed query, signing our answer.

A query is checked against the configured keys by dnspython's parser; when it fails the
query is answered NOTAUTH with the TSIG error of RFC 8945 §5.2 (:class:`Rejected` carries that
response): BADKEY for a key or algorithm we do not have, BADSIG for a MAC that does not verify
(both unsigned, as we cannot sign with what we could not verify), BADTIME for a signature
outside its time window (signed: the key and MAC were good). A verified query keeps its key, so
a response made from it with ``dns.message.make_response`` is signed when rendered;
:func:`sign` signs a response that is already wire (the one :class:`Authority` gave).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

Keyring = dict[dns.name.Name, dns.tsig.Key]


def keyring(keys: Iterable[tuple[str, str, bytes]]) -> Keyring:
    """The keys (name, algorithm, secret) by name, in the order given."""
    found: Keyring = {}
    for name, algorithm, secret in keys:
        key = dns.tsig.Key(dns.name.from_text(name), secret, dns.name.from_text(algorithm))
        found[key.name] = key
    return found


class Rejected(Exception):
    """A query's TSIG did not verify; ``response`` is the error to send (RFC 8945 §5.2)."""

    def __init__(self, response: bytes, reason: str) -> None:
        super().__init__(reason)
        self.response = response


def verify(wire: bytes, unverified: dns.message.Message, keys: Keyring) -> dns.message.Message:
    """The signed query ``wire`` (already parsed as ``unverified``, its TSIG unchecked), parsed
    again with its TSIG checked against ``keys``. Raises :class:`Rejected`, or another
    ``DNSException`` for a malformed TSIG (a FORMERR)."""
    try:
        return dns.message.from_wire(wire, keyring=keys)
    except (dns.message.UnknownTSIGKey, dns.tsig.BadAlgorithm):
        # §5.2.1: a key or algorithm we do not know: BADKEY, unsigned.
        raise Rejected(_unsigned_error(unverified, dns.rcode.BADKEY), "unknown key") from None
    except dns.tsig.BadSignature:
        # §5.2.2: the MAC does not verify: BADSIG, unsigned.
        raise Rejected(_unsigned_error(unverified, dns.rcode.BADSIG), "bad MAC") from None
    except dns.tsig.BadTime:
        raise Rejected(_bad_time(unverified, keys), "time outside the fudge") from None


def sign(response: bytes, query: dns.message.Message) -> bytes:
    """``response`` to the verified query ``query``, with a TSIG from its key (§5.3)."""
    request = _tsig_of(query)
    template = request.replace(mac=b"", error=dns.rcode.NOERROR, other=b"")
    return _signed(response, query.keyring, template, int(time.time()), request.mac)


def _unsigned_error(query: dns.message.Message, error: int) -> bytes:
    """NOTAUTH with a TSIG record naming ``error``, its MAC empty (§5.3.2)."""
    response = dns.message.make_response(query)  # unverified: not signed
    response.set_rcode(dns.rcode.NOTAUTH)
    request = _tsig_of(query)
    rdata = request.replace(time_signed=int(time.time()), mac=b"", error=error, other=b"")
    response.tsig = dns.rrset.from_rdata(_key_name(query), 0, rdata)
    return response.to_wire()


def _bad_time(query: dns.message.Message, keys: Keyring) -> bytes:
    """§5.2.3: NOTAUTH/BADTIME, signed with the query's key, the client's time as Time Signed
    and ours (48 bits) as Other Data, so that the client can tell its clock is off."""
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.NOTAUTH)
    request = _tsig_of(query)
    now = int(time.time()).to_bytes(6, "big")
    template = request.replace(mac=b"", error=dns.rcode.BADTIME, other=now)
    key = keys[_key_name(query)]
    return _signed(response.to_wire(), key, template, request.time_signed, request.mac)


def _signed(
    wire: bytes,
    key: dns.tsig.Key,
    template: dns.rdata.Rdata,
    time_signed: int,
    request_mac: bytes,
) -> bytes:
    """``wire`` with a TSIG record appended, its MAC over the request's MAC, the message and
    the TSIG variables (§4.3.3)."""
    rdata, _ = dns.tsig.sign(wire, key, template, time_signed, request_mac)  # type: ignore[no-untyped-call]
    record = io.BytesIO()
    dns.rrset.from_rdata(key.name, 0, rdata).to_wire(record)
    additional = int.from_bytes(wire[10:12], "big") + 1
    return wire[:10] + additional.to_bytes(2, "big") + wire[12:] + record.getvalue()


def _tsig_of(query: dns.message.Message) -> dns.rdtypes.ANY.TSIG.TSIG:
    assert query.tsig is not None
    rdata = query.tsig[0]
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    return rdata


def _key_name(query: dns.message.Message) -> dns.name.Name:
    assert query.keyname is not None
    return query.keyname
