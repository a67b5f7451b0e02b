"""TEMPORARY stand-in until the spf branch lands."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import dns.asyncresolver
import dns.resolver
import spf


@dataclass(frozen=True, slots=True)
class SPFResult:
    result: str
    identity: str
    domain: str
    sender: str
    explanation: str

    def received_spf(self, *, client_ip: str, helo: str, receiver: str) -> str:
        return (
            f"Received-SPF: {self.result} ({receiver}: {self.explanation}) client-ip={client_ip};"
            f' envelope-from="{self.sender}"; helo={helo}; receiver={receiver};'
            f" identity={self.identity}\r\n"
        )


async def check_spf(
    resolver: dns.asyncresolver.Resolver, *, client_ip: str, mail_from: str, helo: str
) -> SPFResult:
    ns = resolver.nameservers[0]

    def run() -> SPFResult:
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [ns.address]  # type: ignore[union-attr]
        r.port = ns.port  # type: ignore[union-attr]
        spf.DNSLookup = lambda name, qtype, tcpfallback=True, timeout=30: [  # type: ignore[attr-defined]
            ((name, qtype), list(x.strings) if qtype == "TXT" else x.to_text())
            for x in _q(r, name, qtype)
        ]
        identity = "mailfrom" if mail_from else "helo"
        sender = mail_from or f"postmaster@{helo}"
        q = spf.query(client_ip, sender, helo)
        result, _, expl = q.check()
        return SPFResult(result, identity, sender.rpartition("@")[2], sender, expl)

    return await asyncio.to_thread(run)


def _q(r: dns.resolver.Resolver, name: str, qtype: str) -> list:  # type: ignore[type-arg]
    try:
        return list(r.resolve(name, qtype))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
