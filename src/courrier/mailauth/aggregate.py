"""DMARC aggregate reports we send (RFC 7489 §7.2): one policy domain's day, as the Domain
Owner asked for it in its record's ``rua`` tag.

What this module owns: the report's XML in the schema of RFC 7489 Appendix C (made from the
rows :mod:`courrier.store.dmarcresults` counted, in the JSON shape :mod:`courrier.mailauth.dmarc`
writes), its gzip file and file name, the message that carries it (§7.2.1.1), its summary for
``courrier report``, and where it may go: the ``rua`` URIs, with the external destinations
verified in the DNS (§7.1) and the size limits of §6.2 applied. Only ``mailto:`` URIs are used:
they are the only ones RFC 7489 says how to deliver to (§7.2.1.1; §7.2.1.2 leaves other
schemes to later documents). Sending is :mod:`courrier.mailauth.reporting`'s business.
"""

from __future__ import annotations

import email.utils
import gzip
import ipaddress
import json
import logging
import re
import secrets
import textwrap
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver

from courrier.dns.resolver import TempDNSError, txt_records
from courrier.mailauth.orgdomain import organizational_domain
from courrier.message import compose
from courrier.store.dmarcresults import DmarcCount

__all__ = [
    "MEDIA_TYPE",
    "Destination",
    "destinations",
    "feedback_xml",
    "filename",
    "gzipped",
    "mailto_address",
    "message",
    "parse_uri",
    "published_policy",
    "summary",
    "within_limits",
]

log = logging.getLogger("courrier.mailauth")

#: The ``<version>`` Appendix C requires of a report (what the large reporters write).
VERSION = "1.0"
#: §7.2.1.1: the report SHOULD be gzip'd and then SHOULD be sent as application/gzip.
MEDIA_TYPE = "application/gzip"
#: Source rows listed in a summary (the report itself, kept beside it, has them all).
MAX_SOURCES = 1000

# Appendix C's enumerations; a value outside them (none is expected) is written as the default.
_ALIGNMENT = ("r", "s")
DISPOSITIONS = ("none", "quarantine", "reject")
_DMARC_RESULTS = ("pass", "fail")
_OVERRIDES = ("forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy")
_DKIM_RESULTS = ("none", "pass", "fail", "policy", "neutral", "temperror", "permerror")
_SPF_RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
_SPF_SCOPES = ("helo", "mfrom")

