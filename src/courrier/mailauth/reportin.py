"""Reports other servers send us: DMARC aggregate reports (RFC 7489 §7.2, Appendix C) and SMTP
TLS reports (RFC 8460), found in a message, read and kept in the store.

What this module owns: finding the report attachments of a message (by content type or file
name, then by their content: zip, gzip, XML with ``<feedback>``, JSON), unpacking them within
bounds, reading them with parsedmarc (offline: no DNS query, no IP database, no download), the
:class:`~courrier.store.reports.Report` rows and summaries made of them, and :func:`ingest`,
which keeps those about our domains. What an attachment holds is chosen by whoever sent the
message: one that is broken or hostile (a zip or gzip bomb, a truncated archive, XML with a
DTD) is left out with a log line, never with an exception.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime
import io
import json
import logging
import re
import time
import zipfile
import zlib
from collections.abc import Collection, Iterator
from typing import Any

import idna
import parsedmarc
from parsedmarc.config import ParserConfig

from courrier.mailauth.aggregate import DISPOSITIONS, summary_fields
from courrier.message.headers import param_text, parse_disposition
from courrier.message.mime import MimePart, parse_mime
from courrier.message.text import decode_transfer
from courrier.store import Store
from courrier.store.reports import Report

log = logging.getLogger("courrier.mailauth")

MAX_REPORT_SIZE = 10 * 1024 * 1024
"""Octets a report may unpack to. Real ones are far smaller: a day of a large provider's mail
for one domain is some hundreds of KiB of XML. Deflate reaches about 1000:1, so a bound is what
stands between a 100 KiB attachment and 100 MiB in memory."""
MAX_ATTACHMENTS = 16
"""Candidate parts read in one message; a report message has one."""
MAX_LABEL = 256
"""Characters kept of a reporter's organisation name or report id."""

# What report senders label their attachments with. RFC 7489 §7.2.1.1 names gzip and zip
# (Google sends application/zip, Microsoft and Yahoo application/gzip); RFC 8460 §5.3 the two
# tlsrpt types. Some senders use application/octet-stream and let the file name speak.
_REPORT_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/x-zip-compressed",
        "application/xml",
        "text/xml",
        "application/tlsrpt+gzip",
        "application/tlsrpt+json",
    }
)
_GENERIC_TYPES = frozenset({"application/octet-stream"})
_REPORT_NAMES = (".xml", ".zip", ".gz", ".json")  # .gz covers .xml.gz and .json.gz

_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"

# A DMARC aggregate report never has a DTD (RFC 7489 Appendix C): refusing one outright refuses
# entity expansion ("billion laughs") and external entities before any XML parser sees them.
_DTD = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_FEEDBACK = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?feedback[\s>/]")
# report_metadata/date_range (RFC 7489 Appendix C): seconds since the epoch, UTC.
_DATE_RANGE = re.compile(
    r"<date_range>\s*<begin>\s*(\d{1,12})(?:\.\d*)?\s*</begin>\s*"
    r"<end>\s*(\d{1,12})(?:\.\d*)?\s*</end>"
)
# A host name's labels (RFC 1035 §2.3.4 lengths; "_" as DNS allows it): no spaces, slashes,
# control characters, anything a report could smuggle into a column or a terminal.
_DNS_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class NotAReport(ValueError):
    """A candidate part that holds no report at all (left out quietly)."""


class _KnownAddresses:
    """parsedmarc's IP address cache, knowing every address already: so it makes no reverse
    DNS query, opens no geolocation database and loads no service map for a report's sources,
    whose addresses are all we keep. (parsedmarc only calls ``get`` on it, and stores into it
    only what it did not find.)"""

    def get(self, key: str, default: object = None) -> dict[str, str]:
        return {"ip_address": key}

    def __setitem__(self, key: str, value: object) -> None:
        pass


_PARSER = ParserConfig(
    offline=True,
    always_use_local_files=True,
    # A report's rows as sent: never split into days by a guess over the period.
    normalize_timespan_threshold_hours=float("inf"),
    ip_address_cache=_KnownAddresses(),
)


