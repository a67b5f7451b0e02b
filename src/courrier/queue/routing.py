"""Where mail for a domain goes: its mail hosts in order, each with its addresses.

RFC 5321 §5.1: the MX records by preference, lowest first, those of equal preference in random
order; without MX records the domain itself is the one host (the implicit MX). A null MX
(RFC 7505: a single MX of preference 0 and host ".") says the domain takes no mail: that, and a
domain that does not exist, is final (:class:`NoMail`); a lookup that fails or times out is to
be tried again (:class:`LookupFailed`). The hosts' A and AAAA records come through the same
resolver (:mod:`courrier.dns.resolver`), IPv6 first. Queries ask for DNSSEC (the DO and AD
bits, RFC 6840 §5.7); a host is ``secure`` when the resolver said its MX answer (or the
authenticated absence of MX records) and its address answers were validated (the AD bit):
RFC 7672 §2.2 applies DANE only then.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.rdatatype
import dns.resolver

__all__ = [
    "Host",
    "LookupFailed",
    "NoMail",
    "addresses_of",
    "denial_validated",
    "route",
    "validated",
]


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    addresses: tuple[str, ...]
    #: The MX and address answers were DNSSEC-validated by the resolver (RFC 7672 §2.2.1).
    secure: bool = False
    #: The domain has no MX records: this is the domain itself (RFC 5321 §5.1).
    implicit: bool = False


class NoMail(Exception):
    """The domain takes no mail (null MX) or does not exist: give up now. ``code`` is the
    enhanced status code for the bounce."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class LookupFailed(Exception):
    """The DNS did not answer usefully now: try again later."""


def _validated(response: dns.message.Message | None) -> bool:
    return response is not None and bool(response.flags & dns.flags.AD)


def validated(answer: dns.resolver.Answer) -> bool:
    """The resolver validated this answer with DNSSEC (the AD bit)."""
    return _validated(answer.response)


def denial_validated(exc: dns.resolver.NoAnswer | dns.resolver.NXDOMAIN) -> bool:
    """The resolver validated that there are no such records (or no such name)."""
    # dnspython keeps the responses in the exception's kwargs (its accessors are untyped).
    if isinstance(exc, dns.resolver.NoAnswer):
        return _validated(exc.kwargs.get("response"))
    responses = exc.kwargs.get("responses", {}).values()
    return bool(responses) and all(_validated(r) for r in responses)


async def route(domain: str, resolver: dns.asyncresolver.Resolver) -> list[Host]:
    """The hosts to try for ``domain``, in order (a domain literal ``[192.0.2.1]`` is itself)."""
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        literal = literal[5:] if literal.lower().startswith("ipv6:") else literal
        return [Host(domain, (str(ipaddress.ip_address(literal)),))]
    try:
        answer = await resolver.resolve(domain, "MX")
        records = [(r.preference, r.exchange.to_text(omit_final_dot=True)) for r in answer]
        mx_secure = _validated(answer.response)
    except dns.resolver.NoAnswer as exc:
        records = []
        mx_secure = denial_validated(exc)
    except dns.resolver.NXDOMAIN:
        raise NoMail("5.1.2", f"the domain {domain} does not exist") from None
    except dns.exception.DNSException as exc:
        raise LookupFailed(f"MX lookup for {domain} failed: {exc}") from exc
    if any(name in ("", ".") for _, name in records):
        # RFC 7505 §3: a null MX; §4.2 gives 556 5.1.10 for mail to it.
        raise NoMail("5.1.10", f"the domain {domain} accepts no mail (null MX)")
    names = _ordered(records) if records else [domain]
    hosts = []
    failures = []
    for name in names:
        try:
            addresses, secure = await _addresses(name, resolver)
        except LookupFailed as exc:
            failures.append(str(exc))
            continue
        if addresses:
            hosts.append(Host(name, addresses, mx_secure and secure, implicit=not records))
    if not hosts:
        if failures:
            raise LookupFailed("; ".join(failures))
        raise NoMail("5.1.2", f"no address for the mail hosts of {domain}: {', '.join(names)}")
    return hosts


def _ordered(records: Sequence[tuple[int, str]]) -> list[str]:
    by_preference: dict[int, list[str]] = {}
    for preference, name in records:
        by_preference.setdefault(preference, []).append(name)
    out: list[str] = []
    for preference in sorted(by_preference):
        names = list(dict.fromkeys(by_preference[preference]))
        random.shuffle(names)
        out += names
    return out


async def addresses_of(name: str, resolver: dns.asyncresolver.Resolver) -> tuple[str, ...]:
    """A host's addresses, IPv6 first; :class:`NoMail` when it has none (a smarthost)."""
    found, _ = await _addresses(name, resolver)
    if not found:
        raise NoMail("5.4.4", f"{name} has no address")
    return found


async def _addresses(
    name: str, resolver: dns.asyncresolver.Resolver
) -> tuple[tuple[str, ...], bool]:
    """The addresses, and whether every answer (records or their absence) was validated."""
    found: list[str] = []
    secure = True
    for rdtype in (dns.rdatatype.AAAA, dns.rdatatype.A):
        try:
            answer = await resolver.resolve(name, rdtype)
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN) as exc:
            secure = secure and denial_validated(exc)
            continue
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"address lookup for {name} failed: {exc}") from exc
        secure = secure and _validated(answer.response)
        found += [r.address for r in answer]
    return tuple(found), secure
