"""SMTP TLS reports we send (RFC 8460): the JSON of §4.4 made from the sessions the store
counted (on both backends), the report message of §5.3 read back by parsedmarc, and the
TLSRPT record of §3 looked up over a loopback DNS stand-in."""

from __future__ import annotations

import email
import email.message
import email.policy
import gzip
import json
from collections.abc import Sequence

import pytest

from courrier import config
from courrier.dns.resolver import TempDNSError, make_resolver
from courrier.mailauth import tlsrpt
from courrier.mailauth.reportin import find_reports
from courrier.store import Store
from courrier.store.transport import PolicyDay, TLSSession
from tests.support.dnsstub import DNSStub

DAY = "2026-05-09"
BEGIN = 1778284800  # 2026-05-09T00:00:00Z
END = BEGIN + 86399
STS = ("version: STSv1", "mode: enforce", "mx: mx.b.test", "max_age: 604800")


def sts(result: str | None = None, ip: str = "192.0.2.1", why: str = "") -> TLSSession:
    return TLSSession(
        DAY, "b.test", "sts", STS, ("mx.b.test",), result, "198.51.100.1", "mx.b.test", ip, why
    )


async def sessions(store: Store) -> None:
    await store.record_tls_sessions(
        [
            sts(),
            sts(),
            sts(),
            sts("certificate-expired", why="certificate has expired"),
            sts("certificate-expired", why="certificate has expired"),
            sts("starttls-not-supported", ip="192.0.2.2"),
            TLSSession(DAY, "c.test", "no-policy-found", receiving_mx="mx.c.test"),
            TLSSession("2026-05-10", "b.test", "sts", STS, ("mx.b.test",)),
        ]
    )


def report_of(policies: Sequence[PolicyDay]) -> dict[str, object]:
    text = tlsrpt.report_json(
        policies,
        org="Courrier at b.test",
        contact="postmaster@mx.a.test",
        report_id="2026-05-09.b.test.0123456789abcdef",
        begin=BEGIN,
        end=END,
    )
    value: dict[str, object] = json.loads(text)
    return value


async def test_the_report_has_the_fields_of_rfc_8460(store: Store) -> None:
    await sessions(store)
    policies = [p for p in await store.tls_report(DAY) if p.policy_domain == "b.test"]
    assert report_of(policies) == {
        "organization-name": "Courrier at b.test",
        "date-range": {
            "start-datetime": "2026-05-09T00:00:00Z",
            "end-datetime": "2026-05-09T23:59:59Z",
        },
        "contact-info": "postmaster@mx.a.test",
        "report-id": "2026-05-09.b.test.0123456789abcdef",
        "policies": [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": list(STS),
                    "policy-domain": "b.test",
                    "mx-host": ["mx.b.test"],
                },
                "summary": {
                    "total-successful-session-count": 3,
                    "total-failure-session-count": 3,
                },
                "failure-details": [
                    {
                        "result-type": "certificate-expired",
                        "sending-mta-ip": "198.51.100.1",
                        "receiving-mx-hostname": "mx.b.test",
                        "receiving-ip": "192.0.2.1",
                        "failed-session-count": 2,
                        "failure-reason-code": "certificate has expired",
                    },
                    {
                        "result-type": "starttls-not-supported",
                        "sending-mta-ip": "198.51.100.1",
                        "receiving-mx-hostname": "mx.b.test",
                        "receiving-ip": "192.0.2.2",
                        "failed-session-count": 1,
                    },
                ],
            }
        ],
    }
    summary = tlsrpt.summary(policies)
    assert (summary["successes"], summary["failures"]) == (3, 3)
    assert [d["sessions"] for d in summary["failure_details"]] == [2, 1]


async def test_no_policy_found_has_no_policy_text(store: Store) -> None:
    await sessions(store)
    policies = [p for p in await store.tls_report(DAY) if p.policy_domain == "c.test"]
    report = report_of(policies)
    assert report["policies"] == [
        {
            "policy": {"policy-type": "no-policy-found", "policy-domain": "c.test"},
            "summary": {"total-successful-session-count": 1, "total-failure-session-count": 0},
            "failure-details": [],
        }
    ]


