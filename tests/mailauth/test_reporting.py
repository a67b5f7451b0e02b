"""The daily reports end to end, on both store backends: a day of DMARC results and TLS
sessions in the store, the DNS answered by a loopback stand-in; the reports kept as sent and
queued, DKIM-signed, to exactly the addresses allowed (RFC 7489 §7.1, RFC 8460 §3), delivered
into the mailbox when the address is ours; and another node's run, or a second one, sending
nothing more (the store's claim)."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import gzip
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from courrier import config
from courrier.config import Settings
from courrier.mailauth import keys
from courrier.mailauth.reporting import ReportScheduler, previous_day, send_day
from courrier.store import Store, Target
from courrier.store.dmarcresults import DmarcRow
from courrier.store.reports import Report
from courrier.store.transport import TLSSession
from tests.mailauth.helpers import table_lookup, verified
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub

SCHEMA = xmlschema.XMLSchema(Path(__file__).resolve().parents[1] / "data" / "dmarc" / "rua.xsd")

DAY = "2026-05-09"
BEGIN = 1778284800  # 2026-05-09T00:00:00Z
NOW = BEGIN + 86400 + 3600  # the next day, 01:00 UTC

RECORDS = {
    # other.test takes example.org's reports; nope.test has no such record.
    "example.org._report._dmarc.other.test TXT": ['"v=DMARC1"'],
    "_smtp._tls.c.test TXT": ['"v=TLSRPTv1; rua=mailto:tls@c.test,https://r.c.test/tls"'],
    # ours: our queue's sessions to a domain we host are not reported to it.
    "_smtp._tls.b.test TXT": ['"v=TLSRPTv1; rua=mailto:postmaster@b.test"'],
}


def policy(domain: str, *rua: str) -> str:
    return json.dumps(
        {
            "domain": domain,
            "adkim": "r",
            "aspf": "r",
            "p": "reject",
            "sp": "reject",
            "pct": 100,
            "np": None,
            "fo": "0",
            "rua": list(rua),
        }
    )


def row(source: str, header_from: str, *, passed: bool = True) -> str:
    result = "pass" if passed else "fail"
    return json.dumps(
        {
            "source_ip": source,
            "disposition": "none" if passed else "reject",
            "dkim": result,
            "spf": result,
            "reasons": [],
            "header_from": header_from,
            "envelope_from": header_from,
            "envelope_to": "b.test",
            "dkim_results": [{"domain": header_from, "selector": "s1", "result": result}],
            "spf_results": [{"domain": header_from, "scope": "mfrom", "result": result}],
        }
    )


EXAMPLE = policy(
    "example.org",
    "mailto:dmarc@example.org",
    "mailto:x@other.test!10m",  # another organization that agreed (§7.1)
    "mailto:y@nope.test",  # another that did not
    "https://reports.example.org/dmarc",  # not mailto
)
A_TEST = policy("a.test", "mailto:reports@a.test!1k")  # too small for the report: not sent
OURS = policy("b.test", "mailto:postmaster@b.test")  # mail claiming our own domain
NO_RUA = policy("z.test")


async def fill(store: Store) -> None:
    """A day of results: messages counted under four policy domains, and TLS sessions."""
    await store.add_domain("b.test")
    for address in ("bob@b.test", "postmaster@b.test"):
        await store.add_account(address, "x")
    account = await store.get_account("bob@b.test")
    assert account is not None
    inbox = await store.directory.mailbox_id(account.id, "INBOX")
    assert inbox is not None
    rows = [
        DmarcRow(DAY, "example.org", EXAMPLE, row("192.0.2.1", "example.org")),
        DmarcRow(DAY, "example.org", EXAMPLE, row("192.0.2.1", "example.org")),
        DmarcRow(DAY, "example.org", EXAMPLE, row("198.51.100.7", "example.org", passed=False)),
        DmarcRow(DAY, "a.test", A_TEST, row("192.0.2.2", "a.test")),
        DmarcRow(DAY, "b.test", OURS, row("203.0.113.9", "b.test", passed=False)),
        DmarcRow(DAY, "z.test", NO_RUA, row("192.0.2.3", "z.test")),
        DmarcRow("2026-05-01", "example.org", EXAMPLE, row("192.0.2.1", "example.org")),
    ]
    for n, dmarc in enumerate(rows):
        await store.deliver(make_message(n), [Target(inbox)], dmarc=dmarc)
    sts = ("version: STSv1", "mode: enforce", "mx: mx.c.test", "max_age: 86400")
    await store.record_tls_sessions(
        [
            TLSSession(DAY, "c.test", "sts", sts, ("mx.c.test",)),
            TLSSession(DAY, "c.test", "sts", sts, ("mx.c.test",), "certificate-expired",
                       "198.51.100.1", "mx.c.test", "192.0.2.25", "certificate has expired"),
            TLSSession(DAY, "b.test", "no-policy-found"),
            TLSSession(DAY, "d.test", "no-policy-found"),  # no TLSRPT record
        ]
    )  # fmt: skip


@pytest.fixture
async def settings(tmp_path: Path) -> AsyncIterator[Settings]:
    async with DNSStub(RECORDS).serving() as address:
        yield config.load(
            env={},
            overrides={
                "server.data_dir": str(tmp_path / "data"),
                "server.hostname": "mx.b.test",
                "dns.resolvers": [address],
                "mailauth.report_org": "Courrier at b.test",
                "mailauth.report_from": "dmarc-reports@b.test",
            },
        )


def parse(raw: bytes) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def attachment(raw: bytes) -> tuple[str, bytes]:
    """The report attached to a report message: its media type and its octets, gunzipped."""
    parts = list(parse(raw).iter_parts())
    assert len(parts) == 2
    return parts[1].get_content_type(), gzip.decompress(parts[1].get_content())


async def queued(store: Store) -> dict[tuple[str, ...], bytes]:
    """The queued messages by their recipients."""
    found: dict[tuple[str, ...], bytes] = {}
    for message in await store.list_queue():
        raw = await store.read_queued_by_id(message.queue_id)
        assert raw is not None and message.sender == "dmarc-reports@b.test"
        assert {r.notify for r in message.recipients} == {"NEVER"}  # no bounces for reports
        found[tuple(sorted(r.recipient for r in message.recipients))] = raw
    return found


async def test_a_day_of_reports_goes_to_the_addresses_allowed(
    store: Store, settings: Settings
) -> None:
    await fill(store)
    await store.add_dkim_keys("b.test", keys.generate([], 0, BEGIN))
    woken: list[bool] = []
    sent = await send_day(settings, store, DAY, wake=lambda: woken.append(True), now=NOW)
    assert [(r.kind, r.domain) for r in sent] == [
        ("dmarc", "b.test"),
        ("dmarc", "example.org"),
        ("tlsrpt", "c.test"),
    ]
    assert woken
    messages = await queued(store)
    assert sorted(messages) == [("dmarc@example.org", "x@other.test"), ("tls@c.test",)]

    dmarc = messages[("dmarc@example.org", "x@other.test")]
    head = parse(dmarc)
    assert head["From"] == "dmarc-reports@b.test"
    assert head["To"] == "dmarc@example.org, x@other.test"
    assert " ".join(str(head["Subject"]).split()).startswith(
        "Report Domain: example.org Submitter: b.test Report-ID: <2026-05-09.example.org."
    )
    media_type, xml = attachment(dmarc)
    assert media_type == "application/gzip"
    SCHEMA.validate(xml.decode())
    stored = {r.domain: r for r in await store.list_reports(direction="sent")}
    example = await store.get_report(stored["example.org"].id)
    assert example is not None and example.content == xml.decode()
    assert (example.org, example.begin_at, example.end_at) == (
        "Courrier at b.test",
        BEGIN,
        BEGIN + 86399,
    )
    assert example.report_id in str(head["Subject"])
    summary = json.loads(example.summary)
    assert summary["to"] == ["dmarc@example.org", "x@other.test"]
    assert (summary["messages"], summary["rows"]) == (3, 2)
    assert summary["dispositions"] == {"none": 2, "quarantine": 0, "reject": 1}

    # Signed by the sender's domain: a report must pass DMARC (RFC 7489 §7.2.1.1, RFC 8460
    # §5.3), checked here by dkimpy.
    published = {keys.record_name(k): keys.record_value(k) for k in await store.list_dkim_keys()}
    for raw in messages.values():
        assert verified(raw, table_lookup(published)) == [True, True]

    tls = messages[("tls@c.test",)]
    head = parse(tls)
    assert (head["TLS-Report-Domain"], head["TLS-Report-Submitter"]) == ("c.test", "b.test")
    media_type, content = attachment(tls)
    assert media_type == "application/tlsrpt+gzip"
    report = json.loads(content)
    assert report["organization-name"] == "Courrier at b.test"
    assert report["contact-info"] == "dmarc-reports@b.test"
    assert [p["summary"] for p in report["policies"]] == [
        {"total-successful-session-count": 1, "total-failure-session-count": 1}
    ]
    assert json.loads(stored["c.test"].summary)["to"] == ["tls@c.test"]

    # Mail claiming our own domain: its report goes into our postmaster's mailbox, not
    # through our MX.
    postmaster = await store.get_account("postmaster@b.test")
    assert postmaster is not None
    inbox = await store.directory.mailbox_id(postmaster.id, "INBOX")
    assert inbox is not None
    (delivered,) = await store.list_messages(inbox)
    _, xml = attachment(await store.read_message(delivered.id))
    SCHEMA.validate(xml.decode())
    assert b"<domain>b.test</domain>" in xml

    # Rows are kept a few days, then forgotten.
    assert await store.dmarc_day("2026-05-01") == []
    assert len(await store.dmarc_day(DAY)) == 5

    # A second run (this node's, or another's after it) sends nothing more.
    assert await send_day(settings, store, DAY, now=NOW + 3600) == []
    assert len(await store.list_queue()) == 2
    assert sorted(r.domain for r in await store.list_reports(direction="sent")) == [
        "b.test",
        "c.test",
        "example.org",
    ]


async def test_several_nodes_at_once_send_each_report_once(
    store: Store, store_opener: Callable[..., Any], settings: Settings
) -> None:
    await fill(store)
    other: Store = await store_opener()
    try:
        runs = await asyncio.gather(
            send_day(settings, store, DAY, now=NOW),
            send_day(settings, other, DAY, now=NOW),
            send_day(settings, other, DAY, now=NOW),
        )
    finally:
        await other.close()
    sent = sorted((r.kind, r.domain) for run in runs for r in run)
    assert sent == [("dmarc", "b.test"), ("dmarc", "example.org"), ("tlsrpt", "c.test")]
    assert len(await store.list_queue()) == 2
    assert len(await store.list_reports(direction="sent")) == 3


async def test_nothing_is_kept_for_a_domain_with_nowhere_to_send_to(
    store: Store, tmp_path: Path
) -> None:
    await fill(store)
    # Every lookup fails: the external rua and the TLSRPT record are not known this time.
    stub = DNSStub(RECORDS, failing={"example.org._report._dmarc.other.test", "_smtp._tls.c.test"})
    async with stub.serving() as address:
        failing = config.load(
            env={},
            overrides={"dns.resolvers": [address], "server.hostname": "mx.b.test"},
        )
        sent = await send_day(failing, store, DAY, now=NOW)
    # example.org still goes to its own address; c.test waits for the next run.
    assert [(r.kind, r.domain, json.loads(r.summary)["to"]) for r in sent] == [
        ("dmarc", "b.test", ["postmaster@b.test"]),
        ("dmarc", "example.org", ["dmarc@example.org"]),
    ]
    assert all(r.kind == "dmarc" for r in await store.list_reports(direction="sent"))
    # Sent unsigned (no DKIM key for mx.b.test), from postmaster@ the host name.
    (only,) = await store.list_queue()
    assert only.sender == "postmaster@mx.b.test"


async def test_the_scheduler_sends_yesterdays_reports(store: Store, settings: Settings) -> None:
    await fill(store)
    assert previous_day(NOW) == DAY
    woken: list[bool] = []
    scheduler = ReportScheduler(settings, store, lambda: woken.append(True))
    sent: list[Report] = await scheduler.run_once(NOW)
    assert len(sent) == 3 and woken
    assert await scheduler.run_once(NOW + 3600) == []
    # Run as `courrier serve` would: it sends, then waits an hour; cancelled at the stop.
    scheduler.interval = 0.01
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
