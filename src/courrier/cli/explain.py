"""`courrier explain CODE…`: what an SMTP reply code, an enhanced status code or a whole bounce
line means, its likely cause and what to do. ``-`` reads the text from standard input."""

from __future__ import annotations

import argparse
import sys

from courrier.cli.common import FAILURE, OK, USAGE, Subparsers, add_json_option, print_json
from courrier.diag.explain import explain, text


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "explain",
        help="explain an SMTP code (550, 5.7.1) or a whole bounce line",
        description="Explain SMTP reply codes (RFC 5321), enhanced status codes (RFC 3463 "
        "and the IANA registry) and the bounce texts of the big providers.",
    )
    p.add_argument("text", nargs="*", help="codes or a bounce line; - reads standard input")
    add_json_option(p)
    p.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    given = " ".join(args.text)
    if given.strip() == "-":
        given = sys.stdin.read()
    if not given.strip():
        print("courrier: give a code (550, 5.7.1) or a bounce line.", file=sys.stderr)
        return USAGE
    found = explain(given)
    if args.json:
        print_json(found.as_json())
    elif found.lines or found.providers:
        sys.stdout.write(text(found))
    if not found.known:
        print(f"courrier: no known SMTP code in {given.strip()[:80]!r}.", file=sys.stderr)
        return FAILURE
    return OK
