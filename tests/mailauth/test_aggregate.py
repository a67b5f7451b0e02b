"""DMARC aggregate reports we send (RFC 7489 §7.2): the XML valid under the schema of Appendix
C with the counts, dispositions and authentication results as counted; the gzip'd file and the
message of §7.2.1.1, read back by parsedmarc; the rua URIs with their size limits, and the
external destinations verified through the DNS (§7.1) over a loopback stand-in."""

from __future__ import annotations

import email
import email.message
import email.policy
import gzip
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from courrier import config
from courrier.dns.resolver import make_resolver
from courrier.mailauth import aggregate
from courrier.mailauth.aggregate import Destination
from courrier.mailauth.dkimverify import DKIMResult
from courrier.mailauth.dmarc import Policy, evaluate, parse_record, report_row
from courrier.mailauth.reportin import find_reports
from courrier.mailauth.spf import SPFResult
from courrier.store.dmarcresults import DmarcCount
from tests.support.dnsstub import DNSStub

SCHEMA = xmlschema.XMLSchema(Path(__file__).resolve().parents[1] / "data" / "dmarc" / "rua.xsd")

BEGIN = 1778284800  # 2026-05-09T00:00:00Z
END = BEGIN + 86399

POLICY = {
    "domain": "example.org",
    "adkim": "r",
    "aspf": "r",
    "p": "quarantine",
    "sp": "quarantine",
    "pct": 100,
    "np": None,
    "fo": "0",
    "rua": ["mailto:dmarc@example.org", "mailto:x@other.test!10m"],
}


def record(**changes: Any) -> dict[str, Any]:
    """A report row in the evaluator's JSON shape: a message that passed, unless changed."""
    value: dict[str, Any] = {
        "source_ip": "192.0.2.1",
        "disposition": "none",
        "dkim": "pass",
        "spf": "pass",
        "reasons": [],
        "header_from": "example.org",
        "envelope_from": "example.org",
        "envelope_to": "b.test",
        "dkim_results": [{"domain": "example.org", "selector": "rsa20261123", "result": "pass"}],
        "spf_results": [{"domain": "example.org", "scope": "mfrom", "result": "pass"}],
    }
    value.update(changes)
    return value


def count(n: int, policy: dict[str, Any] | None = None, **changes: Any) -> DmarcCount:
    return DmarcCount(
        "example.org",
        json.dumps(policy or POLICY, sort_keys=True),
        json.dumps(record(**changes), sort_keys=True),
        n,
    )


ROWS = [
    count(7),
    count(
        2,
        source_ip="198.51.100.9",
        disposition="quarantine",
        dkim="fail",
        spf="fail",
        envelope_from="",
        envelope_to="",
        dkim_results=[],
        spf_results=[{"domain": "mx.spoof.test", "scope": "helo", "result": "softfail"}],
    ),
    count(
        1,
        source_ip="2001:db8::25",
        disposition="none",
        dkim="fail",
        spf="fail",
        reasons=[{"type": "local_policy", "comment": "arc=pass as[1].d=list.test"}],
        dkim_results=[{"domain": "list.test", "selector": "s", "result": "fail"}],
        spf_results=[],
    ),
]


def report(rows: list[DmarcCount] = ROWS) -> str:
    return aggregate.feedback_xml(
        rows,
        org="Courrier at b.test",
        email="postmaster@mx.b.test",
        report_id="2026-05-09.example.org.0123456789abcdef",
        begin=BEGIN,
        end=END,
    )


def texts(element: ET.Element, path: str) -> list[str]:
    return [e.text or "" for e in element.findall(path)]


