"""`courrier headers FILE|-`: a received message's header explained — its path, the
authentication results, ARC, DMARC alignment in plain words, spam filter verdicts."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from courrier.cli.common import FAILURE, OK, Subparsers, add_json_option, print_json
from courrier.diag.headers import HeaderError, analyse


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "headers",
        help="explain a received message's header: path, SPF/DKIM/DMARC alignment, spam",
    )
    p.add_argument("file", help="the message (.eml) or its header; - reads standard input")
    add_json_option(p)
    p.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    if args.file == "-":
        raw = sys.stdin.buffer.read()
    else:
        raw = await asyncio.to_thread(Path(args.file).read_bytes)
    try:
        found = analyse(raw)
    except HeaderError as exc:
        print(f"courrier: {exc}.", file=sys.stderr)
        return FAILURE
    if args.json:
        print_json(found.as_json())
    else:
        sys.stdout.write(found.text())
    return OK
