"""DNSSEC signing of our zones (RFC 4033–4035), sans-IO: a zone's RRsets and its key in, the
DNSKEY, the NSEC chain and every RRSIG out.

What this module owns: the signing key (one combined signing key per zone, flags 257, as
Knot's and BIND's "CSK" policies do: ECDSA P-256, RFC 6605, or Ed25519, RFC 8080), the DS
record the parent publishes (SHA-256, RFC 4509), which names and RRsets are signed (not the
NS of a delegation nor its glue, RFC 4035 §2.2), the NSEC chain in canonical order
(RFC 4034 §4, §6.1; authenticated denial, RFC 4035 §2.3), and the validity of signatures.

Signatures are a pure function of the content, the key and the signing period: ECDSA is
deterministic here (RFC 6979, as dnspython does it) and Ed25519 is by nature, and every RRSIG
of a period has the same inception and expiration. A zone rebuilt with nothing new is
therefore identical, and re-signing happens when a new period starts (:data:`PERIOD`), well
before the signatures of the previous one expire (:data:`VALIDITY`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.NSEC
import dns.rrset
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from dns.dnssectypes import Algorithm

from courrier.dns.zone import Key

#: Signatures are made anew every week ...
PERIOD = 7 * 86400
#: ... valid from an hour before (clock skew) to three weeks after the period starts: at any
#: time they have at least two weeks left, more than the SOA's expire timer is not needed.
VALIDITY = 3 * PERIOD
SKEW = 3600

#: DNSSEC algorithm numbers (IANA) of the settings' names.
ALGORITHMS = {
    "ecdsap256sha256": Algorithm.ECDSAP256SHA256,
    "ed25519": Algorithm.ED25519,
}

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key(algorithm: int) -> str:
    """A fresh private key for ``algorithm`` (PKCS #8 PEM)."""
    private: PrivateKey
    if algorithm == Algorithm.ED25519:
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == Algorithm.ECDSAP256SHA256:
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported DNSSEC algorithm {algorithm}")
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass(frozen=True)
class SigningKey:
    """A zone's key, with the DNSKEY record that publishes it."""

    origin: dns.name.Name
    private: PrivateKey
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY

    @classmethod
    def from_pem(cls, origin: dns.name.Name, algorithm: int, pem: str) -> SigningKey:
        private = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        # Flags 257: a zone key (bit 7) that is also a secure entry point (bit 15), RFC 4034
        # §2.1.1: the one key signs everything and is what the parent's DS points at.
        dnskey = dns.dnssec.make_dnskey(private.public_key(), algorithm, flags=257)
        return cls(origin, private, dnskey)

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    def ds(self) -> dns.rdata.Rdata:
        """The DS record for the parent zone (digest type 2, SHA-256: RFC 4509)."""
        return dns.dnssec.make_ds(self.origin, self.dnskey, "SHA256")


def period_start(now: int) -> int:
    return now - now % PERIOD


@dataclass(frozen=True, slots=True)
class Signed:
    """What signing adds: the DNSKEY and NSEC RRsets, and the RRSIG of every signed RRset."""

    rrsets: list[dns.rrset.RRset]
    signatures: list[dns.rrset.RRset]


def sign(
    origin: dns.name.Name,
    rrsets: Iterable[dns.rrset.RRset],
    key: SigningKey,
    *,
    now: int,
    negative_ttl: int,
) -> Signed:
    """Sign a zone's RRsets (all of them, SOA included; same name and type merged)."""
    by_key: dict[Key, dns.rrset.RRset] = {(r.name, r.rdtype): r for r in rrsets}
    dnskey = dns.rrset.from_rdata_list(origin, 3600, [key.dnskey])
    by_key[(origin, dns.rdatatype.DNSKEY)] = dnskey
    cuts = {n for n, t in by_key if t == dns.rdatatype.NS and n != origin}
    owners: dict[dns.name.Name, set[int]] = {}
    for name, rdtype in by_key:
        if _occluded(name, cuts):
            continue  # glue below a delegation: not ours to sign or deny (RFC 4035 §2.2)
        owners.setdefault(name, set()).add(rdtype)
    added = [dnskey, *_nsec_chain(owners, cuts, negative_ttl)]
    for nsec in added[1:]:
        by_key[(nsec.name, dns.rdatatype.NSEC)] = nsec
    start = period_start(now)
    signatures = []
    for (name, rdtype), rrset in sorted(by_key.items()):
        if not _signed(name, rdtype, cuts):
            continue
        rrsig = dns.dnssec.sign(
            rrset,
            key.private,
            signer=origin,
            dnskey=key.dnskey,
            inception=start - SKEW,
            expiration=start + VALIDITY,
        )
        signatures.append(dns.rrset.from_rdata_list(name, rrset.ttl, [rrsig]))
    return Signed(added, signatures)


def _signed(name: dns.name.Name, rdtype: int, cuts: set[dns.name.Name]) -> bool:
    """RFC 4035 §2.2: a delegation's NS and its glue are not signed, its DS and NSEC are."""
    if _occluded(name, cuts):
        return False
    return name not in cuts or rdtype in (dns.rdatatype.DS, dns.rdatatype.NSEC)


def _occluded(name: dns.name.Name, cuts: set[dns.name.Name]) -> bool:
    """Below a delegation point (RFC 4035 §2.2: not authoritative data)."""
    return any(name != cut and name.is_subdomain(cut) for cut in cuts)


def _nsec_chain(
    owners: dict[dns.name.Name, set[int]], cuts: set[dns.name.Name], ttl: int
) -> list[dns.rrset.RRset]:
    """One NSEC per owner name, each pointing at the next in canonical order, the last at
    the apex (RFC 4034 §4.1.1); its types are those at the name, with RRSIG and NSEC
    (RFC 4035 §2.3) — at a delegation only NS, DS if any, RRSIG and NSEC. The TTL is the
    negative-caching TTL (RFC 9077 §3)."""
    names = sorted(owners)
    chain = []
    for i, name in enumerate(names):
        types = set(owners[name])
        if name in cuts:
            types &= {dns.rdatatype.NS, dns.rdatatype.DS}
        types |= {dns.rdatatype.RRSIG, dns.rdatatype.NSEC}
        windows = dns.rdtypes.ANY.NSEC.Bitmap.from_rdtypes(
            [dns.rdatatype.RdataType.make(t) for t in types]
        )
        rdata = dns.rdtypes.ANY.NSEC.NSEC(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN, dns.rdatatype.NSEC, names[(i + 1) % len(names)], windows
        )
        chain.append(dns.rrset.from_rdata_list(name, ttl, [rdata]))
    return chain