def find_reports(message: bytes) -> list[Report]:
    """The DMARC aggregate and TLS reports attached to ``message``, as rows to keep (direction
    ``received``). CPU work (unpacking, XML): run it in a thread. Never raises."""
    now = int(time.time())
    found: list[Report] = []
    for n, part in enumerate(_candidates(parse_mime(message))):
        if n == MAX_ATTACHMENTS:
            log.warning("report message: more than %d attachments, the rest left out", n)
            break
        name = _name(part) or part.content_type.type.decode("latin-1")
        try:
            data = decode_transfer(
                message[part.body_start : part.body_end], _transfer_encoding(part)
            )
            found.append(_read(data, now))
        except NotAReport as exc:
            log.debug("attachment %r is no report: %s", name, exc)
        except Exception as exc:  # hostile input read by third-party code: never raise
            log.warning("report attachment %r left out: %s", name, exc)
    return found


async def ingest(store: Store, message: bytes, our_domains: Collection[str]) -> list[int]:
    """Keep the reports attached to ``message`` whose policy domain is one of ``our_domains``
    or below one; the ids of those not kept before (a report received twice is kept once)."""
    reports = await asyncio.to_thread(find_reports, message)
    ours = {d.lower().rstrip(".") for d in our_domains}
    added: list[int] = []
    for report in reports:
        what = f"{report.kind} report {report.report_id!r} from {report.org!r}"
        if not _is_ours(report.domain, ours):
            log.info("%s left out: %s is not a domain of ours", what, report.domain)
            continue
        new = await store.add_report(report)
        if new is None:
            log.info("%s about %s: already kept", what, report.domain)
        else:
            log.info("%s about %s kept as report %d", what, report.domain, new)
            added.append(new)
    return added


#: RFC 7489 §7.2.1.1 and RFC 8460 §5.3 give report messages this Subject; TLS reports also
#: carry ``report-type=tlsrpt``. Messages with neither are not looked into.
_MARKERS = re.compile(rb"^subject:[ \t]*report domain:|tlsrpt", re.IGNORECASE | re.MULTILINE)


class ReportInbox:
    """Looks at mail delivered on the MX for reports about our domains, in the background
    (the message is in the mailbox already; reading its reports must not hold up the next)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._running: set[asyncio.Task[list[int]]] = set()

    def offer(self, message: bytes) -> None:
        head = message[: message.find(b"\r\n\r\n") + 1 or 65536]
        if not _MARKERS.search(head):
            return
        task = asyncio.create_task(self._ingest(message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _ingest(self, message: bytes) -> list[int]:
        domains = [d.name for d in await self.store.list_domains()]
        return await ingest(self.store, message, domains)

    async def idle(self) -> None:
        """Wait for the reports being read (tests, and a clean stop)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


