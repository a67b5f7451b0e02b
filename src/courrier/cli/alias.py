"""`courrier alias add|list|remove`."""

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


def register(sub: Subparsers) -> None:
    group = command_group(sub, "alias", "aliases and catch-alls")
    p = command(group, "add", "forward an address (or @domain, the catch-all) to targets", add)
    p.add_argument("address", help="alias address, or @domain for the catch-all")
    p.add_argument("targets", nargs="+", metavar="TARGET", help="where its mail goes")
    p = command(group, "list", "list aliases", list_, json=True)
    p.add_argument("--domain", help="only this domain's aliases")
    p = command(group, "remove", "remove an alias, or one of its targets", remove)
    p.add_argument("address")
    p.add_argument("target", nargs="?", help="remove only this target")


async def add(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        alias = await provisioning.add_alias(store, args.address, args.targets)
    print(f"{alias.address} → {', '.join(alias.targets)}")
    return OK


async def list_(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        domain = None if args.domain is None else provisioning.normalize_domain(args.domain)
        aliases = await store.list_aliases(domain)
    if args.json:
        print_json([{"address": a.address, "targets": list(a.targets)} for a in aliases])
    elif aliases:
        print_table(["ALIAS", "TARGETS"], [(a.address, ", ".join(a.targets)) for a in aliases])
    else:
        print("No aliases yet: courrier alias add info@example.org someone@example.org")
    return OK


async def remove(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        count = await provisioning.remove_alias(store, args.address, args.target)
    print(f"Removed {count} target(s) of {provisioning.normalize_alias_source(args.address)}.")
    return OK
