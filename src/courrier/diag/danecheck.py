"""DNSSEC and DANE for a domain's MX hosts (RFC 7672): are the answers validated, are TLSA
records published at ``_25._tcp.MX`` (§2.2), usable (§3.1) and matched by the certificate the
host presented during the SMTP probe?

DNSSEC is judged by the resolver's AD bit (RFC 4035 §3.2.3): it means something only when the
resolver asked validates. TLSA records under an unsigned zone are ignored by senders (§2.2);
under a signed one they are binding: a certificate that matches none makes DANE senders
refuse to deliver (§2.2.1), the worst fault a check can find short of a missing MX.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

import dns.rdtypes.ANY.TLSA

from courrier.diag.findings import Finding, error, info, ok, warning
from courrier.diag.lookups import Lookups
from courrier.queue.dane import TLSA, usable
from courrier.queue.dane import check as dane_check

__all__ = ["check_dane", "check_dnssec"]

_G = "policies"


async def check_dnssec(lookups: Lookups, domain: str) -> Finding:
    looked = await lookups.ask(domain, "MX")
    if looked.validated:
        return ok(_G, "dnssec.signed", domain, "the resolver validated the domain's answers")
    return info(
        _G,
        "dnssec.signed",
        domain,
        "answers not validated by DNSSEC (the zone is unsigned, or the resolver asked does "
        "not validate)",
        "Without DNSSEC, DANE cannot be used and MX answers can be spoofed; MTA-STS "
        "protects delivery without it.",
    )


async def check_dane(
    lookups: Lookups, hosts: Sequence[str], chains: Mapping[str, list[bytes]]
) -> list[Finding]:
    """``chains``: the DER chain each MX host presented (empty: no TLS), by host name."""
    found: list[Finding] = []
    for host in hosts:
        name = f"_25._tcp.{host}"
        looked = await lookups.ask(name, "TLSA")
        records = [
            TLSA(r.usage, r.selector, r.mtype, bytes(r.cert))
            for r in looked.records
            if isinstance(r, dns.rdtypes.ANY.TLSA.TLSA)
        ]
        if not records:
            continue
        found.append(_judge(name, host, records, looked.validated, chains.get(host)))
    if not found:
        found.append(
            info(
                _G,
                "dane.tlsa",
                ", ".join(hosts) or "MX",
                "no TLSA records for the MX hosts (no DANE)",
                "DANE (RFC 7672) lets senders with a validating resolver insist on your "
                "certificate; it needs a DNSSEC-signed zone.",
            )
        )
    return found


def _judge(
    name: str, host: str, records: list[TLSA], validated: bool, chain: list[bytes] | None
) -> Finding:
    listed = "; ".join(str(r) for r in records)
    if not validated:
        return warning(
            _G,
            "dane.tlsa",
            name,
            "TLSA records published, but the answer is not DNSSEC-validated",
            "RFC 7672 §2.2: senders use TLSA records only from a signed zone; these are "
            "ignored (or the resolver asked does not validate).",
            "Sign the zone with DNSSEC and publish its DS at the parent.",
            records=listed,
        )
    if not any(usable(r) for r in records):
        return warning(
            _G,
            "dane.tlsa",
            name,
            f"no usable TLSA record for SMTP: {listed}",
            "RFC 7672 §3.1: SMTP uses only DANE-TA(2) and DANE-EE(3) records; senders treat "
            "the host as having no usable records and may defer mail.",
            f"Publish {name}. IN TLSA 3 1 1 <SHA-256 of the certificate's public key>.",
        )
    if chain is None:
        return info(_G, "dane.tlsa", name, f"TLSA records: {listed} (certificate not probed)")
    if not chain:
        return error(
            _G,
            "dane.match",
            name,
            "TLSA records published but no TLS certificate was seen",
            "RFC 7672 §2.2: DANE senders require STARTTLS with a matching certificate; "
            "they defer mail to this host.",
            f"Make STARTTLS work on {host}, or remove the TLSA records.",
        )
    mismatch = dane_check(records, chain, host, datetime.datetime.now(datetime.UTC))
    if mismatch is not None:
        return error(
            _G,
            "dane.match",
            name,
            f"the certificate does not match: {mismatch.reason}",
            "DANE senders refuse to deliver to a host whose certificate matches none of its "
            "TLSA records: mail to it waits, then bounces.",
            f"Publish the TLSA record of the certificate in use ({host}), and keep the old "
            "and new records side by side when you change certificates.",
        )
    return ok(_G, "dane.match", name, f"the certificate matches a TLSA record ({listed})")
