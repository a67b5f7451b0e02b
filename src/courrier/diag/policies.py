"""The policies a domain publishes for senders: MTA-STS (RFC 8461), TLS-RPT (RFC 8460), BIMI.

MTA-STS: the ``_mta-sts`` TXT record and its id (§3.1), the policy fetched over HTTPS from
``mta-sts.DOMAIN`` with a verified certificate (§3.3), its mode and ``max_age`` (§3.2), and
whether its ``mx`` patterns cover every MX host (§4.1: under ``enforce`` senders refuse to
deliver to a host the policy does not name). TLS-RPT: one ``v=TLSRPTv1`` record with ``rua``
(§3). BIMI (draft-brand-indicators-for-message-identification): the ``default._bimi`` record,
its logo (an HTTPS SVG) and the DMARC enforcement that mailbox providers require before they
show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from courrier.diag.fetch import Access, fetch
from courrier.diag.findings import Finding, error, info, ok, warning
from courrier.diag.lookups import Lookups
from courrier.mailauth.dmarc import DMARCRecord
from courrier.mailauth.tlsrpt import parse_record as parse_tlsrpt
from courrier.queue import mtasts

__all__ = ["check_bimi", "check_mta_sts", "check_tls_rpt"]

_G = "policies"
#: §3.2 recommends weeks; under a day the policy hardly outlives a DNS spoof.
_SHORT_MAX_AGE: Final = 86400
_POLICY_PATH: Final = "/.well-known/mta-sts.txt"


@dataclass
class STSResult:
    findings: list[Finding]
    policy: mtasts.Policy | None = None


async def check_mta_sts(
    lookups: Lookups,
    domain: str,
    mx_hosts: Sequence[str],
    access: Access,
) -> STSResult:
    name = f"_mta-sts.{domain}"
    looked = await lookups.txt(name)
    records = [t for t in looked.texts if mtasts.is_sts_record([t.encode()])]
    if looked.error:
        return STSResult([_unchecked(name, looked.error)])
    if not records:
        return STSResult(
            [
                info(
                    _G,
                    "mta-sts.record",
                    name,
                    "no MTA-STS policy",
                    "Senders deliver over TLS when offered but accept a downgrade to plain "
                    "text; MTA-STS (or DANE) makes them insist on a valid certificate.",
                )
            ]
        )
    if len(records) > 1:
        return STSResult(
            [
                error(
                    _G,
                    "mta-sts.record",
                    name,
                    f"{len(records)} STSv1 records",
                    "RFC 8461 §3.1: with more than one record senders ignore the policy.",
                    "Keep one v=STSv1 record.",
                )
            ]
        )
    try:
        policy_id = mtasts.parse_record([records[0].encode()])
    except mtasts.PolicyError as exc:
        return STSResult([_broken_record(name, str(exc))])
    findings = [ok(_G, "mta-sts.record", name, f"id={policy_id}")]
    host = mtasts.policy_host(domain)
    url = f"https://{host}{_POLICY_PATH}"
    fetched = await fetch(lookups, host, _POLICY_PATH, access, limit=mtasts.MAX_POLICY_SIZE)
    if fetched.response is None:
        fix = (
            f"Serve {host} with a certificate for that name from a trusted CA."
            if fetched.tls
            else f"Serve the policy at {url} (HTTPS, text/plain)."
        )
        findings.append(
            error(
                _G,
                "mta-sts.policy",
                url,
                f"cannot fetch the policy: {fetched.problem}",
                "RFC 8461 §3.3: senders that cannot fetch the policy do without it, and a "
                "cached one expires: the domain loses its protection.",
                fix,
            )
        )
        return STSResult(findings)
    r = fetched.response
    try:
        text = mtasts.check_response(r.status, r.headers.get("content-type"), r.body)
        policy = mtasts.parse_policy(text)
    except mtasts.PolicyError as exc:
        findings.append(
            error(
                _G,
                "mta-sts.policy",
                url,
                f"unusable policy: {exc}",
                "RFC 8461 §3.2, §3.3: senders ignore a policy that does not follow the RFC.",
                "Serve version: STSv1, mode, mx and max_age lines as text/plain with status 200.",
            )
        )
        return STSResult(findings)
    findings += _policy(url, policy, mx_hosts)
    return STSResult(findings, policy)


def _policy(url: str, policy: mtasts.Policy, mx_hosts: Sequence[str]) -> list[Finding]:
    mx = ", ".join(policy.mx) or "none"
    seen = f"mode {policy.mode}, max_age {policy.max_age}, mx {mx}"
    found: list[Finding] = []
    if policy.mode == "enforce":
        found.append(ok(_G, "mta-sts.policy", url, seen, mode=policy.mode, mx=list(policy.mx)))
    else:
        found.append(
            info(
                _G,
                "mta-sts.policy",
                url,
                seen,
                "In testing or none mode senders report failures (TLS-RPT) but still "
                "deliver over a failed TLS.",
                mode=policy.mode,
                mx=list(policy.mx),
            )
        )
    if policy.max_age < _SHORT_MAX_AGE:
        found.append(
            warning(
                _G,
                "mta-sts.max-age",
                url,
                f"max_age {policy.max_age} s is under a day",
                "Senders keep the policy only this long; between fetches a spoofed DNS "
                "answer can switch it off. RFC 8461 §3.2 suggests weeks.",
                "Set max_age: 604800 (a week) or more once the policy is stable.",
            )
        )
    if policy.mode == "none":
        return found
    for host in mx_hosts:
        if policy.allows(host):
            continue
        make = error if policy.mode == "enforce" else warning
        found.append(
            make(
                _G,
                "mta-sts.mx",
                host,
                f"the MTA-STS policy does not name this MX ({mx})",
                "RFC 8461 §4.1: under enforce senders refuse to deliver to an MX the policy "
                "does not list; in testing they report it.",
                f"Add mx: {host} to the policy (and change the id of the _mta-sts record).",
            )
        )
    if all(policy.allows(h) for h in mx_hosts) and mx_hosts:
        found.append(ok(_G, "mta-sts.mx", url, "the policy names every MX host"))
    return found


async def check_tls_rpt(lookups: Lookups, domain: str) -> list[Finding]:
    name = f"_smtp._tls.{domain}"
    looked = await lookups.txt(name)
    if looked.error:
        return [_unchecked(name, looked.error)]
    records = [t for t in looked.texts if t.startswith("v=TLSRPTv1")]
    if not records:
        return [
            info(
                _G,
                "tls-rpt.record",
                name,
                "no TLS-RPT record",
                "Senders have nowhere to report failed TLS to your MX hosts (RFC 8460): you "
                "learn of certificate problems only when mail stops.",
            )
        ]
    if len(records) > 1:
        return [
            error(
                _G,
                "tls-rpt.record",
                name,
                f"{len(records)} TLSRPTv1 records",
                "RFC 8460 §3: with more than one record senders send no reports.",
                "Keep one v=TLSRPTv1 record.",
            )
        ]
    uris = parse_tlsrpt(records[0])
    bad = [u for u in uris or [] if not u.lower().startswith(("mailto:", "https:"))]
    if not uris or bad:
        return [
            error(
                _G,
                "tls-rpt.record",
                name,
                f"unusable record: {records[0]}",
                "RFC 8460 §3: the record needs rua= with mailto: or https: URIs; senders "
                "ignore it otherwise.",
                f'Publish {name}. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@{domain}"',
            )
        ]
    return [ok(_G, "tls-rpt.record", name, records[0], rua=uris)]


async def check_bimi(
    lookups: Lookups,
    domain: str,
    dmarc: DMARCRecord | None,
    access: Access,
) -> list[Finding]:
    name = f"default._bimi.{domain}"
    looked = await lookups.txt(name)
    if looked.error:
        return [_unchecked(name, looked.error)]
    records = [t for t in looked.texts if t.replace(" ", "").upper().startswith("V=BIMI1")]
    if not records:
        return [
            info(
                _G,
                "bimi.record",
                name,
                "no BIMI record",
                "Mailbox providers that support BIMI show a generic avatar beside your mail.",
            )
        ]
    tags = {
        k.strip().lower(): v.strip()
        for k, _, v in (p.partition("=") for p in records[0].split(";") if p.strip())
    }
    logo = tags.get("l", "")
    found: list[Finding] = []
    if logo and not logo.lower().startswith("https://"):
        found.append(
            error(
                _G,
                "bimi.record",
                name,
                f"l={logo}: the logo is not an https URL",
                "Providers fetch the logo over HTTPS only.",
                "Serve the SVG logo over HTTPS and name it in l=.",
            )
        )
    else:
        found.append(ok(_G, "bimi.record", name, records[0]))
    enforced = dmarc is not None and dmarc.p != "none" and dmarc.pct == 100
    if not enforced:
        found.append(
            warning(
                _G,
                "bimi.dmarc",
                name,
                "DMARC is not enforced (p=quarantine or reject, pct=100)",
                "Providers show a BIMI logo only for domains whose DMARC policy is enforced.",
                "Move DMARC to p=quarantine or p=reject with pct=100.",
            )
        )
    if logo.lower().startswith("https://"):
        found.append(await _logo(lookups, logo, access))
    return found


async def _logo(lookups: Lookups, url: str, access: Access) -> Finding:
    parts = urlsplit(url)
    host = parts.hostname or ""
    fetched = await fetch(lookups, host, parts.path or "/", access, port=parts.port)
    r = fetched.response
    problem = fetched.problem
    if r is not None:
        media = r.headers.get("content-type", "").partition(";")[0].strip().lower()
        if r.status != 200:
            problem = f"HTTP status {r.status}"
        elif media != "image/svg+xml" or b"<svg" not in r.body[:4096]:
            problem = f"not an SVG image (content type {media or 'none'})"
    if problem:
        return warning(
            _G,
            "bimi.logo",
            url,
            f"the logo cannot be used: {problem}",
            "Providers show no logo when they cannot fetch an SVG from l=.",
            "Serve the logo as an SVG Tiny PS file (image/svg+xml) at the l= URL.",
        )
    return ok(_G, "bimi.logo", url, "an SVG logo is served")


def _unchecked(name: str, problem: str) -> Finding:
    return warning(
        _G,
        "dns.lookup",
        name,
        f"not checked: {problem}",
        "Senders that cannot read this record act as if it were not there.",
        "Check that the domain's name servers answer TXT queries.",
    )


def _broken_record(name: str, problem: str) -> Finding:
    return error(
        _G,
        "mta-sts.record",
        name,
        f"unusable record: {problem}",
        "RFC 8461 §3.1: senders ignore a record that does not parse, and never fetch the policy.",
        f'Publish {name}. IN TXT "v=STSv1; id=20260101T000000"',
    )
