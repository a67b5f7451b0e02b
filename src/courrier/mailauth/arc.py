"""ARC, the Authenticated Received Chain (RFC 8617): the chain on inbound mail validated, and
the next ARC set computed for mail we pass on.

:func:`verify_arc` follows RFC 8617 §5.2. The structure (steps 1-3: at most 50 sets, numbered
1..N with no gap, one field of each kind per set, ``cv=none`` on the first seal and
``cv=pass`` on the others, the newest not ``cv=fail``) is checked here, before any lookup. The
signatures (step 4: the newest ARC-Message-Signature; step 6: every ARC-Seal) are checked by
dkimpy, the reference implementation, in a worker thread; its key lookups are synchronous, so
the keys are fetched first through our asynchronous resolver and dkimpy is answered from what
was fetched. Older ARC-Message-Signatures (step 5, optional) are not checked: each would hash
the body once more and none changes the result.

A DNS failure while fetching a key makes the chain fail: "All errors, including DNS failures,
become unrecoverable and are considered permanent" (RFC 8617 §5.2.1); RFC 8601 registers no
``temperror`` for ``arc``. The reason then begins with :data:`TEMPORARY`
(:attr:`ARCResult.temporary`), for a caller that would rather defer the message.

:func:`seal` (RFC 8617 §5.1) is our own code on :mod:`courrier.mailauth.dkim`'s relaxed
canonicalization and ``cryptography``: dkimpy's ``arc_sign`` signs RSA in pure Python (~40
times slower), wants our Authentication-Results field inside the message and takes ``cv=``
from it, where ours takes ``cv=`` from the validation we did. The tests check what it produces
with dkimpy's ``arc_verify``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import dkim as dkimpy
import dns.asyncresolver

from courrier.dns.resolver import TempDNSError
from courrier.mailauth import dkim
from courrier.mailauth.dkimverify import fetch_keys
from courrier.store import DkimKey

__all__ = ["MAX_INSTANCES", "TEMPORARY", "ARCResult", "seal", "verify_arc"]

#: RFC 8617 §4.2.1: instance values range from 1 to 50.
MAX_INSTANCES = 50
#: RFC 8301 §3.2: RSA keys under this size do not make a signature valid.
MIN_RSA_BITS = 1024
#: How the reason of a chain failed by a DNS error begins.
TEMPORARY = "temporary DNS error"

AAR = "arc-authentication-results"
AMS = "arc-message-signature"
AS = "arc-seal"
#: The order of a set's fields in the ARC-Seal's hash (RFC 8617 §5.1.1).
_IN_SET = (AAR, AMS, AS)
_TITLE = {AAR: "ARC-Authentication-Results", AMS: "ARC-Message-Signature", AS: "ARC-Seal"}

_TAG = re.compile(rb"\s*([A-Za-z][A-Za-z0-9_]*)\s*=(.*)", re.DOTALL)
_SPACE = re.compile(rb"\s+")
#: RFC 8617 §4.1.1: ``arc-info = instance [CFWS] ";" authres-payload``.
_AAR_INSTANCE = re.compile(rb"\s*i\s*=\s*([0-9]+)\s*;")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

#: dkimpy reports every failed signature with ``logger.error``; the reason carries it here.
_dkimpy_log = logging.getLogger("courrier.arc.dkimpy")
_dkimpy_log.addHandler(logging.NullHandler())
_dkimpy_log.propagate = False


@dataclass(frozen=True, slots=True)
class ARCResult:
    """The chain as we validated it (RFC 8617 §4.4)."""

    #: "none" (no ARC set), "pass" or "fail".
    result: str
    #: The number of ARC sets (the highest ``i=``), 0 when none.
    instances: int
    #: The ``d=`` of each ARC-Seal, oldest (``i=1``) first: vouched for only by a pass.
    sealers: tuple[str, ...]
    #: Why it failed ("" for pass and none), for the Authentication-Results comment.
    reason: str

    @property
    def temporary(self) -> bool:
        """Failed because a key lookup got no answer (a retry may pass)."""
        return self.result == "fail" and self.reason.startswith(TEMPORARY)

    def authres(self) -> str:
        """The result for an Authentication-Results field (RFC 8617 §6.1):
        ``arc=pass (i=2, sealed by a.example, b.example)``, ``arc=fail (why)``, ``arc=none``."""
        if self.result == "pass":
            return f"arc=pass (i={self.instances}, sealed by {', '.join(self.sealers)})"
        if self.result == "fail" and self.reason:
            return f"arc=fail ({_comment(self.reason)})"
        return f"arc={self.result}"


def _comment(text: str) -> str:
    """``text`` as the inside of an RFC 5322 comment: no controls, parentheses escaped."""
    text = _CONTROL.sub(" ", text)
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


# -- the fields ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    """An ARC header field as found: its kind, instance (None when unreadable), the field
    itself (as in the message, without its CRLF) and, for AMS and AS, its tags."""

    kind: str
    instance: int | None
    raw: bytes
    tags: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class _Set:
    aar: _Field
    ams: _Field
    seal: _Field


def _tags(value: bytes) -> dict[str, bytes] | None:
    """A tag list (RFC 6376 §3.2), names lower-cased and white space taken out of the values;
    None when it is not one (a part without ``=``, a tag twice)."""
    found: dict[str, bytes] = {}
    parts = value.split(b";")
    if parts and not parts[-1].strip():
        parts.pop()  # a trailing ";" is allowed
    for part in parts:
        match = _TAG.match(part)
        if match is None:
            return None
        name = match.group(1).decode().lower()
        if name in found:
            return None
        found[name] = _SPACE.sub(b"", match.group(2))
    return found


def _instance(text: bytes | None) -> int | None:
    """An ``i=`` value: digits, at least 1 (past 50 is read, to be refused as too many)."""
    if text is None or not text.isdigit() or len(text) > 6:
        return None
    number = int(text)
    return number if number >= 1 else None


def _arc_fields(fields: Sequence[bytes]) -> list[_Field]:
    found = []
    for field in fields:
        kind = dkim.field_name(field)
        if kind not in _TITLE:
            continue
        value = field.partition(b":")[2]
        if kind == AAR:
            match = _AAR_INSTANCE.match(value)
            found.append(_Field(kind, _instance(match.group(1) if match else None), field, {}))
            continue
        tags = _tags(value)
        instance = _instance(tags.get("i")) if tags is not None else None
        found.append(_Field(kind, instance, field, tags or {}))
    return found


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "replace")


def _domain(field: _Field) -> str:
    return _text(field.tags.get("d")).lower().rstrip(".")


def _key_name(field: _Field) -> str:
    return f"{_text(field.tags.get('s'))}._domainkey.{_domain(field)}".lower()


def _structure(arc: Sequence[_Field]) -> list[_Set] | ARCResult:
    """RFC 8617 §5.2 steps 1-3: the sets in instance order, or the result when that ends it."""
    if not arc:
        return ARCResult("none", 0, (), "")
    count = max((f.instance or 0 for f in arc), default=0)
    seals = sorted((f for f in arc if f.kind == AS and f.instance), key=lambda f: f.instance or 0)
    sealers = tuple(_domain(f) for f in seals)

    def failed(reason: str) -> ARCResult:
        return ARCResult("fail", count, sealers, reason)

    for field in arc:
        if field.instance is None:
            return failed(f"{_TITLE[field.kind]} without a valid i= tag")
    if count > MAX_INSTANCES:  # step 1
        return failed(f"more than {MAX_INSTANCES} ARC sets")
    by_instance: dict[int, dict[str, list[_Field]]] = {}
    for field in arc:
        assert field.instance is not None
        by_instance.setdefault(field.instance, {}).setdefault(field.kind, []).append(field)
    newest_seals = by_instance.get(count, {}).get(AS, [])
    if any(f.tags.get("cv", b"").lower() == b"fail" for f in newest_seals):  # step 2
        return failed(f"ARC-Seal i={count} has cv=fail: the chain was already broken")
    sets = []
    for i in range(1, count + 1):  # step 3
        kinds = by_instance.get(i, {})
        for kind in _IN_SET:
            found = len(kinds.get(kind, []))
            if found != 1:
                what = "no" if found == 0 else f"{found}"
                return failed(f"ARC set i={i} has {what} {_TITLE[kind]}")
        sets.append(_Set(kinds[AAR][0], kinds[AMS][0], kinds[AS][0]))
    for i, arc_set in enumerate(sets, 1):
        tags = arc_set.seal.tags
        expected = b"none" if i == 1 else b"pass"
        cv = tags.get("cv", b"").lower()
        if cv != expected:
            return failed(f"ARC-Seal i={i} has cv={_text(cv)}, not {_text(expected)}")
        if "h" in tags:  # RFC 8617 §4.1.3: h= is not allowed in an ARC-Seal
            return failed(f"ARC-Seal i={i} has an h= tag")
    for field in (sets[-1].ams, *(s.seal for s in sets)):
        if not field.tags.get("d") or not field.tags.get("s"):
            return failed(f"{_TITLE[field.kind]} i={field.instance} without d= or s=")
    return sets


# -- validation ------------------------------------------------------------------------------


async def verify_arc(message: bytes, resolver: dns.asyncresolver.Resolver) -> ARCResult:
    """Validate the chain of ``message`` (as received, CRLF line ends; RFC 8617 §5.2). Keys
    are fetched through ``resolver``; the signatures are checked in a worker thread."""
    fields, _ = dkim.split(message)
    checked = _structure(_arc_fields(fields))
    if isinstance(checked, ARCResult):
        return checked
    sets = checked
    count = len(sets)
    sealers = tuple(_domain(s.seal) for s in sets)
    names = sorted({_key_name(sets[-1].ams)} | {_key_name(s.seal) for s in sets})
    keys: dict[str, bytes] = {}
    for name, found in (await fetch_keys(resolver, names)).items():
        if isinstance(found, TempDNSError):
            return ARCResult("fail", count, sealers, f"{TEMPORARY} looking up {name}")
        if found is not None:
            keys[name] = found
    passed, reason = await asyncio.to_thread(_signatures, message, count, keys)
    if passed:
        return ARCResult("pass", count, sealers, "")
    return ARCResult("fail", count, sealers, reason)


class _Validator(dkimpy.ARC):  # type: ignore[misc]  # dkimpy has no type hints
    """dkimpy's ARC validation, with the older ARC-Message-Signatures skipped (RFC 8617 §5.2
    step 5 is optional; they do not count, and each would hash the body once more)."""

    def __init__(self, message: bytes, newest: int) -> None:
        super().__init__(message, logger=_dkimpy_log, minkey=MIN_RSA_BITS)
        self.newest = newest

    def verify_sig(
        self,
        sig: dict[bytes, bytes],
        include_headers: list[bytes],
        sig_header: tuple[bytes, bytes],
        dnsfunc: Callable[..., bytes | None],
    ) -> bool:
        if sig_header[0].lower() == AMS.encode() and _instance(sig.get(b"i")) != self.newest:
            return False
        return bool(super().verify_sig(sig, include_headers, sig_header, dnsfunc))


def _signatures(message: bytes, newest: int, keys: Mapping[str, bytes]) -> tuple[bool, str]:
    """Steps 4 and 6 by dkimpy, its key lookups answered from ``keys``: (passed, why not)."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return keys.get(name.decode("ascii", "replace").lower().rstrip("."))

    try:
        cv, results, reason = _Validator(message, newest).verify(dnsfunc=lookup)
    except Exception as exc:  # dkimpy on input it did not expect (IndexError, ValueError)
        return False, f"unreadable ARC field: {exc}"
    if cv == dkimpy.CV_Pass:
        return True, ""
    if results and not results[0].get("ams-valid"):
        # The usual failure: the message changed since the newest seal (or its key is gone).
        return False, f"ARC-Message-Signature i={newest} did not verify"
    return False, str(reason)


