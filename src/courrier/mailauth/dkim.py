"""DKIM signatures (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463), sans-IO.

:func:`sign` takes a message and the signing keys of its domain and returns the
``DKIM-Signature`` fields to put on top of it, one per key (RFC 6376 §5, RFC 8463 §3). The
canonicalization is relaxed/relaxed (§3.4.2, §3.4.4), the body hashed once for all keys and the
header once per signature. Signing goes through ``cryptography`` (OpenSSL): dkimpy, which the
tests use to verify, signs RSA in pure Python, ~40 times slower.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

#: RFC 6376 §5.4.1's recommended fields. Those in :data:`OVERSIGNED` are listed once more than
#: they occur, so that a field added later (a second From, a Subject where there was none)
#: breaks the signature (§8.15).
SIGNED = (
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-to",
    "resent-cc",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-id",
    "content-description",
)
OVERSIGNED = frozenset(
    {"from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to", "references"}
    | {"mime-version", "content-type", "content-transfer-encoding", "list-unsubscribe-post"}
)

RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"

_FIELD_START = re.compile(rb"\r\n(?![ \t])")
_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
_LINE_END_WSP = re.compile(rb"[ \t]+\r\n")
#: Only what relaxed canonicalization changes: a run of two or more, or a tab.
_WSP_TO_SPACE = re.compile(rb"[ \t]{2,}|\t")


class UnusableKey(ValueError):
    """A private key that cannot sign (not PEM, or neither RSA nor Ed25519)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One selector's private key; ``algorithm`` is ``rsa-sha256`` or ``ed25519-sha256``."""

    domain: str
    selector: str
    algorithm: str
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    @classmethod
    def from_pem(cls, domain: str, selector: str, pem: str) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise UnusableKey(f"{selector}._domainkey.{domain}: unreadable key: {exc}") from exc
        if isinstance(key, rsa.RSAPrivateKey):
            return cls(domain, selector, RSA, key)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return cls(domain, selector, ED25519, key)
        raise UnusableKey(f"{selector}._domainkey.{domain}: neither RSA nor Ed25519")

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            # RFC 6376 §3.3.1: RSASSA-PKCS1-v1_5 over the SHA-256 of the signed data.
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # RFC 8463 §3: PureEdDSA over the SHA-256 hash of the signed data.
        return self.key.sign(hashlib.sha256(data).digest())


def split(message: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folding, without the final CRLF) and the body."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        if head.startswith(b"\r\n"):  # no header at all
            return [], message[2:]
        head = head.removesuffix(b"\r\n")
    return (_FIELD_START.split(head) if head else []), body


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4: trailing white space gone, runs of it one space, no trailing empty
    lines; a non-empty body ends with CRLF, an empty one stays empty."""
    # Each pass only when there is something for it to do: most bodies need none.
    body = body.rstrip(b" \t")
    if b" \r\n" in body or b"\t\r\n" in body:
        body = _LINE_END_WSP.sub(b"\r\n", body)
    if b"\t" in body or b"  " in body:
        body = _WSP_TO_SPACE.sub(b" ", body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    return body[:end] + b"\r\n" if end else b""


def body_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode()


def relaxed_field(field: bytes) -> bytes:
    """RFC 6376 §3.4.2: lowercase name, unfolded value, white space runs as one space and none
    around the colon or at the end (no CRLF added)."""
    name, _, value = field.partition(b":")
    value = _WSP_RUN.sub(b" ", _FOLD.sub(b"", value)).strip(b" \t")
    return name.rstrip(b" \t").lower() + b":" + value


def field_name(field: bytes) -> str:
    return field.partition(b":")[0].rstrip(b" \t").decode("ascii", "replace").lower()


def choose_fields(fields: Sequence[bytes]) -> list[str]:
    """The ``h=`` list for a message: each recommended field as often as it occurs, plus once
    more for the oversigned ones."""
    present: dict[str, int] = {}
    for field in fields:
        name = field_name(field)
        present[name] = present.get(name, 0) + 1
    chosen = []
    for name in SIGNED:
        count = present.get(name, 0) + (name in OVERSIGNED)
        chosen.extend([name] * count)
    return chosen


def signed_headers(fields: Sequence[bytes], names: Sequence[str]) -> bytes:
    """The canonical header fields named in ``h=``, each occurrence taken from the bottom up
    (RFC 6376 §5.4.2); a name with no field left contributes nothing (§5.4)."""
    by_name: dict[str, list[bytes]] = {}
    for field in fields:
        by_name.setdefault(field_name(field), []).append(field)
    out = []
    for name in names:
        instances = by_name.get(name.lower())
        if instances:
            out.append(relaxed_field(instances.pop()) + b"\r\n")
    return b"".join(out)


def signature_data(headers: bytes, template: str) -> bytes:
    """What is signed: the chosen headers, then the DKIM-Signature field itself with an empty
    ``b=``, canonicalized and without its final CRLF (RFC 6376 §3.7)."""
    return headers + relaxed_field(b"DKIM-Signature: " + template.encode())


def finish(
    template: str, signature: bytes, width: int = 76, *, name: str = "DKIM-Signature"
) -> bytes:
    """The complete field: ``template`` (ending in ``b=``) with the signature folded in;
    ``name`` is the field's (ARC's signatures are built the same way, RFC 8617 §4.1)."""
    value = base64.b64encode(signature).decode()
    lines = [f"{name}: {template}"]
    room = width - len(lines[-1].rsplit("\r\n", 1)[-1])
    lines[-1] += value[:room]
    value = value[room:]
    while value:
        lines.append(" " + value[: width - 1])
        value = value[width - 1 :]
    return ("\r\n".join(lines) + "\r\n").encode()


def template_for(key: SigningKey, names: Sequence[str], bh: str, timestamp: int) -> str:
    """The field's value up to an empty ``b=``, folded (RFC 6376 §3.5 tags; relaxed
    canonicalization for header and body)."""
    return (
        f"v=1; a={key.algorithm}; c=relaxed/relaxed; d={key.domain};\r\n"
        f" s={key.selector}; t={timestamp};\r\n"
        f" h={fold_list(names)};\r\n"
        f" bh={bh};\r\n"
        " b="
    )


def fold_list(names: Sequence[str], width: int = 70) -> str:
    """``a:b:c`` folded after a colon where a line would grow past ``width`` (FWS is allowed
    around the colons of ``h=``, RFC 6376 §3.5)."""
    lines = [""]
    for name in names:
        if lines[-1] and len(lines[-1]) + len(name) > width:
            lines.append("")
        lines[-1] += name + ":"
    return "\r\n  ".join(lines).removesuffix(":")


def sign(message: bytes, keys: Sequence[SigningKey], timestamp: int) -> bytes:
    """The ``DKIM-Signature`` fields (CRLF-terminated, one per key) to prepend to ``message``."""
    if not keys:
        return b""
    fields, body = split(message)
    names = choose_fields(fields)
    headers = signed_headers(fields, names)
    bh = body_hash(body)
    out = []
    for key in keys:
        template = template_for(key, names, bh, timestamp)
        out.append(finish(template, key.sign(signature_data(headers, template))))
    return b"".join(out)
