"""Transactions on what the authoritative DNS server keeps: records an admin adds to a hosted
domain's zone, each zone's serial, and each zone's DNSSEC signing key.

What this module owns: the rows, never their meaning. Which records are valid is
``courrier.dns.validate``'s business; what a zone holds, ``courrier.dns.zonedata``'s. A serial
is kept with the digest of the content it numbers so that every node serving the zone serves
the same serial for the same content, and it moves (to the build time, or by one) only when
the digest does. A zone has one key per algorithm; the first node to add it wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from courrier.store.directory import get_domain
from courrier.store.errors import AlreadyExists, NotFound
from courrier.store.tx import Row, Tx, one, rows, run


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """A record an admin added: ``name`` absolute without the final dot, ``type`` and
    ``value`` in zone-file syntax."""

    id: int
    domain: str
    name: str
    type: str
    value: str
    ttl: int
    created_at: int


@dataclass(frozen=True, slots=True)
class DnssecKey:
    """A zone's signing key: the DNSSEC algorithm number and the private key (PKCS #8 PEM)."""

    domain: str
    algorithm: int
    private_key: str
    created_at: int


def _record(r: Row) -> DnsRecord:
    return DnsRecord(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), int(r[6]))


def _domain_id(domain: str) -> Tx[int]:
    found = yield from get_domain(domain)
    if found is None:
        raise NotFound(f"The domain {domain} is not hosted here.")
    return found.id


def add_record(domain: str, name: str, type_: str, value: str, ttl: int, now: int) -> Tx[int]:
    domain_id = yield from _domain_id(domain)
    row = yield one(
        "INSERT INTO dns_records (domain_id, name, type, value, ttl, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (domain_id, name, type, value) DO NOTHING "
        "RETURNING id",
        domain_id,
        name,
        type_,
        value,
        ttl,
        now,
    )
    if row is None:
        raise AlreadyExists(f"{name} {type_} {value} is already in the zone.")
    return int(row[0])


def list_records(domain: str | None) -> Tx[list[DnsRecord]]:
    where, params = ("WHERE d.name = ? ", (domain,)) if domain else ("", ())
    found = yield rows(
        "SELECT r.id, d.name, r.name, r.type, r.value, r.ttl, r.created_at "
        f"FROM dns_records r JOIN domains d ON d.id = r.domain_id {where}"
        "ORDER BY d.name, r.name, r.type, r.id",
        *params,
    )
    return [_record(r) for r in found]


def remove_record(domain: str, record_id: int) -> Tx[None]:
    domain_id = yield from _domain_id(domain)
    row = yield one(
        "DELETE FROM dns_records WHERE domain_id = ? AND id = ? RETURNING id", domain_id, record_id
    )
    if row is None:
        raise NotFound(f"{domain} has no record {record_id}.")


def zone_serial(domain: str, digest: str, now: int) -> Tx[int]:
    """The serial of ``domain``'s zone whose content has ``digest``: the kept one while the
    content is the same, else the later of ``now`` and the kept one plus one."""
    domain_id = yield from _domain_id(domain)
    row = yield one("SELECT digest, serial FROM dns_zones WHERE domain_id = ?", domain_id)
    if row is None:
        yield run(
            "INSERT INTO dns_zones (domain_id, digest, serial, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (domain_id) DO NOTHING",
            domain_id,
            digest,
            now,
            now,
        )
    elif str(row[0]) != digest:
        # Compare-and-set on the old digest: of two nodes moving it at once, one moves it.
        yield run(
            "UPDATE dns_zones SET digest = ?, serial = ?, updated_at = ? "
            "WHERE domain_id = ? AND digest = ?",
            digest,
            max(now, int(row[1]) + 1),
            now,
            domain_id,
            str(row[0]),
        )
    row = yield one("SELECT serial FROM dns_zones WHERE domain_id = ?", domain_id)
    assert row is not None
    return int(row[0])


def signing_key(domain: str, algorithm: int) -> Tx[DnssecKey | None]:
    domain_id = yield from _domain_id(domain)
    row = yield one(
        "SELECT algorithm, private_key, created_at FROM dnssec_keys "
        "WHERE domain_id = ? AND algorithm = ?",
        domain_id,
        algorithm,
    )
    return None if row is None else DnssecKey(domain, int(row[0]), str(row[1]), int(row[2]))


def add_signing_key(domain: str, algorithm: int, private_key: str, now: int) -> Tx[DnssecKey]:
    """Keep ``private_key`` as the zone's key for ``algorithm`` unless another node kept one
    first; the key kept either way."""
    domain_id = yield from _domain_id(domain)
    yield run(
        "INSERT INTO dnssec_keys (domain_id, algorithm, private_key, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (domain_id, algorithm) DO NOTHING",
        domain_id,
        algorithm,
        private_key,
        now,
    )
    kept = yield from signing_key(domain, algorithm)
    assert kept is not None
    return kept
