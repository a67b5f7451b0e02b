"""`courrier dns …`: the zones courrier serves (records of your own, DNSSEC's DS)."""

from __future__ import annotations

from courrier.cli import dnszone
from courrier.cli.common import Subparsers, command_group


def register(sub: Subparsers) -> None:
    group = command_group(sub, "dns", "the DNS zones courrier serves")
    dnszone.register_into(group)
