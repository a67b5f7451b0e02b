"""The stub resolver every part of courrier looks names up with, and the TXT lookup that the
mail authentication checks (SPF, DKIM, DMARC, ARC, MTA-STS, TLS-RPT) share.

Queries go to ``dns.resolvers`` (``host[:port]``) or, when none are set, to the system's
resolvers. Answers are cached for their TTL. Queries ask for DNSSEC (the DO and AD bits,
RFC 6840 §5.7) so that callers can tell validated answers (DANE) from the rest.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.nameserver
import dns.resolver

from courrier.config import Settings, parse_hostport

__all__ = ["TempDNSError", "make_resolver", "txt_records"]


class TempDNSError(Exception):
    """The DNS did not answer (SERVFAIL, timeout): the answer is unknown, try again later."""


def make_resolver(settings: Settings, *, timeout: float = 10.0) -> dns.asyncresolver.Resolver:
    if not settings.dns.resolvers:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers = [parse_hostport(r, 53, key="dns.resolvers") for r in settings.dns.resolvers]
        resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in servers]
    resolver.lifetime = timeout
    # Answers kept for their TTL (negative ones for their SOA minimum, RFC 2308): a domain's
    # MX and addresses are looked up once, not for every message sent there.
    resolver.cache = dns.resolver.LRUCache(50_000)
    # DO: validated answers wanted; AD: tell us whether they were (RFC 6840 §5.7, §5.8).
    resolver.use_edns(0, dns.flags.DO, 1232)
    resolver.flags = dns.flags.RD | dns.flags.AD
    return resolver


async def txt_records(resolver: dns.asyncresolver.Resolver, name: str) -> list[bytes]:
    """The TXT records at ``name``, each one's strings joined (RFC 7208 §3.3, RFC 6376
    §3.6.2.2); empty when the name or the records do not exist; :class:`TempDNSError` when
    the DNS gave no answer."""
    try:
        answer = await resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise TempDNSError(f"TXT lookup for {name} failed: {exc}") from exc
    return [b"".join(record.strings) for record in answer]