async def test_the_message_is_a_multipart_report_of_type_tlsrpt(store: Store) -> None:
    await sessions(store)
    policies = [p for p in await store.tls_report(DAY) if p.policy_domain == "b.test"]
    content = tlsrpt.report_json(
        policies,
        org="mx.a.test",
        contact="postmaster@mx.a.test",
        report_id="2026-05-09.b.test.0123456789abcdef",
        begin=BEGIN,
        end=END,
    )
    name = tlsrpt.filename("mx.a.test", "b.test", BEGIN, END, "0123456789abcdef")
    assert name == "mx.a.test!b.test!1778284800!1778371199!0123456789abcdef.json.gz"
    raw = tlsrpt.message(
        sender="postmaster@mx.a.test",
        to=["tlsrpt@b.test"],
        domain="b.test",
        submitter="mx.a.test",
        report_id="2026-05-09.b.test.0123456789abcdef",
        report=tlsrpt.gzipped(content),
        name=name,
        begin=BEGIN,
        end=END,
        now=BEGIN + 86400 + 60,
    )
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    assert parsed["TLS-Report-Domain"] == "b.test"
    assert parsed["TLS-Report-Submitter"] == "mx.a.test"
    assert " ".join(str(parsed["Subject"]).split()) == (
        "Report Domain: b.test Submitter: mx.a.test Report-ID: <2026-05-09.b.test.0123456789abcdef>"
    )
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "tlsrpt"
    text, attached = list(parsed.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert attached.get_content_type() == "application/tlsrpt+gzip"
    assert attached.get_filename() == name
    assert gzip.decompress(attached.get_content()).decode() == content
    # Read back by parsedmarc (through the report inbox) as another program would.
    (found,) = find_reports(raw)
    assert (found.kind, found.domain, found.org) == ("tlsrpt", "b.test", "mx.a.test")
    assert (found.begin_at, found.end_at) == (BEGIN, END)
    summary = json.loads(found.summary)
    assert (summary["successes"], summary["failures"]) == (3, 3)


def test_tlsrpt_records() -> None:
    assert tlsrpt.parse_record("v=TLSRPTv1; rua=mailto:tls@b.test") == ["mailto:tls@b.test"]
    assert tlsrpt.parse_record("v=TLSRPTv1;rua=mailto:a@b.test, https://r.b.test/tls;x=y") == [
        "mailto:a@b.test",
        "https://r.b.test/tls",
    ]
    for other in ("v=DMARC1; rua=mailto:a@b.test", "v=TLSRPTv1", "rua=mailto:a@b.test", ""):
        assert tlsrpt.parse_record(other) is None, other


RECORDS = {
    "_smtp._tls.b.test TXT": [
        '"v=TLSRPTv1; rua=mailto:tls@b.test,mailto:TLS@B.test," "https://reports.b.test/tls"',
        '"v=spf1 -all"',
    ],
    "_smtp._tls.c.test TXT": ['"v=TLSRPTv1; rua=https://reports.c.test/tls"'],
    "_smtp._tls.d.test TXT": [
        '"v=TLSRPTv1; rua=mailto:a@d.test"',
        '"v=TLSRPTv1; rua=mailto:b@d.test"',
    ],
}


async def test_the_rua_of_the_tlsrpt_record() -> None:
    stub = DNSStub(RECORDS, failing={"_smtp._tls.down.test"})
    async with stub.serving() as address:
        resolver = make_resolver(config.load(env={}, overrides={"dns.resolvers": [address]}))
        assert await tlsrpt.rua(resolver, "b.test") == ["tls@b.test"]
        assert await tlsrpt.rua(resolver, "c.test") == []  # https only: not used
        assert await tlsrpt.rua(resolver, "d.test") == []  # §3: two records, no TLSRPT
        assert await tlsrpt.rua(resolver, "none.test") == []
        with pytest.raises(TempDNSError):
            await tlsrpt.rua(resolver, "down.test")
