"""`courrier user add|list|passwd|remove`."""

from __future__ import annotations

import argparse
import getpass
import sys

from courrier import config, provisioning
from courrier.cli.common import (
    OK,
    Subparsers,
    command,
    command_group,
    human_size,
    open_from_args,
    print_json,
    print_table,
    read_password_stdin,
)


def register(sub: Subparsers) -> None:
    group = command_group(sub, "user", "mail accounts")
    p = command(group, "add", "create an account", add)
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true", help=_STDIN_HELP)
    p.add_argument("--quota", help="quota such as 2G or 500M (default: accounts.default_quota)")
    p.add_argument("--admin", action="store_true", help="give the account server-admin rights")
    p = command(group, "list", "list accounts", list_, json=True)
    p.add_argument("--domain", help="only this domain's accounts")
    p = command(group, "passwd", "change an account's password", passwd)
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true", help=_STDIN_HELP)
    command(group, "remove", "delete an account and all its mail", remove).add_argument("address")


_STDIN_HELP = "read the password from standard input (first line)"


def _password(args: argparse.Namespace, *, allow_generate: bool) -> str | None:
    if args.password_stdin:
        return read_password_stdin()
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            raise provisioning.InvalidInput("The two passwords differ.")
        return first
    if allow_generate:
        return None
    raise provisioning.InvalidInput("Give the password on standard input with --password-stdin.")


async def add(args: argparse.Namespace) -> int:
    quota = None
    if args.quota is not None:
        try:
            quota = config.parse_byte_size(args.quota, "--quota")
        except config.ConfigError as exc:
            raise provisioning.InvalidInput(str(exc)) from None
    password = _password(args, allow_generate=True)
    settings, store = await open_from_args(args)
    async with store:
        created = await provisioning.add_user(
            store,
            settings,
            args.address,
            password,
            quota_bytes=quota,
            role="admin" if args.admin else "user",
        )
    print(f"Added {created.account.address}.")
    if created.generated_password is not None:
        print(f"Password (shown once): {created.generated_password}")
    return OK


async def list_(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        domain = None if args.domain is None else provisioning.normalize_domain(args.domain)
        accounts = await store.list_accounts(domain)
    if args.json:
        print_json(
            [
                {
                    "address": a.address,
                    "role": a.role,
                    "quota_bytes": a.quota_bytes,
                    "used_bytes": a.used_bytes,
                    "disabled": a.disabled,
                    "created_at": a.created_at,
                }
                for a in accounts
            ]
        )
    elif accounts:
        print_table(
            ["ADDRESS", "ROLE", "USED", "QUOTA"],
            [
                (
                    a.address,
                    a.role,
                    human_size(a.used_bytes),
                    human_size(a.quota_bytes) if a.quota_bytes else "unlimited",
                )
                for a in accounts
            ],
        )
    else:
        print("No accounts yet: courrier user add someone@example.org")
    return OK


async def passwd(args: argparse.Namespace) -> int:
    password = _password(args, allow_generate=False)
    assert password is not None
    settings, store = await open_from_args(args)
    async with store:
        await provisioning.set_password(store, settings, args.address, password)
    print(f"Changed the password of {provisioning.normalize_address(args.address)}.")
    return OK


async def remove(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        await provisioning.remove_user(store, args.address)
    print(f"Removed {provisioning.normalize_address(args.address)} and its mail.")
    return OK
