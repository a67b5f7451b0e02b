"""What the DKIM tests share: dkimpy as the independent verifier, key lookups, and
publishing a server's keys in the DNS stand-in."""

from __future__ import annotations

from collections.abc import Callable

import dkim
import dns.resolver

from courrier import provisioning
from courrier.mailauth import dkim as ours
from tests.support.dnsstub import DNSStub
from tests.support.server import Running

#: dkimpy's ``dnsfunc``: a TXT record's text for a name, or None.
Lookup = Callable[..., bytes | None]


def table_lookup(records: dict[str, str]) -> Lookup:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        value = records.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    return lookup


def verified(message: bytes, lookup: Lookup) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature of ``message``, top first."""
    count = sum(1 for f in ours.split(message)[0] if ours.field_name(f) == "dkim-signature")
    checker = dkim.DKIM(message)
    results = []
    for i in range(count):
        try:
            results.append(bool(checker.verify(idx=i, dnsfunc=lookup)))
        except dkim.ValidationError:  # dkimpy raises on a body hash mismatch
            results.append(False)
    return results


def dns_lookup(resolver: str) -> Lookup:
    """dkimpy's TXT lookup, through the DNS stand-in (blocking: run it in a thread)."""
    host, _, port = resolver.partition(":")
    client = dns.resolver.Resolver(configure=False)
    client.nameservers = [host]
    client.port = int(port)

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = client.resolve(name.decode(), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(r.strings) for r in answer)

    return lookup


async def publish_dkim(server: Running, stub: DNSStub, domain: str = "example.org") -> None:
    """The key records the server's operator publishes (`courrier domain dns DOMAIN`)."""
    for record in await provisioning.domain_records(server.store, server.server.settings, domain):
        if "._domainkey." in record.name:
            stub.records[(record.name, "TXT")] = [record.zone_line().split("\tTXT\t", 1)[1]]
