"""Received DMARC aggregate and SMTP TLS reports: found in the messages the providers send,
read offline, kept once each and only for our domains; hostile attachments left out without
an exception."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courrier.mailauth import reportin
from courrier.mailauth.reportin import find_reports, ingest
from courrier.store import Store
from tests.mailauth import reportmail
from tests.mailauth.reportmail import attachment, gzipped, message, text_part, zipped

HEADERS = {"From": "reports@example.net", "To": "dmarc@example.org", "Subject": "Report"}


def test_google_dmarc_report() -> None:
    (report,) = find_reports(reportmail.google_dmarc())
    assert (report.kind, report.direction) == ("dmarc", "received")
    assert (report.domain, report.org, report.report_id) == (
        "example.org",
        "google.com",
        "5717107811868587391",
    )
    assert (report.begin_at, report.end_at) == (1778284800, 1778371199)  # 2026-05-09, UTC
    assert report.content == reportmail.GOOGLE_DMARC.read_text()
    summary = json.loads(report.summary)
    assert (summary["messages"], summary["pass"], summary["fail"]) == (12, 10, 2)
    assert summary["dispositions"] == {"none": 10, "quarantine": 2, "reject": 0}
    assert summary["policy"] == {"p": "quarantine", "sp": "quarantine", "pct": "100",
                                 "adkim": "r", "aspf": "r"}  # fmt: skip
    assert summary["sources"] == [
        {"ip": "203.0.113.25", "count": 8, "disposition": "none", "dkim": "pass",
         "spf": "pass", "header_from": "example.org"},
        # Through a mailing list: SPF fails aligned, DKIM passes, so DMARC passes.
        {"ip": "2001:db8:4860::1b", "count": 2, "disposition": "none", "dkim": "pass",
         "spf": "fail", "header_from": "example.org"},
        {"ip": "198.51.100.7", "count": 2, "disposition": "quarantine", "dkim": "fail",
         "spf": "fail", "header_from": "example.org"},
    ]  # fmt: skip


@pytest.mark.parametrize("content_type", ["application/gzip", "application/octet-stream"])
def test_microsoft_dmarc_report(content_type: str) -> None:
    """A gzip file, labelled as such or only by its name (.xml.gz)."""
    (report,) = find_reports(reportmail.microsoft_dmarc(content_type))
    assert (report.domain, report.org) == ("news.example.org", "Enterprise Outlook")
    assert report.report_id == "b4f3c2a1d0e94c6f8a7b2e1d3c4f5a6b"
    assert (report.begin_at, report.end_at) == (1778198400, 1778284800)
    summary = json.loads(report.summary)
    assert (summary["messages"], summary["pass"], summary["fail"]) == (4, 3, 1)
    assert summary["dispositions"] == {"none": 3, "quarantine": 0, "reject": 1}
    assert [(s["ip"], s["count"]) for s in summary["sources"]] == [
        ("203.0.113.25", 3),
        ("192.0.2.200", 1),
    ]


def test_google_tls_report() -> None:
    (report,) = find_reports(reportmail.google_tlsrpt())
    assert (report.kind, report.direction) == ("tlsrpt", "received")
    assert (report.domain, report.org) == ("example.org", "Google Inc.")
    assert report.report_id == "2026-05-09T00:00:00Z_example.org"
    assert (report.begin_at, report.end_at) == (1778284800, 1778371199)
    assert report.content == reportmail.GOOGLE_TLSRPT.read_text()
    summary = json.loads(report.summary)
    assert (summary["successes"], summary["failures"]) == (997, 3)
    (policy,) = summary["policies"]
    assert policy["policy_domain"] == "example.org" and policy["policy_type"] == "sts"
    assert (policy["successes"], policy["failures"]) == (997, 3)
    assert "mode: enforce" in policy["policy_strings"]
    assert summary["failure_details"] == [
        {
            "policy_domain": "example.org",
            "result_type": "certificate-expired",
            "sessions": 3,
            "sending_mta_ip": "209.85.220.41",
            "receiving_ip": "203.0.113.25",
            "receiving_mx_hostname": "mail.example.org",
        }
    ]


def test_a_tls_report_on_several_policies() -> None:
    """The row is about the first policy domain; the summary lists every policy."""
    data = json.loads(reportmail.GOOGLE_TLSRPT.read_text())
    data["policies"].append(
        {
            "policy": {"policy-type": "no-policy-found", "policy-domain": "Mail.Example.ORG."},
            "summary": {"total-successful-session-count": 50, "total-failure-session-count": 0},
        }
    )
    (report,) = find_reports(reportmail.google_tlsrpt(json.dumps(data).encode()))
    summary = json.loads(report.summary)
    assert report.domain == "example.org"
    assert [p["policy_domain"] for p in summary["policies"]] == ["example.org", "mail.example.org"]
    assert (summary["successes"], summary["failures"]) == (1047, 3)


def test_a_plain_xml_report_and_tlsrpt_json() -> None:
    """Uncompressed reports (application/xml, application/tlsrpt+json) in one message."""
    raw = message(
        HEADERS,
        [
            attachment("application/xml", "report.xml", reportmail.GOOGLE_DMARC.read_bytes()),
            attachment(
                "application/tlsrpt+json", "report.json", reportmail.GOOGLE_TLSRPT.read_bytes()
            ),
        ],
    )
    assert [r.kind for r in find_reports(raw)] == ["dmarc", "tlsrpt"]


def test_a_report_that_is_the_whole_message() -> None:
    """No multipart: the message's own body is the zip file."""
    data = zipped("r.xml", reportmail.GOOGLE_DMARC.read_bytes())
    raw = b"From: noreply-dmarc-support@google.com\r\n" + attachment(
        "application/zip", "r.zip", data
    )
    assert [r.report_id for r in find_reports(raw)] == ["5717107811868587391"]


