"""SMTP TLS reports we send (RFC 8460): one policy domain's day of our outbound sessions.

What this module owns: the report's JSON (§4.4, from the aggregates
:meth:`courrier.store.Store.tls_report` keeps per policy), its gzip file and file name, the
report message (§5.3), its summary for ``courrier report``, and where it goes: the ``rua`` of
the domain's ``_smtp._tls`` TXT record (§3). Only ``mailto:`` URIs are used; the ``https:``
POST (§5.2) is left out: reports are sent by mail, DKIM-signed, as the large senders do.
Sending is :mod:`courrier.mailauth.reporting`'s business.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Sequence
from typing import Any

import dns.asyncresolver

from courrier.dns.resolver import txt_records
from courrier.mailauth.aggregate import gzipped, mailto_address, report_headers, utc
from courrier.message import compose
from courrier.store.transport import FailureCount, PolicyDay

__all__ = [
    "MEDIA_TYPE",
    "filename",
    "gzipped",
    "message",
    "parse_record",
    "report_json",
    "rua",
    "summary",
]

#: §5.3 and §6.4: the gzip'd report's media type.
MEDIA_TYPE = "application/tlsrpt+gzip"


def _rfc3339(epoch: int) -> str:
    """§4.4 date-time (RFC 3339), in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def report_json(
    policies: Sequence[PolicyDay],
    *,
    org: str,
    contact: str,
    report_id: str,
    begin: int,
    end: int,
) -> str:
    """The report (§4.4) on ``policies``, one policy domain's entries of the day."""
    value = {
        "organization-name": org,
        "date-range": {"start-datetime": _rfc3339(begin), "end-datetime": _rfc3339(end)},
        "contact-info": contact,
        "report-id": report_id,
        "policies": [_policy(p) for p in policies],
    }
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _policy(day: PolicyDay) -> dict[str, Any]:
    """One ``policies`` entry: the policy applied (§4.4: its type, its text as lines, the
    domain and the MX patterns; a ``no-policy-found`` entry has neither text nor patterns),
    the session counts and the failures."""
    policy: dict[str, Any] = {"policy-type": day.policy_type}
    if day.policy_strings:
        policy["policy-string"] = list(day.policy_strings)
    policy["policy-domain"] = day.policy_domain
    if day.mx_hosts:
        policy["mx-host"] = list(day.mx_hosts)
    return {
        "policy": policy,
        "summary": {
            "total-successful-session-count": day.successes,
            "total-failure-session-count": day.failures,
        },
        "failure-details": [_detail(d) for d in day.details],
    }


def _detail(failure: FailureCount) -> dict[str, Any]:
    """§4.4 failure-details: the result type (§4.3) and count, and what is known of the
    session; our reason text goes in ``failure-reason-code`` (a TLS error code or message)."""
    detail: dict[str, Any] = {"result-type": failure.result_type}
    for key, value in (
        ("sending-mta-ip", failure.sending_ip),
        ("receiving-mx-hostname", failure.receiving_mx),
        ("receiving-ip", failure.receiving_ip),
    ):
        if value:
            detail[key] = value
    detail["failed-session-count"] = failure.sessions
    if failure.additional:
        detail["failure-reason-code"] = failure.additional
    return detail


def summary(policies: Sequence[PolicyDay]) -> dict[str, Any]:
    """What ``courrier report list|show`` prints: sessions, per policy, and the failures."""
    return {
        "successes": sum(p.successes for p in policies),
        "failures": sum(p.failures for p in policies),
        "policies": [
            {
                "policy_domain": p.policy_domain,
                "policy_type": p.policy_type,
                "successes": p.successes,
                "failures": p.failures,
                "policy_strings": list(p.policy_strings),
                "mx_host_patterns": list(p.mx_hosts),
            }
            for p in policies
        ],
        "failure_details": [
            {
                "policy_domain": p.policy_domain,
                "result_type": d.result_type,
                "sessions": d.sessions,
                "sending_mta_ip": d.sending_ip,
                "receiving_mx_hostname": d.receiving_mx,
                "receiving_ip": d.receiving_ip,
                "failure_reason_code": d.additional,
            }
            for p in policies
            for d in p.details
        ],
    }


def filename(submitter: str, domain: str, begin: int, end: int, unique: str) -> str:
    """§5.3: ``sender!policy-domain!begin-timestamp!end-timestamp!unique-id.json.gz``."""
    return f"{submitter}!{domain}!{begin}!{end}!{unique}.json.gz"


def parse_record(text: str) -> list[str] | None:
    """The ``rua`` URIs of a TLSRPT record (§3: ``v=TLSRPTv1`` first, fields separated by
    ``;``, the URIs of ``rua`` by ``,``); None when ``text`` is not one."""
    fields = [f.strip() for f in text.split(";")]
    if fields[0] != "v=TLSRPTv1":
        return None
    for field in fields[1:]:
        name, equals, value = field.partition("=")
        if equals and name.strip() == "rua":
            return [uri.strip() for uri in value.split(",") if uri.strip()]
    return None  # rua is required


async def rua(resolver: dns.asyncresolver.Resolver, domain: str) -> list[str]:
    """The mailboxes of ``domain``'s TLSRPT record (``_smtp._tls.<domain>``); none when it
    has no record or more than one (§3: then it does not take reports). ``https:`` URIs are
    left out (we do not POST reports). :class:`~courrier.dns.resolver.TempDNSError` when the
    DNS gave no answer."""
    texts = await txt_records(resolver, f"_smtp._tls.{domain}")
    parsed = [parse_record(t.decode("utf-8", "replace")) for t in texts]
    found = [r for r in parsed if r is not None]
    if len(found) != 1:
        return []
    addresses: list[str] = []
    for uri in found[0]:
        address = mailto_address(uri)
        if address is not None and address.lower() not in (a.lower() for a in addresses):
            addresses.append(address)
    return addresses


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
    """The report message (§5.3): a multipart/report (RFC 6522) of report-type tlsrpt with a
    text part and the gzip'd report, the TLS-Report-Domain and TLS-Report-Submitter fields
    and the Subject of §5.3's ABNF."""
    headers = [
        *report_headers(sender, to, domain, submitter, report_id, now),
        ("TLS-Report-Domain", domain),
        ("TLS-Report-Submitter", submitter),
    ]
    about = textwrap.fill(
        f"This is an SMTP TLS report (RFC 8460) from {submitter}: how the TLS of the "
        f"sessions it opened to deliver mail to {domain} went. It was sent to the address "
        "in the rua field of the domain's TLSRPT record (_smtp._tls).",
        width=72,
    )
    text = (
        f"{about}\n"
        "\n"
        f"Policy domain: {domain}\n"
        f"Submitter:     {submitter}\n"
        f"Report-ID:     {report_id}\n"
        f"Period:        {utc(begin)} to {utc(end)} UTC\n"
    )
    return compose.multipart(
        headers,
        [compose.text_part(text), compose.attachment(MEDIA_TYPE, name, report)],
        subtype="report",
        params='report-type="tlsrpt"',
    )