def _is_ours(domain: str, ours: Collection[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in ours)


def _candidates(part: MimePart) -> Iterator[MimePart]:
    """Leaf parts that may hold a report, in order. Encapsulated messages are not entered: a
    report is sent as itself, and a message quoted in a failure report or a bounce is not one."""
    if part.is_multipart:
        for child in part.children:
            yield from _candidates(child)
        return
    mime_type = f"{part.content_type.maintype}/{part.content_type.minor}"
    named = mime_type in _GENERIC_TYPES and (_name(part) or "").lower().endswith(_REPORT_NAMES)
    if mime_type in _REPORT_TYPES or named:
        yield part


def _name(part: MimePart) -> str | None:
    """The file name of a part: Content-Disposition's filename, else Content-Type's name."""
    value = part.headers.get("content-disposition")
    disposition = None if value is None else parse_disposition(value)
    if disposition is not None:
        found = param_text(disposition.params, "filename")
        if found:
            return found
    return param_text(part.content_type.params, "name")


def _transfer_encoding(part: MimePart) -> str:
    value = part.headers.get("content-transfer-encoding") or b""
    return value.decode("latin-1").strip().lower()


def _read(data: bytes, now: int) -> Report:
    """The report in an attachment's octets (zip, gzip or plain)."""
    text = _unpack(data).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        if _DTD.search(text):
            raise ValueError("XML with a DTD (a DMARC report has none; entity expansion refused)")
        if not _FEEDBACK.search(text):
            raise NotAReport("XML without <feedback>")
        return _dmarc(text, now)
    if text.startswith("{"):
        return _tlsrpt(text, now)
    raise NotAReport("neither XML nor JSON")


def _unpack(data: bytes) -> bytes:
    """``data`` unzipped or gunzipped when it is an archive, at most MAX_REPORT_SIZE octets."""
    if data.startswith(_ZIP_MAGIC):
        return _unzip(data)
    if data.startswith(_GZIP_MAGIC):
        return _gunzip(data)
    if len(data) > MAX_REPORT_SIZE:
        raise ValueError(f"larger than {MAX_REPORT_SIZE} octets")
    return data


def _gunzip(data: bytes) -> bytes:
    """RFC 1952 gzip, decompressed no further than MAX_REPORT_SIZE + 1 octets."""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        out = decompressor.decompress(data, MAX_REPORT_SIZE + 1)
    except zlib.error as exc:
        raise ValueError(f"bad gzip data ({exc})") from None
    if len(out) > MAX_REPORT_SIZE:
        raise ValueError(f"gzip data unpacking to more than {MAX_REPORT_SIZE} octets")
    if not decompressor.eof:  # all input read (under the bound) and the stream not ended
        raise ValueError("truncated gzip data")
    return out


def _unzip(data: bytes) -> bytes:
    """The report in a zip archive (its first .xml or .json member, else its first member),
    read no further than MAX_REPORT_SIZE + 1 octets, whatever the archive says its size is."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if not members:
                raise ValueError("empty zip archive")
            member = next(
                (m for m in members if m.filename.lower().endswith((".xml", ".json"))),
                members[0],
            )
            with archive.open(member) as stream:
                out = stream.read(MAX_REPORT_SIZE + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression method.
        raise ValueError(f"bad zip archive ({exc})") from None
    if len(out) > MAX_REPORT_SIZE:
        raise ValueError(f"zip member unpacking to more than {MAX_REPORT_SIZE} octets")
    return out


def _domain(value: object) -> str:
    """A policy domain as the store keeps domains: lower-case ASCII, no final dot."""
    name = str(value or "").strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"policy domain {name!r}: {exc}") from None
    if not _HOSTNAME.fullmatch(name):
        raise ValueError(f"no usable policy domain ({name!r})")
    return name


def _label(value: object) -> str:
    """A name or id from a report, as a line of text (control characters, which a terminal
    would obey, become spaces; runs of spaces one), at most MAX_LABEL characters."""
    text = " ".join(_CONTROLS.sub(" ", str(value if value is not None else "")).split())
    if not text:
        raise ValueError("an empty organisation name or report id")
    return text[:MAX_LABEL]


def _count(value: Any, what: str) -> int:
    """A count from a report: a whole number, not negative."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a count")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: {value!r} is not a count") from None
    if number < 0 or (isinstance(value, float) and value != number):
        raise ValueError(f"{what}: {value!r} is not a count")
    return number


# --- DMARC aggregate reports (RFC 7489 §7.2, Appendix C) ------------------------------------


