"""`courrier report list|show`: DMARC aggregate reports (RFC 7489 §7.2) and SMTP TLS reports
(RFC 8460), those other servers sent us and those we sent, as the store keeps them.

A report's row has a JSON summary (made where the report was read or built, in
``courrier.mailauth``); this module only lays it out. Summaries are read tolerantly: a key that
is missing counts as zero or empty.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from courrier.cli.common import (
    FAILURE,
    OK,
    USAGE,
    Subparsers,
    command,
    command_group,
    open_from_args,
    print_json,
    print_table,
)
from courrier.mailauth import reporting
from courrier.store.reports import Report

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

_KINDS = {"dmarc": "DMARC aggregate report", "tlsrpt": "SMTP TLS report"}
# What other servers wrote is printed with its control characters (which a terminal would obey:
# escape sequences, carriage returns) shown as "?".
_CONTROLS = str.maketrans(dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], "?"))


def _text(value: object) -> str:
    return str(value).translate(_CONTROLS)


def _say(line: str = "") -> None:
    print(_text(line))


def _table(headers: list[str], rows: list[tuple[object, ...]]) -> None:
    print_table(headers, [[_text(cell) for cell in row] for row in rows])


def register(sub: Subparsers) -> None:
    group = command_group(sub, "report", "DMARC aggregate and SMTP TLS reports")
    add_commands(group)


def add_commands(group: Subparsers) -> None:
    """The actions of ``courrier report``; one that sends reports joins them here."""
    listing = command(group, "list", "reports received and sent, newest first", list_, json=True)
    listing.add_argument("--kind", choices=tuple(_KINDS), help="only DMARC or only TLS reports")
    listing.add_argument(
        "--direction", choices=("sent", "received"), help="only those sent or received"
    )
    showing = command(
        group, "show", "one report: its summary, or itself with --raw", show, json=True
    )
    showing.add_argument("id", type=int, metavar="ID", help="the report's id (see report list)")
    showing.add_argument(
        "--raw", action="store_true", help="print the report itself (its XML or JSON text)"
    )
    sending = command(
        group, "send", "send a day's DMARC and TLS reports now (not sent yet)", send, json=True
    )
    sending.add_argument(
        "--day", metavar="YYYY-MM-DD", help="the UTC day to report (default: yesterday)"
    )


def summary_of(report: Report) -> dict[str, Any]:
    """The report's summary; an empty one when it is not a JSON object."""
    try:
        value = json.loads(report.summary)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _day(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def period(report: Report) -> str:
    """The days a report covers, UTC: one day (its end is that day's last second or the next
    midnight), or the first and last."""
    first, last = _day(report.begin_at), _day(max(report.begin_at, report.end_at - 1))
    return first if first == last else f"{first}..{last}"


def one_line(report: Report) -> str:
    """``12 messages, 10 pass, 2 fail (quarantine 2)`` or ``1000 sessions, 3 failed``."""
    summary = summary_of(report)
    if report.kind == "tlsrpt":
        successes, failures = _number(summary.get("successes")), _number(summary.get("failures"))
        return f"{successes + failures} sessions, {failures} failed"
    line = (
        f"{_number(summary.get('messages'))} messages, {_number(summary.get('pass'))} pass, "
        f"{_number(summary.get('fail'))} fail"
    )
    dispositions = summary.get("dispositions")
    if isinstance(dispositions, dict):
        applied = [
            f"{k} {_number(n)}" for k, n in dispositions.items() if k != "none" and _number(n)
        ]
        if applied:
            line += f" ({', '.join(applied)})"
    return line


def _as_json(report: Report, *, content: bool = False) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": report.id,
        "kind": report.kind,
        "direction": report.direction,
        "domain": report.domain,
        "org": report.org,
        "report_id": report.report_id,
        "begin_at": report.begin_at,
        "end_at": report.end_at,
        "created_at": report.created_at,
        "summary": summary_of(report),
    }
    if content:
        value["content"] = report.content
    return value


async def send(args: argparse.Namespace) -> int:
    day = args.day or reporting.previous_day(time.time())
    if not _DAY.fullmatch(day):
        print(f"courrier: {day!r} is not a day (YYYY-MM-DD).", file=sys.stderr)
        return USAGE
    settings, store = await open_from_args(args)
    async with store:
        sent = await reporting.send_day(settings, store, day)
    if args.json:
        print_json([_as_json(r) for r in sent])
        return OK
    if not sent:
        print(f"No reports to send for {day} (none due, or already sent).")
    for report in sent:
        to = ", ".join(summary_of(report).get("to", []))
        print(f"{report.kind} report about {report.domain} queued for {to} (report {report.id})")
    return OK


