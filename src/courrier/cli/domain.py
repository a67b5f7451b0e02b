"""`courrier domain add|list|remove|dns`."""

from __future__ import annotations

import argparse

from courrier import provisioning
from courrier.cli.common import (
    OK,
    add_json_option,
    add_location_options,
    open_from_args,
    print_json,
    print_table,
)
from courrier.dns.records import recommended_records


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("domain", help="hosted domains").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = group.add_parser("add", help="host a domain")
    p.add_argument("name")
    add_location_options(p)
    p.set_defaults(func=add)
    p = group.add_parser("list", help="list hosted domains")
    add_location_options(p)
    add_json_option(p)
    p.set_defaults(func=list_)
    p = group.add_parser("remove", help="stop hosting a domain")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="also remove its accounts and their mail")
    add_location_options(p)
    p.set_defaults(func=remove)
    p = group.add_parser("dns", help="DNS records to publish for a domain")
    p.add_argument("name")
    add_location_options(p)
    add_json_option(p)
    p.set_defaults(func=dns)


async def add(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        domain = await provisioning.add_domain(store, args.name)
    print(f"Added domain {domain.name}. Publish its DNS records: courrier domain dns {domain.name}")
    return OK


async def list_(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        domains = await store.list_domains()
        counts = {d.name: len(await store.list_accounts(d.name)) for d in domains}
    if args.json:
        print_json(
            [
                {"name": d.name, "accounts": counts[d.name], "created_at": d.created_at}
                for d in domains
            ]
        )
    elif domains:
        print_table(["DOMAIN", "ACCOUNTS"], [(d.name, counts[d.name]) for d in domains])
    else:
        print("No domains yet: courrier domain add example.org")
    return OK


async def remove(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        removed = await provisioning.remove_domain(store, args.name, force=args.force)
    suffix = f" and {removed} account(s) with their mail" if removed else ""
    print(f"Removed domain {provisioning.normalize_domain(args.name)}{suffix}.")
    return OK


async def dns(args: argparse.Namespace) -> int:
    name = provisioning.normalize_domain(args.name)
    settings, store = await open_from_args(args)
    async with store:
        if await store.get_domain(name) is None:
            raise provisioning.InvalidInput(f"The domain {name} is not hosted here.")
    records = recommended_records(name, settings.server.hostname)
    if args.json:
        print_json([r.as_json() for r in records])
        return OK
    print(f"; DNS records for {name}, mail server {settings.server.hostname}")
    for record in records:
        print(f"; {record.why}")
        print(record.zone_line())
    return OK
