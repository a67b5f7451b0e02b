"""`courrier dns record add|list|remove` and `courrier dns ds`: what an admin puts in the zones
courrier serves, and the DS record the parent zone publishes for DNSSEC."""

from __future__ import annotations

import argparse

from courrier import provisioning
from courrier.cli.common import (
    OK,
    Subparsers,
    command,
    command_group,
    open_from_args,
    print_json,
    print_table,
)
from courrier.dns.signing import ALGORITHMS
from courrier.dns.zonedata import zone_key


def register_into(group: Subparsers) -> None:
    records = command_group(group, "record", "records of your own in a zone courrier serves")
    p = command(records, "add", "add a record (checked first)", add, json=True)
    p.add_argument("domain")
    p.add_argument("name", help="@ for the domain itself, www, or an absolute name with a dot")
    p.add_argument("type", help="A, AAAA, CNAME, MX, TXT, SRV, CAA, TLSA, NS (delegation)…")
    p.add_argument("value", help='in zone-file syntax, e.g. "10 mx.example.net." or \'"text"\'')
    p.add_argument("--ttl", type=int, default=3600)
    command(records, "list", "records added to a domain", list_, json=True).add_argument("domain")
    p = command(records, "remove", "remove an added record by its id", remove)
    p.add_argument("domain")
    p.add_argument("id", type=int)
    p = command(group, "ds", "the DS record to give the parent zone (DNSSEC)", ds, json=True)
    p.add_argument("domain")


async def add(args: argparse.Namespace) -> int:
    settings, store = await open_from_args(args)
    async with store:
        record = await provisioning.add_dns_record(
            store, settings, args.domain, args.name, args.type, args.value, args.ttl
        )
    if args.json:
        print_json(record.as_json())
    else:
        print(f"Added {record.zone_line()}")
    return OK


async def list_(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        domain = await provisioning.hosted_domain(store, args.domain)
        found = await store.list_dns_records(domain)
    if args.json:
        print_json(
            [
                {"id": r.id, "name": r.name, "type": r.type, "value": r.value, "ttl": r.ttl}
                for r in found
            ]
        )
    elif found:
        print_table(
            ["ID", "NAME", "TTL", "TYPE", "VALUE"],
            [(r.id, r.name, r.ttl, r.type, r.value) for r in found],
        )
    else:
        print(f"No records of your own in {domain}: courrier dns record add {domain} …")
    return OK


async def remove(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        await provisioning.remove_dns_record(store, args.domain, args.id)
    print(f"Removed record {args.id}.")
    return OK


async def ds(args: argparse.Namespace) -> int:
    settings, store = await open_from_args(args)
    async with store:
        domain = await provisioning.hosted_domain(store, args.domain)
        key = await zone_key(store, domain, ALGORITHMS[settings.dns.dnssec_algorithm])
    ds_text, dnskey_text = key.ds().to_text(), key.dnskey.to_text()
    if args.json:
        print_json({"domain": domain, "key_tag": key.tag, "ds": ds_text, "dnskey": dnskey_text})
        return OK
    if not settings.dns.dnssec:
        print("; dns.dnssec is off: the zones are not signed; do not publish this DS yet.")
    print(f"; Give this DS record to the registrar or parent zone of {domain}:")
    print(f"{domain}.\t3600\tIN\tDS\t{ds_text}")
    print(f"; (from the key {key.tag}: {domain}. IN DNSKEY {dnskey_text})")
    return OK
