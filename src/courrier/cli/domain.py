"""`courrier domain add|list|remove|dns`."""

from __future__ import annotations

import argparse
import time

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
from courrier.dns.records import recommended_records
from courrier.mailauth import keys as dkim_keys


def register(sub: Subparsers) -> None:
    group = command_group(sub, "domain", "hosted domains")
    command(group, "add", "host a domain", add).add_argument("name")
    command(group, "list", "list hosted domains", list_, json=True)
    p = command(group, "remove", "stop hosting a domain", remove)
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="also remove its accounts and their mail")
    command(group, "dns", "DNS records to publish for a domain", dns, json=True).add_argument(
        "name"
    )


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
        keys = await store.list_dkim_keys(name)
    now = int(time.time())
    state = dkim_keys.states(keys, now)
    dkim = [
        (dkim_keys.record_name(k), dkim_keys.record_value(k), state[k.id])
        for k in dkim_keys.published(keys, now)
    ]
    records = recommended_records(name, settings.server.hostname, dkim)
    if args.json:
        print_json([r.as_json() for r in records])
        return OK
    print(f"; DNS records for {name}, mail server {settings.server.hostname}")
    for record in records:
        print(f"; {record.why}")
        print(record.zone_line())
    return OK