def test_the_report_validates_against_the_schema_of_appendix_c() -> None:
    xml = report()
    SCHEMA.validate(xml)
    root = ET.fromstring(xml)
    assert root.tag == "feedback"
    assert texts(root, "version") == ["1.0"]
    meta = root.find("report_metadata")
    assert meta is not None
    assert texts(meta, "org_name") == ["Courrier at b.test"]
    assert texts(meta, "email") == ["postmaster@mx.b.test"]
    assert texts(meta, "report_id") == ["2026-05-09.example.org.0123456789abcdef"]
    assert texts(meta, "date_range/begin") == [str(BEGIN)]
    assert texts(meta, "date_range/end") == [str(END)]
    published = root.find("policy_published")
    assert published is not None
    assert {e.tag: e.text for e in published} == {
        "domain": "example.org",
        "adkim": "r",
        "aspf": "r",
        "p": "quarantine",
        "sp": "quarantine",
        "pct": "100",
        "fo": "0",  # required by the schema; np (DMARCbis) is not in it
    }


def test_each_row_has_its_count_disposition_and_results() -> None:
    root = ET.fromstring(report())
    records = root.findall("record")
    assert [texts(r, "row/count") for r in records] == [["7"], ["2"], ["1"]]
    assert [texts(r, "row/source_ip") for r in records] == [
        ["192.0.2.1"],
        ["198.51.100.9"],
        # The schema's pattern takes IPv6 addresses written out in full only.
        ["2001:0db8:0000:0000:0000:0000:0000:0025"],
    ]
    evaluated = [r.find("row/policy_evaluated") for r in records]
    assert [
        (texts(e, "disposition"), texts(e, "dkim"), texts(e, "spf"))
        for e in evaluated
        if e is not None
    ] == [
        (["none"], ["pass"], ["pass"]),
        (["quarantine"], ["fail"], ["fail"]),
        (["none"], ["fail"], ["fail"]),
    ]
    override = records[2].find("row/policy_evaluated/reason")
    assert override is not None
    assert texts(override, "type") == ["local_policy"]
    assert texts(override, "comment") == ["arc=pass as[1].d=list.test"]
    assert records[0].find("row/policy_evaluated/reason") is None
    # identifiers: envelope_to only when known, envelope_from always (empty: null sender).
    assert [
        (texts(r, "identifiers/envelope_to"), texts(r, "identifiers/envelope_from"))
        for r in records
    ] == [(["b.test"], ["example.org"]), ([], [""]), (["b.test"], ["example.org"])]
    assert texts(records[0], "auth_results/dkim/domain") == ["example.org"]
    assert texts(records[0], "auth_results/dkim/selector") == ["rsa20261123"]
    assert texts(records[0], "auth_results/dkim/result") == ["pass"]
    assert records[1].findall("auth_results/dkim") == []
    spf = [
        [
            (texts(s, "domain"), texts(s, "scope"), texts(s, "result"))
            for s in r.findall("auth_results/spf")
        ]
        for r in records
    ]
    assert spf == [
        [(["example.org"], ["mfrom"], ["pass"])],
        [(["mx.spoof.test"], ["helo"], ["softfail"])],
        # No SPF result was kept: Appendix C wants one, so "none" for the MAIL FROM domain.
        [(["example.org"], ["mfrom"], ["none"])],
    ]


def test_a_row_from_the_evaluator_makes_a_valid_report() -> None:
    dmarc_record = parse_record("v=DMARC1; p=reject; pct=50; rua=mailto:d@example.org")
    spf = SPFResult("fail", "mailfrom", "example.org", "a@example.org", "")
    dkim = [DKIMResult("pass", "example.org", "s1", "rsa-sha256", "@example.org", 2048)]
    for sampled in (True, False):
        result = evaluate(
            "example.org",
            Policy("example.org", dmarc_record),
            spf=spf,
            dkim=[],
            sample=0.9 if sampled else 0.1,
        )
        row = report_row(
            result,
            day="2026-05-09",
            source_ip="203.0.113.5",
            envelope_from="example.org",
            envelope_to="b.test",
            spf=spf,
            dkim=dkim,
        )
        assert row is not None
        xml = report([DmarcCount(row.policy_domain, row.policy, row.record, 3)])
        SCHEMA.validate(xml)
        root = ET.fromstring(xml)
        assert texts(root, "policy_published/pct") == ["50"]
        assert texts(root, "record/row/policy_evaluated/disposition") == [
            "quarantine" if sampled else "reject"
        ]


