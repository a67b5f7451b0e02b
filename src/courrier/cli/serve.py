"""`courrier serve`: run the mail server in the foreground."""

from __future__ import annotations

import argparse
import logging

from courrier.cli.common import OK, Subparsers, add_location_options, load_settings
from courrier.server import serve


def register(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run the mail server")
    add_location_options(p)
    p.add_argument(
        "--port-offset",
        type=int,
        metavar="N",
        help="add N to every standard port (25 → 25+N, 993 → 993+N, …)",
    )
    p.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    extra = {} if args.port_offset is None else {"server.port_offset": args.port_offset}
    settings = load_settings(args, **extra)
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    await serve(settings)
    return OK
