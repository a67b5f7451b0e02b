"""``courrier check DOMAIN``: every check of a domain's mail set-up, run together, one report.

The order follows what depends on what: the MX hosts first (:mod:`~courrier.diag.mxcheck`);
then, at once, the SMTP probe of each MX address (:mod:`~courrier.diag.smtpprobe`) and the
DNS-only checks (SPF, DKIM, DMARC, TLS-RPT, DNSSEC); then what needs their results: MTA-STS
(the MX names, and under ``enforce`` the certificates the probe saw), BIMI (the DMARC policy),
DANE (the certificates), reverse DNS (the greeting's host name) and block lists. Nothing here
raises for what the domain or the network does: each check turns failures into findings.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver

from courrier.diag import danecheck, dkimcheck, dmarccheck, mxcheck, policies, reputation
from courrier.diag.fetch import Access
from courrier.diag.findings import GROUPS, Finding, Report, Severity, error
from courrier.diag.lookups import Lookups
from courrier.diag.smtpprobe import ProbeResult, probe
from courrier.diag.spfcheck import check_spf

__all__ = ["CheckOptions", "check_domain"]


@dataclass(frozen=True)
class CheckOptions:
    #: The port MX hosts are probed on (25; tests point it at their own servers).
    smtp_port: int = 25
    #: The port of HTTPS fetches without one in their URL (MTA-STS: 443).
    https_port: int = 443
    #: PEM file of extra trusted CAs (certificates of the MX hosts, MTA-STS, BIMI).
    ca_file: str = ""
    timeout: float = 10.0
    selectors: tuple[str, ...] = ()
    dnsbls: tuple[str, ...] = ()
    #: The name we give in EHLO.
    helo: str = "localhost"
    #: Connect to the MX hosts at all; and try relaying through them.
    smtp: bool = True
    relay_test: bool = True
    #: Do not flag MX addresses that are private (a lab, a LAN).
    allow_private: bool = False
    #: Limit on MX addresses probed (the lowest preferences first).
    max_addresses: int = 8


async def check_domain(
    resolver: dns.asyncresolver.Resolver, domain: str, options: CheckOptions
) -> Report:
    domain = domain.lower().rstrip(".")
    started = time.monotonic()
    report = Report(
        domain, started=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    )
    lookups = Lookups(resolver)
    mx = await mxcheck.check_mx(lookups, domain, allow_private=options.allow_private)
    report.add(mx.findings)
    if mx.stop and not any(f.check == "mx.null" for f in mx.findings):
        report.seconds = time.monotonic() - started
        return report  # no such domain, or its DNS does not answer
    hosts = [h.name for h in mx.hosts]
    targets = [(h.name, a) for h in mx.hosts for a in h.addresses][: options.max_addresses]
    dns_only = asyncio.gather(
        check_spf(lookups, domain),
        dkimcheck.check_dkim(lookups, domain, options.selectors),
        dmarccheck.check_dmarc(lookups, domain),
        policies.check_tls_rpt(lookups, domain),
        danecheck.check_dnssec(lookups, domain),
    )
    probes = asyncio.gather(*(_probe(host, address, options) for host, address in targets))
    (spf, dkim, (dmarc, dmarc_record), tls_rpt, dnssec), probed = await asyncio.gather(
        dns_only, probes
    )
    report.add(spf + dkim + dmarc)
    for result in probed:
        report.add(result.findings)
    access = Access(options.https_port, options.ca_file, options.timeout)
    chains = {r.host: r.chain for r in probed if r.reachable} if options.smtp else {}
    sts, bimi, dane = await asyncio.gather(
        policies.check_mta_sts(lookups, domain, hosts, access),
        policies.check_bimi(lookups, domain, dmarc_record, access),
        danecheck.check_dane(lookups, hosts, chains) if hosts else _none(),
    )
    report.add(sts.findings)
    if sts.policy is not None and sts.policy.mode == "enforce":
        report.add(_sts_certificates(probed))
    report.add(tls_rpt + bimi + [dnssec] + dane)
    banners = {r.address: r.banner_host for r in probed}
    reputations = await asyncio.gather(
        *(_reputation(lookups, a, banners.get(a), options) for _, a in targets)
    )
    for found in reputations:
        report.add(found)
    report.findings.sort(key=lambda f: GROUPS.index(f.group))
    report.seconds = time.monotonic() - started
    return report


async def _none() -> list[Finding]:
    return []


async def _probe(host: str, address: str, options: CheckOptions) -> ProbeResult:
    if not options.smtp:
        return ProbeResult(host, address, [], False, None, [])
    return await probe(
        host,
        address,
        port=options.smtp_port,
        seconds=options.timeout,
        helo=options.helo,
        ca_file=options.ca_file,
        relay_test=options.relay_test,
    )


async def _reputation(
    lookups: Lookups, address: str, banner: str | None, options: CheckOptions
) -> list[Finding]:
    found = await reputation.check_ptr(lookups, address, banner)
    if options.dnsbls:
        found += await reputation.check_dnsbl(lookups, address, options.dnsbls)
    return found


def _sts_certificates(probed: Sequence[ProbeResult]) -> list[Finding]:
    """RFC 8461 §4.2: under ``enforce`` a sender delivers only to an MX whose certificate is
    trusted and names it; the probe's certificate findings that say otherwise are fatal."""
    found = []
    for result in probed:
        bad = [
            f
            for f in result.findings
            if f.check
            in (
                "smtp.starttls",
                "smtp.certificate-chain",
                "smtp.certificate-name",
                "smtp.certificate-expiry",
            )
            and f.severity >= Severity.WARNING
        ]
        if bad:
            found.append(
                error(
                    "policies",
                    "mta-sts.certificate",
                    f"{result.host} [{result.address}]",
                    "the MTA-STS policy enforces TLS but this MX fails it: "
                    + "; ".join(f.seen for f in bad),
                    "RFC 8461 §4.2: senders honouring the policy refuse to deliver to this "
                    "host; mail to the domain waits, then bounces.",
                    "Install a certificate from a trusted CA naming the MX host, or set the "
                    "policy to mode: testing until it is fixed.",
                )
            )
    return found