def _dmarc(text: str, now: int) -> Report:
    parsed: dict[str, Any] = parsedmarc.parse_aggregate_report_xml(text, config=_PARSER)
    meta = parsed["report_metadata"]
    policy = parsed["policy_published"]
    begin, end = _dmarc_period(text, meta)
    sources: list[dict[str, Any]] = []
    dispositions = dict.fromkeys(DISPOSITIONS, 0)
    messages = passed = 0
    for record in parsed["records"]:
        count = _count(record["count"], "row count")
        evaluated = record["policy_evaluated"]
        disposition = str(evaluated["disposition"])
        dispositions[disposition] = dispositions.get(disposition, 0) + count
        messages += count
        # RFC 7489 §6.6.2: DMARC passes when SPF or DKIM passes aligned, which is what
        # policy_evaluated reports (§7.2.1.1's row/policy_evaluated).
        if bool(record["alignment"]["dmarc"]):
            passed += count
        sources.append(
            {
                "ip": str(record["source"]["ip_address"]),
                "count": count,
                "disposition": disposition,
                "dkim": str(evaluated["dkim"]),
                "spf": str(evaluated["spf"]),
                "header_from": str(record["identifiers"]["header_from"] or ""),
            }
        )
    summary = summary_fields(messages, passed, dispositions, policy, sources)
    return Report(
        kind="dmarc",
        direction="received",
        domain=_domain(policy["domain"]),
        org=_label(meta["org_name"]),
        report_id=_label(meta["report_id"]),
        begin_at=begin,
        end_at=end,
        created_at=now,
        summary=json.dumps(summary),
        content=text,
    )


def _dmarc_period(text: str, meta: dict[str, Any]) -> tuple[int, int]:
    """The report's date_range in seconds since the epoch. parsedmarc gives it as local time;
    the XML's own numbers are exact, whatever the time zone and its daylight saving."""
    match = _DATE_RANGE.search(text)
    if match is not None:
        return int(match.group(1)), int(match.group(2))
    local = [
        int(time.mktime(time.strptime(str(meta[key]), "%Y-%m-%d %H:%M:%S")))
        for key in ("begin_date", "end_date")
    ]
    return local[0], local[1]


# --- SMTP TLS reports (RFC 8460 §4) ---------------------------------------------------------


def _tlsrpt(text: str, now: int) -> Report:
    parsed: dict[str, Any] = parsedmarc.parse_smtp_tls_report_json(text)
    policies: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for policy in parsed["policies"]:
        domain = _domain(policy["policy_domain"])
        entry: dict[str, Any] = {
            "policy_domain": domain,
            "policy_type": str(policy["policy_type"]),
            "successes": _count(policy["successful_session_count"], "successful sessions"),
            "failures": _count(policy["failed_session_count"], "failed sessions"),
        }
        for key in ("policy_strings", "mx_host_patterns"):
            if isinstance(policy.get(key), list):
                entry[key] = [str(v) for v in policy[key]]
        policies.append(entry)
        for detail in policy.get("failure_details") or []:
            # RFC 8460 §4.4: result-type and failed-session-count are required; the rest are
            # copied as given.
            details.append(
                {
                    "policy_domain": domain,
                    "result_type": str(detail["result_type"]),
                    "sessions": _count(detail["failed_session_count"], "failed sessions"),
                    **{k: str(v) for k, v in detail.items() if k not in _DETAIL_COUNTED},
                }
            )
    if not policies:
        raise ValueError("a TLS report without policies")
    summary = {
        "successes": sum(p["successes"] for p in policies),
        "failures": sum(p["failures"] for p in policies),
        "policies": policies,
        "failure_details": details,
    }
    return Report(
        kind="tlsrpt",
        direction="received",
        domain=str(policies[0]["policy_domain"]),
        org=_label(parsed["organization_name"]),
        report_id=_label(parsed["report_id"]),
        begin_at=_rfc3339(parsed["begin_date"]),
        end_at=_rfc3339(parsed["end_date"]),
        created_at=now,
        summary=json.dumps(summary),
        content=text,
    )


_DETAIL_COUNTED = frozenset({"result_type", "failed_session_count"})


def _rfc3339(value: object) -> int:
    """RFC 8460 §4.4 date-range: RFC 3339 date-time, UTC when it names no offset."""
    try:
        when = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"date-range: {value!r} is not an RFC 3339 date-time") from None
    if when.tzinfo is None:
        return calendar.timegm(when.timetuple())
    return int(when.timestamp())
