"""`courrier dkim list|rotate`: the DKIM keys of hosted domains."""

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
from courrier.dns.records import Record
from courrier.mailauth import keys as dkim_keys
from courrier.store import DkimKey


def register(sub: Subparsers) -> None:
    group = command_group(sub, "dkim", "DKIM signing keys")
    command(group, "list", "keys of every domain, or of one", list_, json=True).add_argument(
        "domain", nargs="?"
    )
    p = command(group, "rotate", "add new keys; they sign once published", rotate, json=True)
    p.add_argument("domain")
    p.add_argument(
        "--delay",
        type=float,
        default=48.0,
        metavar="HOURS",
        help="hours before the new keys sign, to publish their records (default 48; "
        "0 when courrier serves the zone)",
    )


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def _as_json(key: DkimKey, state: str) -> dict[str, object]:
    return {
        "domain": key.domain,
        "selector": key.selector,
        "algorithm": key.algorithm,
        "state": state,
        "active_at": key.active_at,
        "record_name": dkim_keys.record_name(key),
        "record": dkim_keys.record_value(key),
    }


async def list_(args: argparse.Namespace) -> int:
    domain = provisioning.normalize_domain(args.domain) if args.domain else None
    _, store = await open_from_args(args)
    async with store:
        keys = await store.list_dkim_keys(domain)
    state = dkim_keys.states(keys, int(time.time()))
    if args.json:
        print_json([_as_json(k, state[k.id]) for k in keys])
    elif keys:
        print_table(
            ["DOMAIN", "SELECTOR", "ALGORITHM", "STATE", "SIGNS FROM"],
            [(k.domain, k.selector, k.algorithm, state[k.id], _when(k.active_at)) for k in keys],
        )
    else:
        print("No DKIM keys: they come with each domain (courrier domain add NAME).")
    return OK


async def rotate(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        new = await provisioning.rotate_dkim_keys(store, args.domain, int(args.delay * 3600))
    if args.json:
        state = dkim_keys.states(new, int(time.time()))
        print_json([_as_json(k, state[k.id]) for k in new])
        return OK
    print(f"New DKIM keys for {new[0].domain}, signing from {_when(new[0].active_at)}.")
    print("Publish now:")
    for key in new:
        record = Record(dkim_keys.record_name(key), "TXT", dkim_keys.record_value(key), "")
        print(record.zone_line())
    print("The old keys stay published a week longer (courrier domain dns lists them all).")
    return OK
