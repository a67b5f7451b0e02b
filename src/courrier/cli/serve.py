"""`courrier serve`: run the mail server in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys

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


#: How long (seconds) a Python thread may keep the GIL while another waits for it. The store's
#: writer thread releases waiters after each commit; with CPython's default (5 ms) it can wait
#: that long behind the event loop for the GIL, and at 10 concurrent deliveries that wait,
#: not the disk, was what bounded the accept rate (measured: 0.5 ms gives +20 % msg/s).
SWITCH_INTERVAL = 0.0005


async def run(args: argparse.Namespace) -> int:
    sys.setswitchinterval(SWITCH_INTERVAL)
    extra = {} if args.port_offset is None else {"server.port_offset": args.port_offset}
    settings = load_settings(args, **extra)
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    await serve(settings)
    return OK
