"""The zones of our domains, built from the records each publishes (what courrier recommends,
:mod:`courrier.dns.records`: MX, SPF, DKIM, DMARC, SRV, autoconfig) with the SOA and NS that
make them a zone, and the mail host's addresses when its name is inside the zone.

The serial (RFC 1982 arithmetic is left to the secondaries) is the build time in seconds,
moved only when the content changed: a rebuild with nothing new keeps the zone, serial,
signatures and all. Signed zones (DNSSEC, :mod:`courrier.dns.signing`) carry the DS of the
hosted subdomains they delegate, so the chain of trust runs through our own zones.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence

import dns.name
import dns.rrset

from courrier.dns.records import Record
from courrier.dns.signing import SigningKey, new_key, period_start, sign
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
    delegations: Sequence[str] = (),
) -> Zone:
    """The unsigned zone of ``domain``: SOA, NS, the records, and NS for the hosted
    subdomains in ``delegations`` (their own zones, served here too)."""
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
    for record in records:
        value = record.zone_line().split("\t", 4)[4]
        sets.append(rrset(record.name + ".", record.ttl, record.type, value))
    sets.extend(rrset(child + ".", 3600, "NS", f"{host}.") for child in delegations)
    return Zone(origin, sets)


def signed_zone(zone: Zone, key: SigningKey, now: int, ds: Sequence[dns.rrset.RRset]) -> Zone:
    """``zone`` with the DS records of its signed children, signed with ``key``."""
    rrsets = [*zone.rrsets.values(), *ds]
    signed = sign(zone.origin, rrsets, key, now=now, negative_ttl=zone.negative_ttl())
    return Zone(zone.origin, [*rrsets, *signed.rrsets], signed.signatures)


#: The records a domain publishes (``courrier.provisioning.domain_records``, given by the
#: server: the DKIM keys' states are the mail side's business).
RecordsOf = Callable[[str], Awaitable[list[Record]]]


class ZoneBuilder:
    """Builds the zones of every hosted domain, signed when ``dnssec_algorithm`` is given.

    A zone is built anew only when its content changed (a record, a key, a new signing
    period); its serial is then moved in the store (:meth:`Store.zone_serial`), where every
    node finds the same serial for the same content.
    """

    def __init__(
        self,
        hostname: str,
        records_of: RecordsOf,
        *,
        dnssec_algorithm: int | None = None,
    ) -> None:
        self.hostname = hostname
        self.records_of = records_of
        self.algorithm = dnssec_algorithm
        #: domain → (content digest, zone) of the last build.
        self._built: dict[str, tuple[str, Zone]] = {}
        self._keys: dict[str, SigningKey] = {}

    async def build(self, store: Store, now: int | None = None) -> list[Zone]:
        now = int(time.time()) if now is None else now
        domains = [d.name for d in await store.list_domains()]
        keys = {d: await self.signing_key(store, d) for d in domains} if self.algorithm else {}
        children = _children(domains)
        zones = []
        for domain in domains:
            records = await self.records_of(domain)
            ds = [
                dns.rrset.from_rdata_list(dns.name.from_text(c), 3600, [keys[c].ds()])
                for c in children[domain]
                if c in keys
            ]
            lines = [r.zone_line() for r in records]
            lines += children[domain]
            lines += [r.to_text() for r in ds]
            key = keys.get(domain)
            if key is not None:
                lines.append(f"signed {key.dnskey.algorithm} {key.tag} {period_start(now)}")
            digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
            built = self._built.get(domain)
            if built is None or built[0] != digest:
                serial = await store.zone_serial(domain, digest, now)
                zone = zone_of(
                    domain,
                    self.hostname,
                    records,
                    serial=serial,
                    delegations=children[domain],
                )
                if key is not None:
                    zone = await asyncio.to_thread(signed_zone, zone, key, now, ds)
                built = self._built[domain] = (digest, zone)
            zones.append(built[1])
        for gone in set(self._built) - set(domains):
            del self._built[gone]
        return zones

    async def signing_key(self, store: Store, domain: str) -> SigningKey:
        """The zone's key for our algorithm (:func:`zone_key`), remembered."""
        assert self.algorithm is not None
        key = self._keys.get(domain)
        if key is None or key.dnskey.algorithm != self.algorithm:
            key = self._keys[domain] = await zone_key(store, domain, self.algorithm)
        return key


async def zone_key(store: Store, domain: str, algorithm: int) -> SigningKey:
    """``domain``'s signing key for ``algorithm``, made and kept in the store on first use
    (by whichever node, or ``courrier dns ds``, asks first)."""
    kept = await store.dnssec_key(domain, algorithm)
    if kept is None:
        pem = await asyncio.to_thread(new_key, algorithm)
        kept = await store.add_dnssec_key(domain, algorithm, pem)
    return SigningKey.from_pem(dns.name.from_text(domain), kept.algorithm, kept.private_key)


def _children(domains: Sequence[str]) -> dict[str, list[str]]:
    """For each domain, the hosted domains whose nearest hosted parent it is (delegated
    subdomains: ``prenom.labmail.cloud`` under ``labmail.cloud``)."""
    hosted = set(domains)
    children: dict[str, list[str]] = {d: [] for d in domains}
    for domain in domains:
        parent = domain.partition(".")[2]
        while parent and parent not in hosted:
            parent = parent.partition(".")[2]
        if parent:
            children[parent].append(domain)
    return children