# -- sealing ---------------------------------------------------------------------------------


def seal(
    message: bytes,
    *,
    key: DkimKey,
    authserv_id: str,
    authentication_results: str,
    chain: ARCResult,
    now: int | None = None,
) -> bytes:
    """The three ARC header fields of the next instance (ARC-Seal, ARC-Message-Signature,
    ARC-Authentication-Results, top to bottom), CRLF-terminated, to prepend to ``message``.

    ``authentication_results`` is the payload of the Authentication-Results we computed,
    without the field name (``mx.b.test; spf=pass smtp.mailfrom=example.org; arc=pass``);
    ``authserv_id`` is put in front when it does not begin with it. ``cv=`` follows ``chain``
    (:func:`verify_arc` on this message): none without a chain, pass when it passed, fail
    otherwise (RFC 8617 §5.1.2: the seal then covers only the new set). Nothing (``b""``)
    when the chain cannot grow: its newest seal says ``cv=fail`` (§5.1 step 2) or it already
    has 50 sets (§4.2.1). ``key`` must be RSA: ARC validators know only rsa-sha256.
    """
    if key.algorithm != dkim.RSA:
        raise dkim.UnusableKey(
            f"{key.selector}._domainkey.{key.domain}: ARC seals with rsa-sha256 only"
        )
    signer = _signing_key(key.domain, key.selector, key.private_key)
    timestamp = int(time.time()) if now is None else now
    fields, body = dkim.split(message)
    arc = _arc_fields(fields)
    newest = max((f.instance or 0 for f in arc), default=0)
    if any(f.kind == AS and f.instance == newest and _cv(f) == "fail" for f in arc):
        return b""  # RFC 8617 §5.1 step 2
    instance = newest + 1
    if instance > MAX_INSTANCES:
        return b""
    structure = _structure(arc)
    if not arc:
        cv, previous = "none", []
    elif chain.result == "pass" and chain.instances == newest and isinstance(structure, list):
        cv, previous = "pass", structure
    else:
        cv, previous = "fail", []

    aar = _fold_payload(
        f"ARC-Authentication-Results: i={instance}; "
        + _payload(authserv_id, authentication_results)
    )

    # RFC 8617 §4.1.2: DKIM's fields, the DKIM-Signatures too, never ARC's nor
    # Authentication-Results (neither is in dkim.SIGNED).
    names = dkim.choose_fields(fields)
    names += ["dkim-signature"] * sum(1 for f in fields if dkim.field_name(f) == "dkim-signature")
    ams_template = (
        f"i={instance}; a={dkim.RSA}; c=relaxed/relaxed; d={key.domain};\r\n"
        f" s={key.selector}; t={timestamp};\r\n"
        f" h={dkim.fold_list(names)};\r\n"
        f" bh={dkim.body_hash(body)};\r\n"
        " b="
    )
    ams_data = dkim.signed_headers(fields, names) + dkim.relaxed_field(
        b"ARC-Message-Signature: " + ams_template.encode()
    )
    ams = dkim.finish(ams_template, signer.sign(ams_data), name="ARC-Message-Signature")

    # RFC 8617 §5.1.1: every set in instance order, AAR, AMS then AS, the new one last with an
    # empty b=; §5.1.2: only the new set when the chain failed.
    seal_template = (
        f"i={instance}; a={dkim.RSA}; cv={cv}; d={key.domain}; s={key.selector};\r\n"
        f" t={timestamp}; b="
    )
    sealed = [f.raw for s in previous for f in (s.aar, s.ams, s.seal)]
    sealed += [aar.removesuffix(b"\r\n"), ams.removesuffix(b"\r\n")]
    seal_data = b"".join(dkim.relaxed_field(f) + b"\r\n" for f in sealed) + dkim.relaxed_field(
        b"ARC-Seal: " + seal_template.encode()
    )
    arc_seal = dkim.finish(seal_template, signer.sign(seal_data), name="ARC-Seal")
    return arc_seal + ams + aar


