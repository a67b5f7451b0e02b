"""The zones of our domains, built from the records each publishes (what courrier recommends,
:mod:`courrier.dns.records`: MX, SPF, DKIM, DMARC, SRV, autoconfig) with the SOA and NS that
make them a zone, and the mail host's addresses when its name is inside the zone.

The serial (RFC 1982 arithmetic is left to the secondaries) is the build time in seconds,
bumped only when the content changed since the last build: a rebuild with nothing new
keeps the zone, serial and all.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence

import dns.name
import dns.rrset

from courrier.dns.records import Record
from courrier.dns.zone import Zone, rrset
from courrier.store import Store

#: SOA timers (RFC 1912 §2.2 values): refresh, retry, expire, negative-caching minimum.
SOA_TIMERS = (3600, 900, 1209600, 300)


def zone_of(
    domain: str,
    hostname: str,
    records: Sequence[Record],
    *,
    serial: int,
    host_addresses: Sequence[str] = (),
) -> Zone:
    host = hostname.rstrip(".")
    refresh, retry, expire, minimum = SOA_TIMERS
    sets: list[dns.rrset.RRset] = [
        rrset(
            domain + ".",
            3600,
            "SOA",
            f"{host}. hostmaster.{domain}. {serial} {refresh} {retry} {expire} {minimum}",
        ),
        rrset(domain + ".", 3600, "NS", f"{host}."),
    ]
    origin = dns.name.from_text(domain)
    if dns.name.from_text(host).is_subdomain(origin):
        for address in host_addresses:
            kind = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
            sets.append(rrset(host + ".", 3600, kind, address))
    for record in records:
        value = record.zone_line().split("\t", 4)[4]
        sets.append(rrset(record.name + ".", record.ttl, record.type, value))
    return Zone(origin, sets)


#: The records a domain publishes (``courrier.provisioning.domain_records``, given by the
#: server: the DKIM keys' states are the mail side's business).
RecordsOf = Callable[[str], Awaitable[list[Record]]]


class ZoneBuilder:
    """Builds the zones of every hosted domain, keeping serials steady while nothing changes."""

    def __init__(
        self, hostname: str, records_of: RecordsOf, host_addresses: Sequence[str] = ()
    ) -> None:
        self.hostname = hostname
        self.records_of = records_of
        self.host_addresses = list(host_addresses)
        #: domain → (content digest, serial) of the last build.
        self._last: dict[str, tuple[str, int]] = {}

    async def build(self, store: Store, now: int | None = None) -> list[Zone]:
        now = int(time.time()) if now is None else now
        zones = []
        for domain in await store.list_domains():
            records = await self.records_of(domain.name)
            digest = hashlib.sha256("\n".join(r.zone_line() for r in records).encode()).hexdigest()
            last = self._last.get(domain.name)
            serial = last[1] if last and last[0] == digest else max(now, (last or ("", 0))[1] + 1)
            self._last[domain.name] = (digest, serial)
            zones.append(
                zone_of(
                    domain.name,
                    self.hostname,
                    records,
                    serial=serial,
                    host_addresses=self.host_addresses,
                )
            )
        return zones
