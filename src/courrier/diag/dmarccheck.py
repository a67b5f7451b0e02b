"""A domain's DMARC record (RFC 7489 §6), read more strictly than a receiver reads it.

A receiver forgives: an unknown ``p=`` with a ``rua=`` counts as ``p=none`` (§6.6.3), unknown
tags are ignored (§6.3). A diagnosis points them out, since each is most often a typo that
leaves the domain unprotected. Findings: one record at ``_dmarc.DOMAIN`` (or the organizational
domain's, which then applies, §6.6.3), its syntax (:func:`courrier.mailauth.dmarc.parse_record`
plus the tag names and URIs), the policy (``none`` only monitors), ``pct`` below 100, report
addresses (``rua``, ``ruf``) and, for those in another organization, the authorization record
that domain must publish (§7.1: ``DOMAIN._report._dmarc.DEST``).
"""

from __future__ import annotations

import asyncio
from typing import Final

from courrier.diag.findings import Finding, error, info, ok, warning
from courrier.diag.lookups import Lookups
from courrier.mailauth.dmarc import DMARCRecord, DMARCSyntaxError, parse_record
from courrier.mailauth.orgdomain import organizational_domain

__all__ = ["check_dmarc"]

_G = "authentication"
#: §6.3's tags, DMARCbis's np, t and psd.
_TAGS: Final = frozenset(
    {"v", "p", "sp", "np", "pct", "adkim", "aspf", "rua", "ruf", "fo", "rf", "ri", "t", "psd"}
)


async def check_dmarc(lookups: Lookups, domain: str) -> tuple[list[Finding], DMARCRecord | None]:
    """The findings, and the record that applies to ``domain`` (for BIMI's policy check)."""
    name = f"_dmarc.{domain}"
    looked = await lookups.txt(name)
    if looked.error:
        return [
            warning(
                _G,
                "dmarc.record",
                name,
                f"not checked: {looked.error}",
                "Receivers that cannot read the DMARC record apply no policy.",
                "Check that the domain's name servers answer TXT queries.",
            )
        ], None
    records = [t for t in looked.texts if t.replace(" ", "")[:8].upper() == "V=DMARC1"]
    if not records:
        return await _inherited(lookups, domain)
    if len(records) > 1:
        return [
            error(
                _G,
                "dmarc.record",
                name,
                f"{len(records)} DMARC records",
                "RFC 7489 §6.6.3: with more than one record receivers apply no policy.",
                "Keep one v=DMARC1 record.",
                records=records,
            )
        ], None
    text = records[0]
    try:
        record = parse_record(text)
    except DMARCSyntaxError as exc:
        return [_syntax(name, str(exc), text)], None
    problems = _lint(text)
    if problems:
        return [_syntax(name, "; ".join(problems), text)], record
    findings = [ok(_G, "dmarc.record", name, text)]
    findings += _policy(name, record)
    findings += await _destinations(lookups, domain, record)
    return findings, record


def _syntax(name: str, problem: str, text: str) -> Finding:
    return error(
        _G,
        "dmarc.syntax",
        name,
        f"{problem}",
        "Receivers read a broken record as no policy, or as p=none: spoofed mail is "
        "delivered and no reports come back.",
        "Correct the record, e.g. v=DMARC1; p=quarantine; rua=mailto:dmarc@your-domain",
        record=text,
    )


def _lint(text: str) -> list[str]:
    """What :func:`parse_record` forgives: unknown tags, a bad ``p=``, URIs without scheme."""
    problems: list[str] = []
    for part in (p.strip() for p in text.split(";")):
        name, _, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not part:
            continue
        if name not in _TAGS:
            problems.append(f"unknown tag {name!r} (a typo?)")
        elif name in ("p", "sp", "np") and value.lower() not in ("none", "quarantine", "reject"):
            problems.append(f"{name}={value!r} is not none, quarantine or reject")
        elif name in ("rua", "ruf"):
            for uri in (u.strip() for u in value.split(",") if u.strip()):
                if not uri.lower().startswith(("mailto:", "https:")):
                    problems.append(f"{name}: {uri!r} is not a mailto: URI")
        elif name == "pct" and not (value.isdigit() and int(value) <= 100):
            problems.append(f"pct={value!r} is not 0 to 100")
    if "p" not in {p.partition("=")[0].strip().lower() for p in text.split(";")}:
        problems.append("no p= tag")
    return problems


