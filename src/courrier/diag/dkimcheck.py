"""A domain's DKIM public keys (RFC 6376 §3.6.1), looked up at ``SELECTOR._domainkey.DOMAIN``.

Selectors cannot be listed from the DNS, so the check looks at the ones given and, when none
is, at the names the big senders use (Microsoft 365's ``selector1``/``selector2``, Google
Workspace's ``google``, Mailchimp's ``k1``…). Findings per key found: the tags parse, the key
is there (an empty ``p=`` revokes it, §3.6.1), its type and size — RSA under 1024 bits is
refused by verifiers (RFC 8301 §3.2), under 2048 warned about —, SHA-1 only (``h=sha1``:
RFC 8301 §3.1 forbids it) and test mode (``t=y``: verifiers may treat signatures as absent).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from typing import Final

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from courrier.diag.findings import Finding, error, info, ok, warning
from courrier.diag.lookups import Lookups
from courrier.mailauth.dkimverify import tags

__all__ = ["COMMON_SELECTORS", "check_dkim"]

_G = "authentication"

#: Tried when no selector is given: common defaults of mail software and senders.
COMMON_SELECTORS: Final = (
    "default",
    "dkim",
    "mail",
    "selector1",
    "selector2",
    "google",
    "k1",
    "k2",
    "s1",
    "s2",
    "s1024",
    "s2048",
    "smtp",
    "mx",
    "key1",
    "sig1",
    "mailjet",
    "everlytickey1",
    "zoho",
)


async def check_dkim(lookups: Lookups, domain: str, selectors: Sequence[str] = ()) -> list[Finding]:
    asked = list(dict.fromkeys(selectors or COMMON_SELECTORS))
    names = [f"{s}._domainkey.{domain}" for s in asked]
    looked = await asyncio.gather(*(lookups.txt(n) for n in names))
    findings: list[Finding] = []
    for selector, name, answer in zip(asked, names, looked, strict=True):
        keys = [t for t in answer.texts if "p=" in t]
        if keys:
            findings += _key(name, keys[0])
            if len(keys) > 1:
                findings.append(
                    error(
                        _G,
                        "dkim.key",
                        name,
                        f"{len(keys)} key records at one selector",
                        "RFC 6376 §3.6.2.2: verifiers may take either record; signatures "
                        "made with the other key fail.",
                        "Keep one key record per selector.",
                    )
                )
        elif selectors:
            why = answer.error or "no key record"
            findings.append(
                error(
                    _G,
                    "dkim.key",
                    name,
                    f"selector {selector}: {why}",
                    "Mail signed with this selector fails DKIM: verifiers cannot find the key.",
                    f"Publish the public key of selector {selector} at {name}.",
                )
            )
    if not selectors and not findings:
        findings.append(
            info(
                _G,
                "dkim.key",
                domain,
                "no DKIM key under the common selectors; selectors cannot be listed from the DNS",
                "Give the selectors your mail is signed with (the s= of its DKIM-Signature) "
                "with --selector to check their keys.",
                tried=asked,
            )
        )
    return findings


def _key(name: str, text: str) -> list[Finding]:
    found = tags(text.encode("utf-8", "replace"))
    version = found.get("v", b"DKIM1")
    if version != b"DKIM1":
        return [_broken(name, f"v={version.decode(errors='replace')}, not DKIM1")]
    key_type = found.get("k", b"rsa").decode(errors="replace").lower()
    data = found.get("p", b"")
    if not data:
        return [
            info(
                _G,
                "dkim.key",
                name,
                "revoked (empty p=)",
                "RFC 6376 §3.6.1: signatures with this selector fail; fine for a retired key.",
            )
        ]
    try:
        der = base64.b64decode(data, validate=True)
    except binascii.Error:
        return [_broken(name, "p= is not base64")]
    findings = [_strength(name, key_type, der)]
    hashes = found.get("h", b"sha256").decode(errors="replace").lower().split(":")
    if "sha256" not in hashes:
        findings.append(
            error(
                _G,
                "dkim.hash",
                name,
                f"h={':'.join(hashes)}: SHA-256 not allowed",
                "RFC 8301 §3.1: signatures with SHA-1 are not valid; the key is unusable.",
                "Remove the h= tag, or set h=sha256.",
            )
        )
    flags = found.get("t", b"").decode(errors="replace").lower().split(":")
    if "y" in flags:
        findings.append(
            warning(
                _G,
                "dkim.testing",
                name,
                "t=y: the domain is testing DKIM",
                "RFC 6376 §3.6.1: verifiers may treat signatures with this key as if "
                "unsigned, so they do not count for DMARC.",
                "Remove t=y once signing works.",
            )
        )
    return findings


def _strength(name: str, key_type: str, der: bytes) -> Finding:
    if key_type == "ed25519":
        if len(der) != 32:
            return _broken(name, "an Ed25519 key is 32 bytes (RFC 8463 §4.2)")
        return ok(_G, "dkim.key", name, "Ed25519 key", type="ed25519")
    if key_type != "rsa":
        return _broken(name, f"unknown key type k={key_type}")
    try:
        key = load_der_public_key(der)
    except ValueError:
        return _broken(name, "p= is not an RSA public key")
    if not isinstance(key, rsa.RSAPublicKey):
        return _broken(name, "k=rsa but p= holds another kind of key")
    bits = key.key_size
    if bits < 1024:
        return error(
            _G,
            "dkim.key",
            name,
            f"RSA key of {bits} bits",
            "RFC 8301 §3.2: verifiers must not accept RSA keys under 1024 bits; signatures fail.",
            "Make a 2048-bit key, publish it under a new selector and sign with it.",
            type="rsa",
            bits=bits,
        )
    if bits < 2048:
        return warning(
            _G,
            "dkim.key",
            name,
            f"RSA key of {bits} bits",
            "1024-bit RSA is within reach of factoring; RFC 8301 §3.2 asks signers for 2048 "
            "bits and some receivers distrust smaller keys.",
            "Make a 2048-bit key, publish it under a new selector and sign with it.",
            type="rsa",
            bits=bits,
        )
    return ok(_G, "dkim.key", name, f"RSA key of {bits} bits", type="rsa", bits=bits)


def _broken(name: str, problem: str) -> Finding:
    return error(
        _G,
        "dkim.key",
        name,
        f"unusable key record: {problem}",
        "Verifiers cannot use the key: every signature with this selector fails.",
        "Publish the record as your signer gives it: v=DKIM1; k=rsa; p=<base64 key>.",
    )