@functools.lru_cache(maxsize=64)
def _signing_key(domain: str, selector: str, pem: str) -> dkim.SigningKey:
    """A key parsed once (OpenSSL checks an RSA key as it loads it: milliseconds)."""
    return dkim.SigningKey.from_pem(domain, selector, pem)


def _cv(field: _Field) -> str:
    return _text(field.tags.get("cv")).lower()


def _payload(authserv_id: str, results: str) -> str:
    """The Authentication-Results payload on one line, beginning with ``authserv_id``."""
    results = _CONTROL.sub(" ", _FOLDING.sub("", results)).strip()
    first = results.split(";", 1)[0].split()
    if not first or first[0].lower() != authserv_id.lower():
        results = f"{authserv_id}; {results}" if results else f"{authserv_id}; none"
    return results


def _fold_payload(field: str, width: int = 78) -> bytes:
    """The field folded after the ``;`` between results where a line would grow past
    ``width`` (only white space is added: the unfolded text is the same)."""
    lines = [""]
    for part in field.split("; "):
        if lines[-1] and len(lines[-1]) + len(part) + 2 > width:
            lines[-1] += ";"
            lines.append(" " + part)
        elif lines[-1]:
            lines[-1] += "; " + part
        else:
            lines[-1] = part
    return ("\r\n".join(lines) + "\r\n").encode()
