"""`courrier dns …`: the zones courrier serves (records of your own, DNSSEC's DS), and those
of a DNS of your own (the zone to load there, a check of what it publishes)."""

from __future__ import annotations

from courrier.cli import dnscheck, dnszone
from courrier.cli.common import Subparsers, command_group


def register(sub: Subparsers) -> None:
    group = command_group(sub, "dns", "DNS zones: records, DS, export, check")
    dnszone.register_into(group)
    dnscheck.register_into(group)
