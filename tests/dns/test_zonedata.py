"""The zones built from the store, on SQLite and PostgreSQL: the serial stays while nothing
changes and moves when something does (a record, a new signing period), two nodes building
from one store serve the same serial and sign with the same key, and a hosted subdomain is
delegated from its parent with its DS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dns.name
import dns.rdatatype

from courrier import provisioning
from courrier.config import Settings
from courrier.dns.records import Record
from courrier.dns.signing import PERIOD, Algorithm
from courrier.dns.zonedata import ZoneBuilder
from courrier.store import Store

NOW = 1_800_000_000
SETTINGS = Settings()


def builder(store: Store, algorithm: int | None = Algorithm.ECDSAP256SHA256) -> ZoneBuilder:
    async def records_of(domain: str) -> list[Record]:
        return await provisioning.domain_records(store, SETTINGS, domain, now=NOW)

    return ZoneBuilder("mail.example.org", records_of, dnssec_algorithm=algorithm)


def by_origin(zones: list[Any]) -> dict[str, Any]:
    return {z.origin.to_text(omit_final_dot=True): z for z in zones}


async def test_the_serial_moves_only_with_the_content(store: Store) -> None:
    await store.add_domain("example.org")
    first = by_origin(await builder(store).build(store, NOW))["example.org"]
    assert first.serial == NOW and first.signed
    again = by_origin(await builder(store).build(store, NOW + 60))["example.org"]
    assert again.serial == NOW  # a new process, same content: same serial
    await store.add_dns_record("example.org", "www.example.org", "A", "192.0.2.3", 300)
    changed = by_origin(await builder(store).build(store, NOW + 120))["example.org"]
    assert changed.serial == NOW + 120
    assert (dns.name.from_text("www.example.org"), dns.rdatatype.A) in changed.signatures
    # Two changes within a second still get two serials.
    await store.add_dns_record("example.org", "www2.example.org", "A", "192.0.2.4", 300)
    quick = by_origin(await builder(store).build(store, NOW + 120))["example.org"]
    assert quick.serial == NOW + 121
    # A new signing period signs anew: new signatures, new serial.
    later = by_origin(await builder(store).build(store, NOW + PERIOD))["example.org"]
    assert later.serial == NOW + PERIOD
    mx = (dns.name.from_text("example.org"), dns.rdatatype.MX)
    assert later.signatures[mx][0].expiration > quick.signatures[mx][0].expiration


async def test_two_nodes_serve_the_same_zone(store_opener: Callable[..., Any]) -> None:
    one: Store = await store_opener()
    two: Store = await store_opener()
    try:
        await one.add_domain("example.org")
        zone_one = by_origin(await builder(one).build(one, NOW))["example.org"]
        zone_two = by_origin(await builder(two).build(two, NOW + 30))["example.org"]
        assert zone_two.serial == zone_one.serial
        assert list(zone_two.records()) == list(zone_one.records())  # same key, signatures
    finally:
        await one.close()
        await two.close()


async def test_a_hosted_subdomain_is_delegated_with_its_ds(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_domain("prenom.example.org")
    build = builder(store)
    zones = by_origin(await build.build(store, NOW))
    parent = zones["example.org"]
    child = dns.name.from_text("prenom.example.org")
    ns = parent.rrsets[(child, dns.rdatatype.NS)]
    assert [r.target.to_text() for r in ns] == ["mail.example.org."]
    (ds,) = parent.rrsets[(child, dns.rdatatype.DS)]
    key = await build.signing_key(store, "prenom.example.org")
    assert ds == key.ds()
    assert zones["prenom.example.org"].rrsets[(child, dns.rdatatype.DNSKEY)][0] == key.dnskey
    # Unsigned zones delegate without a DS.
    plain = by_origin(await builder(store, None).build(store, NOW))["example.org"]
    assert (child, dns.rdatatype.DS) not in plain.rrsets and not plain.signed


async def test_ed25519_is_a_key_of_its_own(store: Store) -> None:
    await store.add_domain("example.org")
    ecdsa = await builder(store).signing_key(store, "example.org")
    ed = await builder(store, Algorithm.ED25519).signing_key(store, "example.org")
    assert ecdsa.dnskey.algorithm == 13 and ed.dnskey.algorithm == 15
    again = await builder(store, Algorithm.ED25519).signing_key(store, "example.org")
    assert again.dnskey == ed.dnskey  # kept in the store