def test_a_reason_appendix_c_does_not_name_is_other() -> None:
    xml = report([count(1, reasons=[{"type": "arc_override", "comment": "as[1]"}])])
    SCHEMA.validate(xml)
    root = ET.fromstring(xml)
    assert texts(root, "record/row/policy_evaluated/reason/type") == ["other"]
    assert texts(root, "record/row/policy_evaluated/reason/comment") == ["arc_override: as[1]"]


def test_text_that_xml_cannot_hold_is_left_out() -> None:
    xml = report([count(1, header_from="exa\x00mple.org", envelope_to="b\x1b.test")])
    SCHEMA.validate(xml)
    assert texts(ET.fromstring(xml), "record/identifiers/header_from") == ["example.org"]


def test_the_summary_counts_messages_and_dispositions() -> None:
    summary = aggregate.summary(ROWS)
    assert summary["messages"] == 10
    assert summary["rows"] == 3
    assert (summary["pass"], summary["fail"]) == (7, 3)
    assert summary["dispositions"] == {"none": 8, "quarantine": 2, "reject": 0}
    assert summary["policy"] == {"p": "quarantine", "sp": "quarantine", "pct": 100,
                                 "adkim": "r", "aspf": "r"}  # fmt: skip
    assert [s["count"] for s in summary["sources"]] == [7, 2, 1]