async def list_(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        reports = await store.list_reports(kind=args.kind, direction=args.direction)
    if args.json:
        print_json([_as_json(r) for r in reports])
        return OK
    if not reports:
        print("No reports.")
        return OK
    _table(
        ["ID", "KIND", "DIRECTION", "DOMAIN", "ORG", "PERIOD (UTC)", "SUMMARY"],
        [(r.id, r.kind, r.direction, r.domain, r.org, period(r), one_line(r)) for r in reports],
    )
    return OK


async def show(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        report = await store.get_report(args.id)
    if report is None:
        print(f"courrier: There is no report {args.id}.", file=sys.stderr)
        return FAILURE
    print_report(report, raw=args.raw, as_json=args.json)
    return OK


def print_report(report: Report, *, raw: bool = False, as_json: bool = False) -> None:
    """The report itself (``raw``: its XML or JSON as received or sent), its row and summary
    as JSON, or its summary laid out for people."""
    if raw:
        sys.stdout.write(report.content if report.content.endswith("\n") else report.content + "\n")
    elif as_json:
        print_json(_as_json(report, content=True))
    else:
        _show_text(report)


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _show_text(report: Report) -> None:
    summary = summary_of(report)
    _say(f"Report {report.id}: {_KINDS.get(report.kind, report.kind)}, {report.direction}")
    _say(f"Domain:     {report.domain}")
    _say(f"Reporter:   {report.org}")
    _say(f"Report id:  {report.report_id}")
    _say(f"Period:     {_when(report.begin_at)} to {_when(report.end_at)} UTC")
    if report.kind == "tlsrpt":
        _show_tlsrpt(report, summary)
    else:
        _show_dmarc(report, summary)


def _show_dmarc(report: Report, summary: dict[str, Any]) -> None:
    policy = summary.get("policy")
    if isinstance(policy, dict):
        published = " ".join(f"{k}={v}" for k, v in policy.items() if v is not None)
        _say(f"Policy:     {published}")
    _say(f"Messages:   {one_line(report)}")
    sources = [s for s in summary.get("sources") or [] if isinstance(s, dict)]
    if not sources:
        return
    _say()
    _table(
        ["SOURCE IP", "MESSAGES", "DISPOSITION", "DKIM", "SPF", "HEADER FROM"],
        [
            (
                s.get("ip", ""),
                _number(s.get("count")),
                s.get("disposition", ""),
                s.get("dkim", ""),
                s.get("spf", ""),
                s.get("header_from", ""),
            )
            for s in sources
        ],
    )
    left_out = _number(summary.get("sources_left_out"))
    if left_out:
        _say(f"... and {left_out} more sources (courrier report show {report.id} --raw)")


def _show_tlsrpt(report: Report, summary: dict[str, Any]) -> None:
    _say(f"Sessions:   {one_line(report)}")
    details = [d for d in summary.get("failure_details") or [] if isinstance(d, dict)]
    for policy in summary.get("policies") or []:
        if not isinstance(policy, dict):
            continue
        domain = policy.get("policy_domain", "")
        _say()
        _say(
            f"Policy {domain} ({policy.get('policy_type', '?')}): "
            f"{_number(policy.get('successes'))} successful, "
            f"{_number(policy.get('failures'))} failed sessions"
        )
        strings = policy.get("policy_strings")
        if isinstance(strings, list) and strings:
            _say(f"  policy: {' | '.join(map(str, strings))}")
        for detail in details:
            if detail.get("policy_domain", domain) == domain:
                _say(f"  {_failure(detail)}")


def _failure(detail: dict[str, Any]) -> str:
    """One failure detail (RFC 8460 §4.3), e.g. ``certificate-expired: 3 sessions to
    mail.example.org [203.0.113.25] from 209.85.220.41``."""
    line = f"{detail.get('result_type', '?')}: {_number(detail.get('sessions'))} sessions"
    mx, ip = detail.get("receiving_mx_hostname"), detail.get("receiving_ip")
    if mx or ip:
        line += " to " + " ".join(x for x in (mx, f"[{ip}]" if ip else None) if x)
    if detail.get("sending_mta_ip"):
        line += f" from {detail['sending_mta_ip']}"
    for key, label in (
        ("receiving_mx_helo", "helo"),
        ("failure_reason_code", "reason"),
        ("additional_info_uri", "see"),
    ):
        if detail.get(key):
            line += f"; {label} {detail[key]}"
    return line
