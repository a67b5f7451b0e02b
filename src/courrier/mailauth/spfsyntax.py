"""The syntax of an SPF record (RFC 7208 §4.6.1 and the ABNF of §12), sans-IO and without DNS:
is this text a record a receiver can evaluate, and if not, which term is wrong?

Used where a record is written (an admin's TXT record in a zone we serve) and where one is
diagnosed; evaluating a record against a client is :mod:`courrier.mailauth.spf`'s business.
Macros (§7) are accepted where the ABNF allows a domain-spec, and checked for their form.
"""

from __future__ import annotations

import ipaddress
import re

_MACRO = r"(?:%\{[slodiphcrtv][0-9]*r?[.\-+,/_=]*\}|%%|%_|%-)"
_SPEC_CHAR = r"(?:[\x21-\x24\x26-\x7e]|" + _MACRO + ")"
#: domain-spec: macro-string ending in a domain-end (§7.1), loosely: no empty labels.
_DOMAIN_SPEC = re.compile(rf"{_SPEC_CHAR}+")
_CIDR = re.compile(r"^(?:/(\d{1,2}))?(?://(\d{1,3}))?$")
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9\-_.]*)=(.*)$")
_QUALIFIERS = "+-~?"


def syntax_error(record: str) -> str | None:
    """None when ``record`` is a well-formed SPF record, else what is wrong with it."""
    terms = record.split(" ")
    if terms[0].lower() != "v=spf1":
        return "an SPF record begins with v=spf1 (RFC 7208 §4.5)"
    seen: set[str] = set()
    for term in terms[1:]:
        if not term:
            continue  # several spaces between terms are allowed (§12: 1*SP)
        problem = _modifier(term, seen) if _is_modifier(term) else _mechanism(term)
        if problem:
            return f"{term!r}: {problem}"
    return None


def _is_modifier(term: str) -> bool:
    match = _MODIFIER.match(term)
    return match is not None and ":" not in match.group(1)


def _modifier(term: str, seen: set[str]) -> str | None:
    match = _MODIFIER.match(term)
    assert match is not None
    name, value = match.group(1).lower(), match.group(2)
    if name in ("redirect", "exp"):
        if name in seen:
            return f"{name}= appears twice (RFC 7208 §6)"
        seen.add(name)
        if not value or not _DOMAIN_SPEC.fullmatch(value):
            return f"{name}= needs a domain (RFC 7208 §6)"
    return None  # unknown modifiers are ignored (§6)


def _mechanism(term: str) -> str | None:
    body = term[1:] if term[0] in _QUALIFIERS else term
    name, sep, rest = body.partition(":")
    name = name.lower()
    if name == "all":
        return "all takes no argument" if sep else None
    if name in ("include", "exists"):
        if not sep or not _DOMAIN_SPEC.fullmatch(rest):
            return f"{name}: needs a domain (RFC 7208 §5.2, §5.7)"
        return None
    if name in ("ip4", "ip6"):
        return _ip(name, rest) if sep else f"{name}: needs an address (RFC 7208 §5.6)"
    for mech in ("a", "mx", "ptr"):
        if body.lower().startswith(mech) and _a_like(body[len(mech) :], mech == "ptr"):
            return None
    return "not a mechanism or modifier of RFC 7208 §5 (a, mx, ip4, ip6, include, all…)"


def _a_like(rest: str, ptr: bool) -> bool:
    """The tail of ``a``/``mx`` (``[:domain][/cidr][//cidr6]``) or ``ptr`` (``[:domain]``)."""
    domain, cidr = rest, ""
    if "/" in rest:
        slash = rest.index("/")
        domain, cidr = rest[:slash], rest[slash:]
    if domain and not (domain.startswith(":") and _DOMAIN_SPEC.fullmatch(domain[1:])):
        return False
    if ptr:
        return not cidr
    match = _CIDR.match(cidr)
    if match is None:
        return False
    v4, v6 = match.group(1), match.group(2)
    return (v4 is None or int(v4) <= 32) and (v6 is None or int(v6) <= 128)


def _ip(name: str, rest: str) -> str | None:
    address, _, length = rest.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if (name == "ip4") != (ip.version == 4):
        return f"{name} takes an IPv{name[-1]} address"
    if length and not (length.isdigit() and int(length) <= (32 if ip.version == 4 else 128)):
        return f"/{length} is not a prefix length"
    return None
