"""`courrier dns export|check`: a hosted domain's zone for users who keep their own DNS, and
what the DNS publishes for the domain compared with what it should publish."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.name

from courrier import __version__, provisioning
from courrier.cli.common import (
    FAILURE,
    OK,
    Subparsers,
    command,
    load_settings,
    print_json,
    print_table,
)
from courrier.config import Settings, parse_hostport
from courrier.dns.check import Finding, Status, compare, questions
from courrier.dns.export import zone_file
from courrier.dns.published import ask_all
from courrier.dns.records import Record
from courrier.dns.resolver import make_resolver
from courrier.dns.zonedata import zone_of
from courrier.store import open_store

#: Published values longer than this are cut in the text table (``--json`` has them whole).
_SHOWN = 60


def register_into(group: Subparsers) -> None:
    p = command(group, "export", "the domain's zone as a BIND master file", export)
    p.add_argument("name")
    p.add_argument("--output", metavar="FILE", help="write it to FILE (default: standard output)")
    p = command(
        group, "check", "compare the records the DNS publishes with the intended ones", check
    )
    p.add_argument("name")
    p.add_argument(
        "--resolver",
        metavar="HOST[:PORT]",
        help="ask this resolver (default: dns.resolvers, else the system's)",
    )
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per question (10)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


async def _intended(
    args: argparse.Namespace, **overrides: Any
) -> tuple[Settings, str, list[Record]]:
    """The settings, and the hosted domain ``args.name`` with the records it should publish."""
    settings = load_settings(args, **overrides)
    store = await open_store(settings)
    async with store:
        name = await provisioning.hosted_domain(store, args.name)
        records = await provisioning.domain_records(store, settings, name)
    return settings, name, records


async def export(args: argparse.Namespace) -> int:
    settings, name, records = await _intended(args)
    host = settings.server.hostname
    now = int(time.time())
    # The serial is the export's time: each export is newer than the last (RFC 1982).
    zone = zone_of(name, host, records, serial=now)
    header = [
        f"The zone of {name}, exported by courrier {__version__} at "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(now))}, unsigned.",
        f"The SOA and NS name {host}, as when courrier serves the zone: name yours there.",
    ]
    inside = dns.name.from_text(host).is_subdomain(dns.name.from_text(name))
    if inside and not settings.dns.host_addresses:
        print(
            f"courrier: warning: {host} is in the zone but dns.host_addresses is empty, so "
            "the zone has no A/AAAA for it: add them.",
            file=sys.stderr,
        )
    text = zone_file(zone, records, header)
    if args.output:
        await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
        print(f"Wrote the zone of {name} (serial {zone.serial}) to {args.output}.")
    else:
        sys.stdout.write(text)
    return OK


async def check(args: argparse.Namespace) -> int:
    overrides = {}
    if args.resolver:
        parse_hostport(args.resolver, 53, key="--resolver")  # named as the user gave it
        overrides["dns.resolvers"] = [args.resolver]
    settings, name, intended = await _intended(args, **overrides)
    try:
        resolver = make_resolver(settings, timeout=args.timeout)
    except dns.exception.DNSException as exc:  # no resolver configured on this system
        print(f"courrier: no resolver to ask ({exc}): give one with --resolver.", file=sys.stderr)
        return FAILURE
    findings = compare(intended, await ask_all(resolver, questions(intended)))
    if args.json:
        print_json([f.as_json() for f in findings])
    else:
        _print(name, findings)
    return OK if all(f.status is Status.OK for f in findings) else FAILURE


def _print(name: str, findings: Sequence[Finding]) -> None:
    def shown(f: Finding) -> str:
        text = f.published if f.published is not None else "-"
        if f.status is Status.ERROR:
            text = "?"
        return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"

    print_table(
        ["STATUS", "NAME", "TYPE", "PUBLISHED"],
        [(f.status, f.name, f.type, shown(f)) for f in findings],
    )
    to_fix = [f for f in findings if f.fix is not None]
    failed = [f for f in findings if f.status is Status.ERROR]
    if to_fix:
        print(f"\nTo fix, in the zone of {name}:")
        for f in to_fix:
            if f.status is Status.MISSING:
                print(f"  publish  {f.fix}")
            elif f.status is Status.DIFFERENT:
                print(f"  replace  {f.name} {f.type} {f.published}\n     with  {f.fix}")
            else:
                print(f"  remove   {f.fix}")
    for error in dict.fromkeys(f"{f.name} {f.type}: {f.detail}" for f in failed):
        print(f"\nNot checked, {error}", file=sys.stderr)
    if not to_fix and not failed:
        print(f"\nThe DNS publishes every record of {name} as intended.")
    else:
        print(
            f"\n{len(to_fix)} change(s) to make, {len(failed)} record(s) not checked, "
            f"{len(findings) - len(to_fix) - len(failed)} as intended."
        )
