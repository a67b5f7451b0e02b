"""DKIM verification of inbound mail (RFC 6376 §6, RFC 8463 Ed25519), one result per signature.

Every ``DKIM-Signature`` field (up to :data:`MAX_SIGNATURES`) is checked with dkimpy, the
field's reference implementation. Its key lookups are synchronous, so the keys are fetched
first through our asynchronous resolver (all at once, sharing its cache), and dkimpy then runs
in a worker thread against what was fetched: the event loop never waits on the DNS or on the
hashing of a large body.

Results are RFC 8601 §2.7.1's: ``pass``, ``fail`` (the body or the header hash does not
match), ``policy`` (a valid signature we do not accept: an RSA key under 1024 bits, RFC 8301
§3.2), ``neutral`` (the signature cannot be processed: a syntax error, expired), ``temperror``
(the key lookup failed for now) and ``permerror`` (no key, or an unusable one).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import dkim as dkimpy
import dns.asyncresolver

from courrier.dns.resolver import TempDNSError, txt_records
from courrier.mailauth.dkim import field_name, split

log = logging.getLogger("courrier.dkim")

#: Signatures checked per message; more are reported as not checked (a message with hundreds
#: of signatures is an attack on the verifier, RFC 6376 §8.4).
MAX_SIGNATURES = 10
#: RFC 8301 §3.2: RSA keys under this size do not make a signature valid.
MIN_RSA_BITS = 1024

_TAG = re.compile(rb"\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*([^;]*)")
_SPACE = re.compile(rb"\s+")


@dataclass(frozen=True, slots=True)
class DKIMResult:
    result: str
    #: The signing domain (d=), selector (s=), algorithm (a=) and agent or user (i=).
    domain: str
    selector: str
    algorithm: str
    identity: str
    #: The key's size in bits (0 when unknown): Ed25519 is 256.
    key_bits: int = 0
    #: The first characters of b=, telling signatures apart (RFC 6008).
    header_b: str = ""
    #: Why, when it is not a pass.
    reason: str = ""


def tags(value: bytes) -> dict[str, bytes]:
    """A tag list (RFC 6376 §3.2): names lower-cased, white space removed from the values."""
    found: dict[str, bytes] = {}
    for part in value.split(b";"):
        match = _TAG.match(part)
        if match:
            found.setdefault(match.group(1).decode().lower(), _SPACE.sub(b"", match.group(2)))
    return found


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "replace")


def signatures(message: bytes) -> list[dict[str, bytes]]:
    """The tags of each DKIM-Signature field, top first."""
    fields, _ = split(message)
    return [
        tags(f.split(b":", 1)[1]) for f in fields if field_name(f) == "dkim-signature" and b":" in f
    ]


def _key_name(sig: Mapping[str, bytes]) -> str | None:
    selector, domain = _text(sig.get("s")), _text(sig.get("d"))
    if not selector or not domain:
        return None
    return f"{selector}._domainkey.{domain}".lower().rstrip(".")


async def verify_dkim(message: bytes, resolver: dns.asyncresolver.Resolver) -> list[DKIMResult]:
    """Check each signature of ``message`` (as received, CRLF line ends)."""
    sigs = signatures(message)
    if not sigs:
        return []
    names = {name for sig in sigs[:MAX_SIGNATURES] if (name := _key_name(sig))}
    keys = await fetch_keys(resolver, sorted(names))
    return await asyncio.to_thread(_verify_all, message, sigs, keys)


async def fetch_keys(
    resolver: dns.asyncresolver.Resolver, names: Sequence[str]
) -> dict[str, bytes | TempDNSError | None]:
    """The key record at each of ``names``, all looked up at once: None when there is no
    single one (RFC 6376 §3.6.2.2: one record per name, the one that is a key), the
    :class:`TempDNSError` when the DNS gave no answer."""
    fetched = await asyncio.gather(
        *(txt_records(resolver, name) for name in names), return_exceptions=True
    )
    keys: dict[str, bytes | TempDNSError | None] = {}
    for name, found in zip(names, fetched, strict=True):
        if isinstance(found, TempDNSError):
            keys[name] = found
        elif isinstance(found, BaseException):
            raise found
        else:
            usable = [record for record in found if b"p=" in record]
            keys[name] = usable[0] if len(usable) == 1 else None
    return keys


def _verify_all(
    message: bytes,
    sigs: Sequence[Mapping[str, bytes]],
    keys: Mapping[str, bytes | TempDNSError | None],
) -> list[DKIMResult]:
    # minkey=1: dkimpy would call a small key a format error; RFC 8301 makes it "policy".
    checker = dkimpy.DKIM(message, minkey=1, timeout=5)
    results = []
    for index, sig in enumerate(sigs):
        base = DKIMResult(
            "neutral",
            domain=_text(sig.get("d")).lower(),
            selector=_text(sig.get("s")),
            algorithm=_text(sig.get("a")).lower(),
            identity=_text(sig.get("i")) or "@" + _text(sig.get("d")).lower(),
            header_b=_text(sig.get("b"))[:8],
        )
        if index >= MAX_SIGNATURES:
            results.append(replace(base, result="neutral", reason="too many signatures"))
            continue
        name = _key_name(sig)
        key = keys.get(name) if name else None
        if isinstance(key, TempDNSError):
            results.append(replace(base, result="temperror", reason="key lookup failed"))
            continue
        results.append(_verify_one(checker, index, key, base))
    return results


def _verify_one(
    checker: dkimpy.DKIM, index: int, key: bytes | None, base: DKIMResult
) -> DKIMResult:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return key

    if key is None:
        return replace(base, result="permerror", reason="no key")
    try:
        # dkimpy logs an unusable key and calls the signature invalid; it is a permerror.
        dkimpy.evaluate_pk(b"key", key)
    except dkimpy.KeyFormatError as exc:
        return replace(base, result="permerror", reason=f"unusable key: {exc}")
    checker.keysize = 0
    try:
        valid = checker.verify(idx=index, dnsfunc=lookup)
    except dkimpy.KeyFormatError as exc:
        return replace(base, result="permerror", reason=str(exc) or "no key")
    except dkimpy.ValidationError as exc:
        text = str(exc)
        # A hash that does not match is a failed signature; any other complaint is about a
        # signature that could not be processed (RFC 8601 §2.7.1).
        result = "fail" if "mismatch" in text else "neutral"
        return replace(base, result=result, key_bits=checker.keysize or 0, reason=text)
    except dkimpy.DKIMException as exc:
        return replace(base, result="neutral", reason=str(exc))
    bits = int(checker.keysize or 0)
    if not valid:
        return replace(base, result="fail", key_bits=bits, reason="signature did not verify")
    if base.algorithm.startswith("rsa") and bits < MIN_RSA_BITS:
        return replace(base, result="policy", key_bits=bits, reason=f"{bits}-bit RSA key")
    return replace(base, result="pass", key_bits=bits)
