"""DANE for SMTP (RFC 7672, RFC 7671, RFC 6698), sans-IO: which TLSA records count, and
whether a server's certificate chain matches them.

What this module owns: the usable TLSA records for SMTP (§3.1: DANE-TA(2) and DANE-EE(3),
selectors Cert(0)/SPKI(1), matching types Full(0)/SHA2-256(1)/SHA2-512(2); PKIX-TA(0) and
PKIX-EE(1) are unusable for SMTP) and the check of a chain the server sent (DER, leaf first)
against them: DANE-EE matches the leaf with no name or expiry check (§3.1.1); DANE-TA needs a
chain from the leaf to the matched trust anchor and the MX host's name in the leaf (§3.2.2).
The DNS lookups and the TLS handshake are the callers'.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

__all__ = ["TLSA", "Mismatch", "check", "usable"]

DANE_TA = 2
DANE_EE = 3


@dataclass(frozen=True, slots=True)
class TLSA:
    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        """Presentation form (RFC 6698 §2.2), as TLS-RPT's policy-string wants it."""
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Why a chain does not satisfy the records: an RFC 8460 §4.3 result type and words."""

    result_type: str
    reason: str


def usable(record: TLSA) -> bool:
    """RFC 7672 §3.1: only DANE-TA(2) and DANE-EE(3) with known selectors and matching types;
    a digest of the wrong length cannot match anything (RFC 7671 §5.1)."""
    if record.usage not in (DANE_TA, DANE_EE) or record.selector not in (0, 1):
        return False
    if record.mtype == 0:
        return bool(record.data)
    return {1: 32, 2: 64}.get(record.mtype) == len(record.data)


def _selected(cert: x509.Certificate, selector: int) -> bytes:
    if selector == 0:
        return cert.public_bytes(serialization.Encoding.DER)
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def matches(record: TLSA, cert: x509.Certificate) -> bool:
    """RFC 6698 §2.1.2-2.1.3: the selected content, hashed as the matching type says."""
    data = _selected(cert, record.selector)
    if record.mtype == 1:
        data = hashlib.sha256(data).digest()
    elif record.mtype == 2:
        data = hashlib.sha512(data).digest()
    return data == record.data


def check(
    records: Sequence[TLSA], chain: Sequence[bytes], host: str, now: datetime.datetime
) -> Mismatch | None:
    """None when the chain (DER, leaf first, as the server sent it) satisfies one of the
    usable ``records`` for the MX host ``host``; else why not."""
    records = [r for r in records if usable(r)]
    if not records:
        return Mismatch("tlsa-invalid", "no usable TLSA record")
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError as exc:
        return Mismatch("validation-failure", f"the server's certificate cannot be read: {exc}")
    if not certs:
        return Mismatch("validation-failure", "the server sent no certificate")
    leaf, rest = certs[0], certs[1:]
    # §3.1.1 DANE-EE: the leaf's key or certificate is the trust; names and dates do not count.
    if any(r.usage == DANE_EE and matches(r, leaf) for r in records):
        return None
    last: Mismatch | None = None
    for record in (r for r in records if r.usage == DANE_TA):
        anchors = [c for c in rest if matches(record, c)]
        if not anchors and record.selector == 0 and record.mtype == 0:
            # RFC 7672 §3.2.2: a "2 0 0" record carries the whole anchor certificate, which
            # the server may then leave out of its chain.
            try:
                anchors = [x509.load_der_x509_certificate(record.data)]
            except ValueError:
                anchors = []
        for anchor in anchors:
            problem = _chain_to(anchor, leaf, rest, host, now)
            if problem is None:
                return None
            last = problem
    return last or Mismatch(
        "validation-failure", "the certificate matches none of the TLSA records"
    )


def _chain_to(
    anchor: x509.Certificate,
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    host: str,
    now: datetime.datetime,
) -> Mismatch | None:
    """§3.2.2 DANE-TA: the leaf chains to ``anchor`` (signatures, dates, CA constraints) and
    names the MX host (RFC 7672 §3.2.3: the TLSA base domain as reference identifier)."""
    verifier = (
        PolicyBuilder().store(Store([anchor])).time(now).build_server_verifier(x509.DNSName(host))
    )
    try:
        verifier.verify(leaf, list(intermediates))
    except VerificationError as exc:
        text = str(exc)
        if "subjectAltName" in text:
            return Mismatch("certificate-host-mismatch", f"the certificate does not name {host}")
        if "expired" in text or "not yet valid" in text or "validity" in text:
            return Mismatch("certificate-expired", text)
        return Mismatch("validation-failure", text)
    return None
