"""DNS questions as a diagnosis asks them: every outcome is an answer, never an exception.

A check must go on when one name fails, and it must tell apart "nothing published" (NXDOMAIN,
NODATA: RFC 2308) from "the DNS did not answer" (SERVFAIL, timeout) — the first is a finding
about the domain, the second about the DNS. :class:`Lookups` asks through the stub resolver
(:func:`courrier.dns.resolver.make_resolver`), keeps each answer for the run (the SPF tree, the
MX hosts and DANE ask the same names again) and says whether the resolver validated the answer
(the AD bit, RFC 4035 §3.2.3, meaningful only from a validating resolver).
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.name
import dns.rdata
import dns.rdatatype
import dns.resolver
import dns.reversename

__all__ = ["Looked", "Lookups", "reverse_name"]


@dataclass(frozen=True, slots=True)
class Looked:
    """The records of one name and type; ``missing`` says why there are none (``nxdomain``:
    the name does not exist; ``nodata``: not of this type), ``error`` that the DNS gave no
    answer. ``alias`` is the name a CNAME led to, ``validated`` the AD bit."""

    records: tuple[dns.rdata.Rdata, ...] = ()
    missing: str = ""
    error: str = ""
    alias: str = ""
    validated: bool = False

    @property
    def texts(self) -> list[str]:
        """TXT records, each one's strings joined (RFC 7208 §3.3), as text."""
        out = []
        for record in self.records:
            strings = getattr(record, "strings", None)
            if strings is not None:
                out.append(b"".join(strings).decode("utf-8", "replace"))
        return out

    @property
    def void(self) -> bool:
        """RFC 7208 §4.6.4: a lookup that found nothing (NXDOMAIN or no records)."""
        return not self.error and not self.records


class Lookups:
    """One diagnosis's DNS questions, answered once each."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self.resolver = resolver
        self._asked: dict[tuple[str, str], asyncio.Task[Looked]] = {}

    async def ask(self, name: str, rdtype: str) -> Looked:
        key = (name.lower().rstrip("."), rdtype.upper())
        task = self._asked.get(key)
        if task is None:
            task = asyncio.ensure_future(self._ask(*key))
            self._asked[key] = task
        return await asyncio.shield(task)

    async def txt(self, name: str) -> Looked:
        return await self.ask(name, "TXT")

    async def addresses(self, host: str) -> tuple[list[str], str]:
        """The IPv4 and IPv6 addresses of ``host`` and, when neither lookup was answered,
        why (else "")."""
        four, six = await asyncio.gather(self.ask(host, "A"), self.ask(host, "AAAA"))
        found = [r.to_text() for r in four.records + six.records]
        error = four.error if four.error and (six.error or not found) else ""
        return found, error

    async def _ask(self, name: str, rdtype: str) -> Looked:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            return Looked(error=f"{name!r} is not a valid DNS name ({exc})")
        try:
            answer = await self.resolver.resolve(qname, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Looked(missing="nxdomain")
        except dns.exception.DNSException as exc:
            return Looked(error=_reason(exc))
        validated = bool(answer.response.flags & dns.flags.AD)
        rrset = answer.rrset
        if rrset is None:
            return Looked(missing="nodata", validated=validated)
        owner = rrset.name.to_text(omit_final_dot=True).lower()
        return Looked(tuple(rrset), alias="" if owner == name else owner, validated=validated)


def _reason(exc: dns.exception.DNSException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "the DNS did not answer in time"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "no name server answered (SERVFAIL or REFUSED)"
    return f"the DNS gave no answer ({exc})"


def reverse_name(address: str) -> str:
    """``192.0.2.1`` → ``1.2.0.192.in-addr.arpa`` (RFC 1035 §3.5; RFC 3596 §2.5 for IPv6)."""
    return dns.reversename.from_address(str(ipaddress.ip_address(address))).to_text(
        omit_final_dot=True
    )