# XML 1.0 §2.2 Char: what a document may hold at all (ElementTree escapes, but keeps these).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# §6.2: dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ], units of 2^10, 2^20…
_SIZE = re.compile(r"^([0-9]+)([kmgt]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
# §7.1 step 5 (and §6.4): the record's first tag is v=DMARC1.
_DMARC1 = re.compile(r"^\s*v\s*=\s*DMARC1\s*(;|$)")


# --- the report ------------------------------------------------------------------------------


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def published_policy(counts: Sequence[DmarcCount]) -> dict[str, Any]:
    """The policy of the day's last counted row: a report has one ``policy_published`` even
    when the record changed during the period (§7.2 allows that)."""
    return _json(counts[-1].policy)


def _choice(value: object, allowed: Sequence[str], default: str) -> str:
    text = str(value).lower() if value is not None else ""
    return text if text in allowed else default


def _clean(value: object) -> str:
    return _NOT_XML.sub("", str(value))


def _leaf(parent: ET.Element, name: str, value: object) -> None:
    ET.SubElement(parent, name).text = _clean(value)


def _source_ip(value: object) -> str:
    """An address as Appendix C's IPAddress pattern takes it: dotted IPv4, or IPv6 written
    out in full (eight groups, no ``::``)."""
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return str(value)
    return address.exploded if address.version == 6 else str(address)


def feedback_xml(
    counts: Sequence[DmarcCount],
    *,
    org: str,
    email: str,
    report_id: str,
    begin: int,
    end: int,
) -> str:
    """The aggregate report (Appendix C's ``feedback``) on one policy domain's ``counts``:
    every element the schema requires (minOccurs 1), in its order, and no other (``np`` is
    DMARCbis, not RFC 7489: left out so that the report validates)."""
    policy = published_policy(counts)
    root = ET.Element("feedback")
    _leaf(root, "version", VERSION)
    meta = ET.SubElement(root, "report_metadata")
    _leaf(meta, "org_name", org)
    _leaf(meta, "email", email)
    _leaf(meta, "report_id", report_id)
    period = ET.SubElement(meta, "date_range")
    _leaf(period, "begin", begin)
    _leaf(period, "end", end)
    published = ET.SubElement(root, "policy_published")
    _leaf(published, "domain", policy.get("domain") or counts[0].policy_domain)
    _leaf(published, "adkim", _choice(policy.get("adkim"), _ALIGNMENT, "r"))
    _leaf(published, "aspf", _choice(policy.get("aspf"), _ALIGNMENT, "r"))
    p = _choice(policy.get("p"), DISPOSITIONS, "none")
    _leaf(published, "p", p)
    _leaf(published, "sp", _choice(policy.get("sp"), DISPOSITIONS, p))
    pct = policy.get("pct")
    _leaf(published, "pct", pct if isinstance(pct, int) and not isinstance(pct, bool) else 100)
    _leaf(published, "fo", policy.get("fo") or "0")
    for count in counts:
        _record(root, count)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _record(root: ET.Element, count: DmarcCount) -> None:
    """One ``record``: the row (source, count, what DMARC gave and why), the identifiers and
    the authentication results as they came, aligned or not."""
    data = _json(count.record)
    record = ET.SubElement(root, "record")
    row = ET.SubElement(record, "row")
    _leaf(row, "source_ip", _source_ip(data.get("source_ip")))
    _leaf(row, "count", count.count)
    evaluated = ET.SubElement(row, "policy_evaluated")
    _leaf(evaluated, "disposition", _choice(data.get("disposition"), DISPOSITIONS, "none"))
    _leaf(evaluated, "dkim", _choice(data.get("dkim"), _DMARC_RESULTS, "fail"))
    _leaf(evaluated, "spf", _choice(data.get("spf"), _DMARC_RESULTS, "fail"))
    for given in data.get("reasons") or []:
        if not isinstance(given, dict):
            continue
        kind = str(given.get("type") or "")
        comment = str(given.get("comment") or "")
        if kind not in _OVERRIDES:
            # A reason of our own that Appendix C has no name for: "other", told in the comment.
            comment, kind = f"{kind}: {comment}" if comment else kind, "other"
        reason = ET.SubElement(evaluated, "reason")
        _leaf(reason, "type", kind)
        if comment:
            _leaf(reason, "comment", comment)
    identifiers = ET.SubElement(record, "identifiers")
    if data.get("envelope_to"):
        _leaf(identifiers, "envelope_to", data["envelope_to"])
    envelope_from = str(data.get("envelope_from") or "")
    header_from = str(data.get("header_from") or "")
    # Required by Appendix C; empty for the null reverse-path (there is no MAIL FROM domain).
    _leaf(identifiers, "envelope_from", envelope_from)
    _leaf(identifiers, "header_from", header_from)
    results = ET.SubElement(record, "auth_results")
    for given in data.get("dkim_results") or []:
        if not isinstance(given, dict):
            continue
        dkim = ET.SubElement(results, "dkim")
        _leaf(dkim, "domain", given.get("domain") or "")
        if given.get("selector"):
            _leaf(dkim, "selector", given["selector"])
        _leaf(dkim, "result", _choice(given.get("result"), _DKIM_RESULTS, "none"))
    spf_results = [r for r in data.get("spf_results") or [] if isinstance(r, dict)]
    if not spf_results:
        # "There will always be at least one SPF result" (minOccurs 1): none was checked.
        spf_results = [{"domain": envelope_from or header_from, "scope": "mfrom", "result": "none"}]
    for given in spf_results:
        spf = ET.SubElement(results, "spf")
        _leaf(spf, "domain", given.get("domain") or "")
        _leaf(spf, "scope", _choice(given.get("scope"), _SPF_SCOPES, "mfrom"))
        _leaf(spf, "result", _choice(given.get("result"), _SPF_RESULTS, "none"))


def summary(counts: Sequence[DmarcCount]) -> dict[str, Any]:
    """What ``courrier report list|show`` prints of the report: messages, how many passed
    DMARC (an aligned DKIM or SPF pass), the dispositions applied, the policy and the rows."""
    policy = published_policy(counts)
    messages = passed = 0
    dispositions = dict.fromkeys(DISPOSITIONS, 0)
    sources: list[dict[str, Any]] = []
    for count in counts:
        data = _json(count.record)
        disposition = _choice(data.get("disposition"), DISPOSITIONS, "none")
        messages += count.count
        dispositions[disposition] += count.count
        if "pass" in (data.get("dkim"), data.get("spf")):
            passed += count.count
        sources.append(
            {
                "ip": str(data.get("source_ip") or ""),
                "count": count.count,
                "disposition": disposition,
                "dkim": str(data.get("dkim") or ""),
                "spf": str(data.get("spf") or ""),
                "header_from": str(data.get("header_from") or ""),
            }
        )
    return {"rows": len(counts), **summary_fields(messages, passed, dispositions, policy, sources)}


def summary_fields(
    messages: int,
    passed: int,
    dispositions: dict[str, int],
    policy: dict[str, Any],
    sources: list[dict[str, Any]],
) -> dict[str, Any]:
    """The summary of a DMARC aggregate report, sent (:func:`summary`) or received
    (``courrier.mailauth.reportin``): totals, dispositions, the policy, and the sources with
    the most messages first (at most :data:`MAX_SOURCES`)."""
    sources = sorted(sources, key=lambda s: -int(s["count"]))
    fields: dict[str, Any] = {
        "messages": messages,
        "pass": passed,
        "fail": messages - passed,
        "dispositions": dispositions,
        "policy": {k: policy.get(k) for k in ("p", "sp", "pct", "adkim", "aspf")},
        "sources": sources[:MAX_SOURCES],
    }
    if len(sources) > MAX_SOURCES:
        fields["sources_left_out"] = len(sources) - MAX_SOURCES
    return fields


def gzipped(text: str) -> bytes:
    """The report as §7.2.1.1 asks for it: gzip'd (no file time: the same report, the same
    octets)."""
    return gzip.compress(text.encode("utf-8"), mtime=0)


def filename(receiver: str, domain: str, begin: int, end: int, unique: str) -> str:
    """§7.2.1.1: ``receiver!policy-domain!begin-timestamp!end-timestamp!unique-id.xml.gz``."""
    return f"{receiver}!{domain}!{begin}!{end}!{unique}.xml.gz"


def message(
    *,
    sender: str,
    to: Sequence[str],
    domain: str,
    submitter: str,
    report_id: str,
    report: bytes,
    name: str,
    begin: int,
    end: int,
    now: float,
) -> bytes:
    """The report message (§7.2.1.1): from ``sender`` to the ``rua`` mailboxes, the Subject
    of the ABNF there (the Report-ID in angle brackets), a short text part and the gzip'd report."""
    headers = report_headers(sender, to, domain, submitter, report_id, now)
    about = textwrap.fill(
        f"This is a DMARC aggregate report (RFC 7489) from {submitter} on the mail it "
        f"received from {domain}: the results of checking it against the domain's DMARC "
        "policy. It was sent to the address in the rua tag of the domain's DMARC record.",
        width=72,
    )
    text = (
        f"{about}\n"
        "\n"
        f"Report domain: {domain}\n"
        f"Submitter:     {submitter}\n"
        f"Report-ID:     {report_id}\n"
        f"Period:        {utc(begin)} to {utc(end)} UTC\n"
    )
    return compose.multipart(
        headers, [compose.text_part(text), compose.attachment(MEDIA_TYPE, name, report)]
    )


def report_headers(
    sender: str, to: Sequence[str], domain: str, submitter: str, report_id: str, now: float
) -> list[tuple[str, str]]:
    """The header fields of a report message, DMARC or TLS (RFC 7489 §7.2.1.1 and RFC 8460
    §5.3 give the same Subject)."""
    return [
        ("From", sender),
        ("To", ", ".join(to)),
        ("Subject", f"Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>"),
        ("Date", email.utils.formatdate(now, localtime=True)),
        ("Message-ID", f"<{secrets.token_hex(12)}@{submitter}>"),
        # RFC 3834 §5: made by a program, not to be answered by one.
        ("Auto-Submitted", "auto-generated"),
    ]


def utc(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


# --- where it goes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    """A ``rua`` URI we may send the report to: its mailbox and §6.2 size limit (octets)."""

    uri: str
    address: str
    max_size: int | None = None

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def mailto_address(uri: str) -> str | None:
    """The mailbox of a ``mailto:`` URI (RFC 6068: percent-encoded, ``?`` headers dropped),
    its domain in lower case; None for another scheme or not one mailbox."""
    scheme, colon, rest = uri.strip().partition(":")
    if not colon or scheme.lower() != "mailto":
        return None
    address = urllib.parse.unquote(rest.partition("?")[0]).strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "," in address or any(c.isspace() for c in address):
        return None
    return f"{local}@{domain.lower().rstrip('.')}"


def parse_uri(uri: str) -> Destination | None:
    """A ``rua`` URI as written (§6.2: an optional ``!size`` limit after it); None when it is
    not a ``mailto:`` URI or is malformed (a ``!`` inside a URI must be encoded, §6.4)."""
    text, max_size = uri.strip(), None
    base, bang, limit = text.rpartition("!")
    if bang:
        size = _SIZE.match(limit)
        if size is None:
            return None
        text, max_size = base, int(size[1]) * _UNITS[size[2].lower()]
    address = mailto_address(text)
    return None if address is None else Destination(uri, address, max_size)


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


async def destinations(
    resolver: dns.asyncresolver.Resolver, policy_domain: str, rua: Sequence[str]
) -> list[Destination]:
    """The ``rua`` URIs the report may go to, in their order (§7.2.1), each mailbox once.

    A URI whose host is in another organizational domain than the policy domain is used only
    when ``<policy-domain>._report._dmarc.<host>`` has a TXT record starting ``v=DMARC1``
    (§7.1); a ``rua`` there replaces it, when all its URIs have the same host (else neither is
    used, §7.1 step 8). When that lookup gets no answer the URI is left out of this report."""
    found: list[Destination] = []
    own = organizational_domain(policy_domain)
    for uri in rua:
        destination = parse_uri(uri)
        if destination is None:
            log.info("DMARC report for %s: rua %r left out (mailto: URIs only)", policy_domain, uri)
            continue
        if organizational_domain(destination.domain) == own:
            found.append(destination)
            continue
        name = f"{policy_domain}._report._dmarc.{destination.domain}"
        try:
            records = await txt_records(resolver, name)
        except TempDNSError as exc:
            log.warning(
                "DMARC report for %s: not sent to %s this time: %s",
                policy_domain,
                destination.address,
                exc,
            )
            continue
        texts = [r.decode("utf-8", "replace") for r in records]
        authorizing = [t for t in texts if _DMARC1.match(t)]
        if not authorizing:
            log.info(
                "DMARC report for %s: %s did not authorize it (no DMARC1 record at %s)",
                policy_domain,
                destination.address,
                name,
            )
            continue
        overrides = _overrides(authorizing, destination)
        if overrides is None:
            log.info(
                "DMARC report for %s: %s redirects reports to another host; neither used",
                policy_domain,
                destination.address,
            )
            continue
        found.extend(overrides or [destination])
    unique: dict[str, Destination] = {}
    for destination in found:
        unique.setdefault(destination.address.lower(), destination)
    return list(unique.values())


def _overrides(records: Sequence[str], original: Destination) -> list[Destination] | None:
    """§7.1 step 8: the ``rua`` of the authorizing records, replacing the original URI; None
    when one of them names another host (then neither may be used)."""
    replaced: list[Destination] = []
    for text in records:
        rua = _tags(text).get("rua")
        if not rua:
            continue
        for uri in rua.split(","):
            destination = parse_uri(uri)
            if destination is None:
                continue
            if destination.domain != original.domain:
                return None
            replaced.append(destination)
    return replaced


def within_limits(found: Sequence[Destination], size: int) -> list[Destination]:
    """§7.2.1: a URI whose size limit the message exceeds (after gzip and base64) MUST NOT be
    used."""
    return [d for d in found if d.max_size is None or size <= d.max_size]
