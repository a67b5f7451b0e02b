"""`courrier domain add|list|remove|dns`."""

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
    read_password_stdin,
)


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
    p = command(group, "relay", "send a domain's mail through a smarthost", relay, json=True)
    p.add_argument("name")
    p.add_argument("--host", metavar="HOST[:PORT]", help="the smarthost (port 587 by default)")
    p.add_argument("--security", choices=("starttls", "tls"), default="starttls")
    p.add_argument("--no-verify", action="store_true", help="do not check its certificate")
    p.add_argument("--username", default="", help="AUTH login at the smarthost")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the AUTH password from stdin"
    )
    p.add_argument("--clear", action="store_true", help="deliver to each MX again")


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
    settings, store = await open_from_args(args)
    async with store:
        name = await provisioning.hosted_domain(store, args.name)
        records = await provisioning.domain_records(store, settings, name)
    if args.json:
        print_json([r.as_json() for r in records])
        return OK
    print(f"; DNS records for {name}, mail server {settings.server.hostname}")
    for record in records:
        print(f"; {record.why}")
        print(record.zone_line())
    return OK


async def relay(args: argparse.Namespace) -> int:
    name = provisioning.normalize_domain(args.name)
    _, store = await open_from_args(args)
    async with store:
        if args.clear or args.host:
            password = read_password_stdin() if args.password_stdin else ""
            await provisioning.set_domain_relay(
                store,
                name,
                None if args.clear else args.host,
                security=args.security,
                verify=not args.no_verify,
                username=args.username,
                password=password,
            )
        elif await store.get_domain(name) is None:
            raise provisioning.InvalidInput(f"The domain {name} is not hosted here.")
        current = (await store.list_domain_relays()).get(name)
    if args.json:
        print_json(
            None
            if current is None
            else {
                "host": current.host,
                "port": current.port,
                "security": current.security,
                "verify": current.verify,
                "username": current.username,
            }
        )
    elif current is None:
        print(f"Mail from {name} goes straight to each recipient's MX.")
    else:
        login = f", AUTH as {current.username}" if current.username else ""
        check = "" if current.verify else ", certificate not checked"
        print(
            f"Mail from {name} goes through {current.host}:{current.port} "
            f"({current.security}{check}{login})."
        )
    return OK