def test_parsing_asks_nothing_of_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No reverse DNS, no IP geolocation download, no map download: parsedmarc runs offline."""
    used: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        used.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket.socket, "sendto", refuse)
    messages = [reportmail.google_dmarc(), reportmail.microsoft_dmarc(), reportmail.google_tlsrpt()]
    assert [len(find_reports(m)) for m in messages] == [1, 1, 1]
    assert used == []


async def test_ingest_keeps_our_reports_once(store: Store) -> None:
    google = reportmail.google_dmarc()
    (first,) = await ingest(store, google, ["example.org"])
    assert await ingest(store, google, ["example.org"]) == []  # received twice, kept once
    # A subdomain of one of ours is ours; the domain list is read as domains are written.
    (second,) = await ingest(store, reportmail.microsoft_dmarc(), ["Example.ORG."])
    (third,) = await ingest(store, reportmail.google_tlsrpt(), {"example.net", "example.org"})
    assert [r.id for r in await store.list_reports()] == [third, first, second]
    kept = await store.get_report(first)
    assert kept is not None and kept.content == reportmail.GOOGLE_DMARC.read_text()
    assert [r.id for r in await store.list_reports(kind="tlsrpt", direction="received")] == [third]


async def test_ingest_leaves_out_other_domains(store: Store) -> None:
    assert await ingest(store, reportmail.google_dmarc(), ["example.net", "ample.org"]) == []
    assert await ingest(store, reportmail.microsoft_dmarc(), ["news.example.org.uk"]) == []
    assert await ingest(store, reportmail.google_tlsrpt(), []) == []
    assert await store.list_reports() == []


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<feedback><report_metadata><org_name>&d;</org_name></report_metadata></feedback>
"""
XXE = reportmail.GOOGLE_DMARC.read_bytes().replace(
    b"<feedback>",
    b'<!DOCTYPE feedback [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<feedback>',
)
BIG = reportmail.GOOGLE_DMARC.read_bytes().replace(
    b"</feedback>", b" " * (11 << 20) + b"</feedback>"
)
GOOGLE_GZ = gzipped(reportmail.GOOGLE_DMARC.read_bytes())


