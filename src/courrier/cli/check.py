"""`courrier check DOMAIN`: the whole diagnosis of a domain's mail, as text or ``--json``.

Any domain, not only ours. Exit code 0 when nothing is worse than a note, 1 when a warning or
an error was found (DESIGN.md §6). The JSON is documented by ``diag/check.schema.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import dns.exception
import dns.name

from courrier.cli.common import (
    FAILURE,
    USAGE,
    Subparsers,
    add_json_option,
    add_location_options,
    load_settings,
    print_json,
)
from courrier.config import parse_hostport
from courrier.diag.domaincheck import CheckOptions, check_domain
from courrier.dns.resolver import make_resolver


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "check",
        help="diagnose a domain's mail: MX, SMTP/TLS, SPF, DKIM, DMARC, MTA-STS, DANE, DNSBL",
        description="Check a domain's mail set-up as senders and receivers see it. Exit code "
        "0: nothing to fix; 1: warnings or errors.",
    )
    p.add_argument("domain")
    add_location_options(p)
    add_json_option(p)
    p.add_argument(
        "--resolver", metavar="HOST[:PORT]", help="ask this resolver (default: dns.resolvers)"
    )
    p.add_argument("--smtp-port", type=int, default=25, metavar="N", help="probe MX hosts on N")
    p.add_argument(
        "--https-port", type=int, metavar="N", help="fetch MTA-STS policies from N (443)"
    )
    p.add_argument(
        "--ca-file", metavar="PEM", help="also trust these CAs (default: queue.tls_ca_file)"
    )
    p.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="S",
        help="a DKIM selector to check (repeat for several; default: common ones)",
    )
    p.add_argument(
        "--dnsbl",
        action="append",
        default=[],
        metavar="ZONE",
        help="a block list to look the MX addresses up in (repeat; default: check.dnsbls)",
    )
    p.add_argument("--no-dnsbl", action="store_true", help="do not query block lists")
    p.add_argument("--no-smtp", action="store_true", help="do not connect to the MX hosts")
    p.add_argument(
        "--no-relay-test", action="store_true", help="do not try relaying through the MX hosts"
    )
    p.add_argument("--helo", metavar="NAME", help="the EHLO name (default: server.hostname)")
    p.add_argument(
        "--allow-private",
        action="store_true",
        help="do not flag MX addresses that are private (a lab or a LAN)",
    )
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per step (check.timeout)")
    p.add_argument("--verbose", "-v", action="store_true", help="explain ok findings too")
    p.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    try:
        domain = dns.name.from_text(args.domain).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, UnicodeError) as exc:
        print(f"courrier: {args.domain!r} is not a domain name ({exc}).", file=sys.stderr)
        return USAGE
    if "." not in domain:
        print(f"courrier: {args.domain!r} is not a domain name (no dot).", file=sys.stderr)
        return USAGE
    overrides = {}
    if args.resolver:
        parse_hostport(args.resolver, 53, key="--resolver")
        overrides["dns.resolvers"] = [args.resolver]
    settings = load_settings(args, **overrides)
    if args.ca_file and not await asyncio.to_thread(Path(args.ca_file).is_file):
        print(f"courrier: --ca-file {args.ca_file}: no such file.", file=sys.stderr)
        return USAGE
    timeout = args.timeout or settings.check.timeout
    try:
        resolver = make_resolver(settings, timeout=timeout)
    except dns.exception.DNSException as exc:
        print(f"courrier: no resolver to ask ({exc}): give one with --resolver.", file=sys.stderr)
        return FAILURE
    options = CheckOptions(
        smtp_port=args.smtp_port,
        https_port=args.https_port or settings.queue.mta_sts_port,
        ca_file=args.ca_file or settings.queue.tls_ca_file,
        timeout=timeout,
        selectors=tuple(args.selector or settings.check.dkim_selectors),
        dnsbls=() if args.no_dnsbl else tuple(args.dnsbl or settings.check.dnsbls),
        helo=args.helo or settings.server.hostname,
        smtp=not args.no_smtp,
        relay_test=not args.no_relay_test,
        allow_private=args.allow_private,
    )
    report = await check_domain(resolver, domain, options)
    if args.json:
        print_json(report.as_json())
    else:
        sys.stdout.write(report.text(verbose=args.verbose))
    return report.exit_code
