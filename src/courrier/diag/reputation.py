"""What receivers think of a mail host's addresses: reverse DNS and block lists.

PTR and forward-confirmed reverse DNS (FCrDNS, RFC 8601 §3's ``iprev``): the address has a PTR
name whose A/AAAA records lead back to it — receivers such as Gmail and Outlook reject or
junk mail from addresses without it (RFC 1912 §2.1) — and the name matches the one the host
announces in its greeting. DNS block lists (RFC 5782): the address reversed, under each list's
zone; an A record in 127.0.0.0/8 means listed (the TXT record says why), NXDOMAIN not listed.
A list that does not answer, or refuses the query (Spamhaus answers 127.255.255.x to public
resolvers), is noted and never fails the check.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from typing import Final

from courrier.diag.findings import Finding, error, info, ok, warning
from courrier.diag.lookups import Lookups, reverse_name

__all__ = ["check_dnsbl", "check_ptr"]

_G = "reputation"


async def check_ptr(lookups: Lookups, address: str, banner_host: str | None) -> list[Finding]:
    looked = await lookups.ask(reverse_name(address), "PTR")
    if looked.error:
        return [info(_G, "ptr.present", address, f"not checked: {looked.error}")]
    names = [r.to_text().rstrip(".").lower() for r in looked.records]
    if not names:
        return [
            warning(
                _G,
                "ptr.present",
                address,
                "no reverse DNS (PTR) for the address",
                "Many receivers reject or junk mail from an address without a PTR name "
                "(Gmail, Outlook), and it looks like a home connection.",
                f"Ask whoever owns {address} (your hosting provider) to set its PTR to the "
                "mail host's name.",
            )
        ]
    found: list[Finding] = []
    confirmed = []
    for name in names:
        addresses, _ = await lookups.addresses(name)
        if _same_address(address, addresses):
            confirmed.append(name)
    if not confirmed:
        found.append(
            warning(
                _G,
                "ptr.fcrdns",
                address,
                f"PTR {', '.join(names)} does not lead back to {address}",
                "Receivers check forward-confirmed reverse DNS (iprev, RFC 8601 §2.7.3); a "
                "PTR name without the matching A/AAAA record counts as none.",
                f"Publish an A/AAAA record {names[0]} → {address}, or set the PTR to a name "
                "that has it.",
            )
        )
    else:
        found.append(ok(_G, "ptr.fcrdns", address, f"PTR {confirmed[0]}, confirmed by its A/AAAA"))
    if banner_host and banner_host.lower().rstrip(".") not in names:
        found.append(
            warning(
                _G,
                "ptr.banner",
                address,
                f"the greeting announces {banner_host}, the PTR says {', '.join(names)}",
                "Receivers compare the host name the server gives (greeting and HELO) with "
                "its reverse DNS; a mismatch adds to the spam score.",
                f"Set the server's host name (courrier: server.hostname) to {names[0]}, or "
                f"the PTR to {banner_host}.",
            )
        )
    elif banner_host:
        found.append(ok(_G, "ptr.banner", address, f"the greeting names {banner_host}, as the PTR"))
    return found


def _same_address(address: str, addresses: Sequence[str]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ipaddress.ip_address(a) == ip for a in addresses)


async def check_dnsbl(lookups: Lookups, address: str, lists: Sequence[str]) -> list[Finding]:
    """``lists``: the lists' zones (``check.dnsbls``)."""
    reversed_ip = reverse_name(address).rsplit(".", 2)[0]  # without in-addr.arpa / ip6.arpa
    asked = [f"{reversed_ip}.{zone}" for zone in lists]
    looked = await asyncio.gather(*(lookups.ask(name, "A") for name in asked))
    listed: list[Finding] = []
    clean: list[str] = []
    unanswered: list[str] = []
    for zone, name, answer in zip(lists, asked, looked, strict=True):
        codes = [r.to_text() for r in answer.records]
        if answer.error:
            unanswered.append(f"{zone} ({answer.error})")
        elif not codes:
            clean.append(zone)
        elif all(c.startswith("127.255.255.") for c in codes):
            unanswered.append(f"{zone} (refused the query: {', '.join(codes)})")
        elif any(ipaddress.ip_address(c) in _LISTED for c in codes):
            reason = (await lookups.txt(name)).texts
            listed.append(
                error(
                    _G,
                    "dnsbl.listed",
                    address,
                    f"listed on {zone} ({', '.join(codes)})" + (f": {reason[0]}" if reason else ""),
                    "Receivers that use this list reject or junk mail from the address.",
                    f"Find and stop what sent spam from {address}, then ask {zone} for "
                    "delisting (its web site, with the address).",
                    zone=zone,
                    codes=codes,
                    reason=reason,
                )
            )
        else:
            unanswered.append(f"{zone} (unexpected answer {', '.join(codes)})")
    found = listed
    if not listed:
        found = [
            ok(_G, "dnsbl.listed", address, f"not listed on {len(clean)} list(s)", lists=clean)
        ]
    if unanswered:
        found.append(
            info(
                _G,
                "dnsbl.unanswered",
                address,
                f"not checked on {'; '.join(unanswered)}",
                "Some lists refuse queries from public resolvers or big networks; ask them "
                "from a resolver of your own.",
            )
        )
    return found


#: RFC 5782 §2.1: a listed address has A records in 127.0.0.0/8.
_LISTED: Final = ipaddress.ip_network("127.0.0.0/8")