@pytest.mark.parametrize(
    ("content_type", "name", "data", "logged"),
    [
        ("application/gzip", "bomb.xml.gz", gzipped(BIG), "more than 10485760 octets"),
        ("application/zip", "bomb.zip", zipped("bomb.xml", BIG), "more than 10485760 octets"),
        ("application/gzip", "cut.xml.gz", GOOGLE_GZ[: len(GOOGLE_GZ) // 2], "truncated gzip"),
        ("application/gzip", "bad.xml.gz", GOOGLE_GZ[:10] + b"\xff" * 50, "bad gzip data"),
        ("application/zip", "bad.zip", b"PK\x03\x04" + b"\0" * 40, "bad zip archive"),
        ("application/xml", "laughs.xml", BILLION_LAUGHS, "DTD"),
        ("text/xml", "xxe.xml", XXE, "DTD"),
        ("application/gzip", "xxe.xml.gz", gzipped(XXE), "DTD"),
        ("application/xml", "broken.xml", b"<feedback><report_metadata>", "left out"),
        ("application/tlsrpt+json", "r.json", b'{"organization-name": "x"}', "left out"),
        ("application/tlsrpt+json", "r.json", b'{"policies": [' * 100_000, "left out"),
    ],
)
def test_hostile_attachments_are_left_out(
    content_type: str, name: str, data: bytes, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw = message(HEADERS, [attachment(content_type, name, data)])
    with caplog.at_level(logging.WARNING, logger="courrier.mailauth"):
        assert find_reports(raw) == []
    assert logged in caplog.text and name in caplog.text


def test_negative_counts_are_refused() -> None:
    data = json.loads(reportmail.GOOGLE_TLSRPT.read_text())
    data["policies"][0]["summary"]["total-failure-session-count"] = -3
    assert find_reports(reportmail.google_tlsrpt(json.dumps(data).encode())) == []


@pytest.mark.parametrize(
    "part",
    [
        text_part("Hello, here is the invoice."),
        attachment("application/pdf", "invoice.pdf", b"%PDF-1.7\n"),
        attachment("application/octet-stream", "invoice.zip", zipped("a.txt", b"hello")),
        attachment("application/octet-stream", "photo.jpg", GOOGLE_GZ),  # name says no report
        attachment("application/xml", "sitemap.xml", b'<?xml version="1.0"?><urlset/>'),
        attachment("application/gzip", "logs.gz", gzipped(b"Jan 1 00:00:00 host: line\n")),
    ],
)
def test_other_attachments_are_no_reports(part: bytes) -> None:
    assert find_reports(message(HEADERS, [part])) == []


def test_a_quoted_message_is_not_entered() -> None:
    """A report inside a message/rfc822 part (a bounce, a forward) is not one sent to us."""
    inner = reportmail.google_dmarc()
    raw = message(HEADERS, [b"Content-Type: message/rfc822\r\n\r\n" + inner], boundary="outer")
    assert find_reports(raw) == []


def test_attachments_past_the_limit_are_left_out() -> None:
    one = attachment("application/xml", "r.xml", reportmail.GOOGLE_DMARC.read_bytes())
    raw = message(HEADERS, [one] * (reportin.MAX_ATTACHMENTS + 3))
    assert len(find_reports(raw)) == reportin.MAX_ATTACHMENTS


@given(st.binary(max_size=2048), st.sampled_from(sorted(reportin._REPORT_TYPES)))
def test_any_attachment_octets_never_raise(data: bytes, content_type: str) -> None:
    find_reports(message(HEADERS, [attachment(content_type, "r.xml.gz", data)]))


@given(st.binary(max_size=4096))
def test_any_message_never_raises(raw: bytes) -> None:
    find_reports(raw)


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_a_damaged_report_never_raises(position: int, octet: int) -> None:
    data = bytearray(GOOGLE_GZ)
    data[position % len(data)] = octet
    find_reports(message(HEADERS, [attachment("application/gzip", "r.xml.gz", bytes(data))]))


def test_names_are_one_line_of_text() -> None:
    """Control characters from a report (escape sequences a terminal would obey) are left out
    of the names kept in columns; a domain must be a host name."""
    data = json.loads(reportmail.GOOGLE_TLSRPT.read_text())
    data["organization-name"] = "\x1b[2JGoogle\r\nInc."
    data["report-id"] = "x" * 1000
    (report,) = find_reports(reportmail.google_tlsrpt(json.dumps(data).encode()))
    assert report.org == "[2JGoogle Inc." and report.report_id == "x" * reportin.MAX_LABEL
    for domain in ("example.org/evil", "exa mple.org", "\x1b[31m.example.org", ""):
        data["policies"][0]["policy"]["policy-domain"] = domain
        assert find_reports(reportmail.google_tlsrpt(json.dumps(data).encode())) == []
    data["policies"][0]["policy"]["policy-domain"] = "Bücher.Example"
    (report,) = find_reports(reportmail.google_tlsrpt(json.dumps(data).encode()))
    assert report.domain == "xn--bcher-kva.example"
