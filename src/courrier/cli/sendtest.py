"""``courrier send-test --to ADDR``: send a test message and show the SMTP conversation, the way
swaks does. Exit code 0 when the server took the message, 1 when it did not (the refusal on
standard error), 2 for a usage error."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import sys
from pathlib import Path

import dns.exception

from courrier.cli.common import (
    FAILURE,
    OK,
    USAGE,
    Subparsers,
    add_location_options,
    load_settings,
    read_password_stdin,
)
from courrier.config import parse_hostport
from courrier.diag.sendtest import Options, Security, Target, compose, mail_hosts, send_test
from courrier.dns.resolver import make_resolver
from courrier.queue.routing import LookupFailed, NoMail

#: RFC 5322 §3.6.8: a field name is printable ASCII but the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+")

_DESCRIPTION = """\
Send a test message and print the SMTP conversation: "<-" what the server said, " ->" what
was sent ("~" once TLS is on), "===" what happened. Credentials are shown as ***.

Where: --server HOST[:PORT], or else the recipient domain's MX hosts (lowest preference
first, the domain's own address without MX; RFC 5321 §5.1) on port 25 or --port. The port of
--server, when not given: --port, else 465 with --tls, 587 with --auth, else 25.

TLS: --tls (implicit TLS) and --starttls (STARTTLS or nothing) check the certificate against
the system's CAs (--ca-file: against those instead; --insecure: not at all). With neither,
STARTTLS is used when the server offers it and its certificate is not checked (like swaks
-tls-optional): the message may then go in clear text.

Password for --auth: standard input with --password-stdin, else the COURRIER_PASSWORD
environment variable, else asked for at the terminal."""


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "send-test",
        help="send a test message, showing the SMTP conversation (like swaks)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--to", required=True, metavar="ADDR", help="the recipient")
    p.add_argument(
        "--from", dest="sender", metavar="ADDR", help="the sender (courrier-test@server.hostname)"
    )
    p.add_argument("--server", metavar="HOST[:PORT]", help="send there (default: the MX hosts)")
    p.add_argument("--port", type=int, metavar="N", help="the port when none is given (see above)")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--tls", action="store_true", help="implicit TLS (RFC 8314)")
    tls.add_argument("--starttls", action="store_true", help="STARTTLS, required (RFC 3207)")
    p.add_argument("--auth", metavar="USER", help="authenticate as USER (AUTH PLAIN or LOGIN)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.add_argument("--ehlo", metavar="NAME", help="the EHLO name (default: server.hostname)")
    p.add_argument("--subject", default="", metavar="S", help="the subject")
    p.add_argument("--body", default="", metavar="TEXT", help="the body (default: a test notice)")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header field to add, or to put in place of ours (repeat for several)",
    )
    p.add_argument("--ca-file", metavar="PEM", help="trust these CAs instead of the system's")
    p.add_argument("--insecure", action="store_true", help="do not check the certificate")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per reply (30)")
    p.add_argument(
        "--resolver", metavar="HOST[:PORT]", help="ask this resolver (default: dns.resolvers)"
    )
    add_location_options(p)
    p.set_defaults(func=run)


def _usage(message: str) -> int:
    print(f"courrier: {message}", file=sys.stderr)
    return USAGE


def _address(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(local and at and domain) and not any(c in value for c in "<> \r\n")


async def run(args: argparse.Namespace) -> int:
    for option, value in (("--to", args.to), ("--from", args.sender)):
        if value is not None and not _address(value):
            return _usage(f"{option} {value!r} is not a mail address.")
    headers = []
    for header in args.header:
        name, colon, value = header.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name.strip()):
            return _usage(f"--header {header!r} is not 'Name: value'.")
        headers.append((name.strip(), value.strip()))
    if args.password_stdin and not args.auth:
        return _usage("--password-stdin goes with --auth.")
    if args.ca_file and not await asyncio.to_thread(Path(args.ca_file).is_file):
        return _usage(f"--ca-file {args.ca_file}: no such file.")
    overrides = {}
    if args.resolver:
        parse_hostport(args.resolver, 53, key="--resolver")
        overrides["dns.resolvers"] = [args.resolver]
    settings = load_settings(args, **overrides)
    hostname = settings.server.hostname
    sender = args.sender or f"courrier-test@{hostname}"
    security: Security = "tls" if args.tls else "starttls" if args.starttls else "optional"
    if args.server:
        default = args.port or (465 if args.tls else 587 if args.auth else 25)
        host, port = parse_hostport(args.server, default, key="--server")
        targets = [Target(host, host, port)]
    else:
        domain = args.to.rpartition("@")[2]
        try:
            resolver = make_resolver(settings, timeout=args.timeout)
            targets = await mail_hosts(domain, resolver, args.port or 25)
        except (NoMail, LookupFailed, dns.exception.DNSException) as exc:
            print(f"courrier: no mail host to send to: {exc}", file=sys.stderr)
            return FAILURE
    password = ""
    if args.auth:
        password = await asyncio.to_thread(_password, args)
    options = Options(
        sender=sender,
        recipient=args.to,
        helo=args.ehlo or hostname,
        security=security,
        verify=not args.insecure,
        ca_file=args.ca_file or "",
        username=args.auth or "",
        password=password,
        timeout=args.timeout,
    )
    content = compose(
        sender, args.to, hostname=hostname, subject=args.subject, body=args.body, headers=headers
    )
    result = await send_test(targets, options, content, _print)
    if not result.accepted:
        print(f"courrier: not sent: {result.problem}", file=sys.stderr)
        return FAILURE
    return OK


def _print(line: str) -> None:
    print(line, flush=True)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return read_password_stdin()
    return os.environ.get("COURRIER_PASSWORD") or getpass.getpass(f"Password for {args.auth}: ")