def _policy(name: str, record: DMARCRecord) -> list[Finding]:
    found: list[Finding] = []
    if record.p == "none":
        found.append(
            warning(
                _G,
                "dmarc.policy",
                name,
                "p=none: monitoring only",
                "Receivers deliver mail that fails DMARC as if there were no policy: the "
                "domain can be spoofed.",
                "Once the reports show your own mail passes, move to p=quarantine, then p=reject.",
            )
        )
    else:
        found.append(ok(_G, "dmarc.policy", name, f"p={record.p}, sp={record.sp}"))
    if record.pct < 100:
        found.append(
            info(
                _G,
                "dmarc.pct",
                name,
                f"pct={record.pct}: the policy applies to part of the mail",
                "RFC 7489 §6.6.4: the rest gets the next policy down.",
            )
        )
    if not record.rua:
        found.append(
            info(
                _G,
                "dmarc.rua",
                name,
                "no rua=: no aggregate reports",
                "Without reports you cannot see who sends as your domain, nor whether your "
                "own mail passes.",
            )
        )
    if record.testing:
        found.append(info(_G, "dmarc.testing", name, "t=y: the policy is in test mode (DMARCbis)"))
    return found


async def _destinations(lookups: Lookups, domain: str, record: DMARCRecord) -> list[Finding]:
    """§7.1: a report address in another organization must say it takes our reports."""
    mine = organizational_domain(domain)
    outside: dict[str, str] = {}
    for uri in record.rua + record.ruf:
        if not uri.lower().startswith("mailto:"):
            continue
        dest = uri[7:].split("!", 1)[0].rpartition("@")[2].lower().rstrip(".")
        if dest and organizational_domain(dest) != mine:
            outside.setdefault(dest, uri)
    names = {dest: f"{domain}._report._dmarc.{dest}" for dest in outside}
    looked = await asyncio.gather(*(lookups.txt(n) for n in names.values()))
    found: list[Finding] = []
    for (dest, name), answer in zip(names.items(), looked, strict=True):
        if any(t.replace(" ", "").upper().startswith("V=DMARC1") for t in answer.texts):
            found.append(ok(_G, "dmarc.report-auth", name, f"{dest} accepts reports"))
        elif not answer.error:
            found.append(
                warning(
                    _G,
                    "dmarc.report-auth",
                    name,
                    f"{dest} does not say it accepts reports for {domain}",
                    "RFC 7489 §7.1: receivers send no reports to an address of another "
                    "organization that has not authorized them.",
                    f'Ask {dest} to publish {name}. IN TXT "v=DMARC1", or report to an '
                    "address of your own domain.",
                )
            )
    return found


async def _inherited(lookups: Lookups, domain: str) -> tuple[list[Finding], DMARCRecord | None]:
    name = f"_dmarc.{domain}"
    parent = organizational_domain(domain)
    if parent != domain:
        looked = await lookups.txt(f"_dmarc.{parent}")
        records = [t for t in looked.texts if t.replace(" ", "")[:8].upper() == "V=DMARC1"]
        if len(records) == 1:
            try:
                record = parse_record(records[0])
            except DMARCSyntaxError:
                record = None
            if record is not None:
                seen = f"no record; {parent}'s applies (sp={record.sp})"
                return [ok(_G, "dmarc.record", name, seen)], record
    return [
        warning(
            _G,
            "dmarc.record",
            name,
            "no DMARC record",
            "Anyone can send mail as the domain; Gmail and Yahoo require DMARC from bulk "
            "senders, and without it no reports show who sends as you.",
            f'Publish {name}. IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"',
        )
    ], None