def test_the_message_carries_the_gzipped_report() -> None:
    xml = report()
    name = aggregate.filename("mx.b.test", "example.org", BEGIN, END, "0123456789abcdef")
    assert name == "mx.b.test!example.org!1778284800!1778371199!0123456789abcdef.xml.gz"
    raw = aggregate.message(
        sender="postmaster@mx.b.test",
        to=["dmarc@example.org", "x@other.test"],
        domain="example.org",
        submitter="mx.b.test",
        report_id="2026-05-09.example.org.0123456789abcdef",
        report=aggregate.gzipped(xml),
        name=name,
        begin=BEGIN,
        end=END,
        now=BEGIN + 86400 + 600,
    )
    head = raw.partition(b"\r\n\r\n")[0]
    assert b"\r\nSubject: Report Domain: example.org Submitter: mx.b.test Report-ID:\r\n <" in head
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322 §2.1.1
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    assert parsed["From"] == "postmaster@mx.b.test"
    assert parsed["To"] == "dmarc@example.org, x@other.test"
    # §7.2.1.1's Subject, the Report-ID in angle brackets (folded by us).
    assert " ".join(str(parsed["Subject"]).split()) == (
        "Report Domain: example.org Submitter: mx.b.test "
        "Report-ID: <2026-05-09.example.org.0123456789abcdef>"
    )
    assert parsed["Message-ID"].endswith("@mx.b.test>")
    assert parsed["Date"] is not None
    assert parsed.get_content_type() == "multipart/mixed"
    text, attached = list(parsed.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert "DMARC aggregate report" in text.get_content()
    assert attached.get_content_type() == "application/gzip"
    assert attached.get_filename() == name
    assert gzip.decompress(attached.get_content()).decode() == xml
    # Read back by parsedmarc (through the report inbox) as another program would.
    (found,) = find_reports(raw)
    assert (found.kind, found.domain, found.org) == ("dmarc", "example.org", "Courrier at b.test")
    assert found.report_id == "2026-05-09.example.org.0123456789abcdef"
    assert (found.begin_at, found.end_at) == (BEGIN, END)
    assert json.loads(found.summary)["messages"] == 10


# -- where reports go -------------------------------------------------------------------------


def test_rua_uris_and_their_size_limits() -> None:
    assert aggregate.parse_uri("mailto:dmarc@Example.ORG") == Destination(
        "mailto:dmarc@Example.ORG", "dmarc@example.org"
    )
    assert aggregate.parse_uri("mailto:x@other.test!10m") == Destination(
        "mailto:x@other.test!10m", "x@other.test", 10 * 1024 * 1024
    )
    assert aggregate.parse_uri("mailto:x@o.test!512")
    assert aggregate.parse_uri("mailto:x@o.test!2k") == Destination(
        "mailto:x@o.test!2k", "x@o.test", 2048
    )
    assert aggregate.parse_uri("MAILTO:re%70orts@o.test?subject=x") == Destination(
        "MAILTO:re%70orts@o.test?subject=x", "reports@o.test"
    )
    for unusable in (
        "https://o.test/dmarc",
        "mailto:nobody",
        "mailto:a@b.test!big",
        "",
        "x@b.test",
    ):
        assert aggregate.parse_uri(unusable) is None, unusable
    found = [
        Destination("a", "a@x.test", 1000),
        Destination("b", "b@x.test"),
        Destination("c", "c@x.test", 5000),
    ]
    assert [d.address for d in aggregate.within_limits(found, 2000)] == ["b@x.test", "c@x.test"]
    assert aggregate.within_limits(found, 1000) == found


RECORDS = {
    # other.test takes reports for example.org; elsewhere.test for anyone; nope.test for nobody.
    "example.org._report._dmarc.other.test TXT": ['"v=DMARC1"'],
    "*._report._dmarc.elsewhere.test TXT": ['"v=DMARC1"'],
    "example.org._report._dmarc.elsewhere.test TXT": ['"v=DMARC1;"'],
    "example.org._report._dmarc.nope.test TXT": ['"v=spf1 -all"'],
    # redirects its reports to another of its mailboxes, or (not allowed) to another host.
    "example.org._report._dmarc.moved.test TXT": ['"v=DMARC1; rua=mailto:new@moved.test"'],
    "example.org._report._dmarc.away.test TXT": ['"v=DMARC1; rua=mailto:x@elsewhere.test"'],
}


async def test_external_destinations_are_verified_in_the_dns() -> None:
    stub = DNSStub(RECORDS, failing={"example.org._report._dmarc.down.test"})
    async with stub.serving() as address:
        resolver = make_resolver(config.load(env={}, overrides={"dns.resolvers": [address]}))
        found = await aggregate.destinations(
            resolver,
            "example.org",
            [
                "mailto:dmarc@example.org",
                "mailto:d@reports.example.org!1m",  # same organizational domain: no lookup
                "mailto:x@other.test!10m",
                "mailto:y@elsewhere.test",
                "mailto:z@nope.test",
                "mailto:old@moved.test",
                "mailto:w@away.test",
                "mailto:v@down.test",  # the DNS does not answer: left out this time
                "mailto:u@unknown.test",
                "https://reports.example.org/dmarc",
                "mailto:DMARC@example.org",  # once each
            ],
        )
    assert [(d.address, d.max_size) for d in found] == [
        ("dmarc@example.org", None),
        ("d@reports.example.org", 1024 * 1024),
        ("x@other.test", 10 * 1024 * 1024),
        ("y@elsewhere.test", None),
        ("new@moved.test", None),
    ]
    asked = {name for name, _ in stub.queries}
    assert "example.org._report._dmarc.reports.example.org" not in asked
    assert "example.org._report._dmarc.down.test" in asked


@pytest.mark.parametrize("policy_domain", ["mail.example.co.uk", "example.co.uk"])
async def test_the_organizational_domain_decides_what_is_external(policy_domain: str) -> None:
    async with DNSStub({}).serving() as address:
        resolver = make_resolver(config.load(env={}, overrides={"dns.resolvers": [address]}))
        found = await aggregate.destinations(
            resolver, policy_domain, ["mailto:a@example.co.uk", "mailto:b@other.co.uk"]
        )
    # other.co.uk is another organization under the public suffix co.uk: not authorized.
    assert [d.address for d in found] == ["a@example.co.uk"]
