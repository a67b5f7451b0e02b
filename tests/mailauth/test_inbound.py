"""Inbound authentication end to end, with the DNS on a loopback stand-in.

A (127.0.0.2, example.org, signing with the keys it tells its operator to publish) sends to B
(127.0.0.3, b.test): B's copy says ``spf=pass dkim=pass dmarc=pass`` with aligned domains. A
spoofer on 127.0.0.5 writing ``From: alice@example.org`` gets ``dmarc=fail`` and lands in Junk
under ``p=quarantine``, or is refused under ``p=reject``; a body altered after signing gets
``dkim=fail``; an Authentication-Results claiming B's name, planted by the sender, is gone.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import gzip
import json
import smtplib
import time
from pathlib import Path

import authres
import dkim
import pytest

from courrier import provisioning
from courrier.dns.resolver import make_resolver
from courrier.mailauth.arc import verify_arc
from courrier.mailauth.reporting import send_day
from tests.mailauth.helpers import dns_lookup, publish_dkim
from tests.mailauth.test_aggregate import SCHEMA
from tests.queue.helpers import queue_empty, submit, two_servers
from tests.support.dnsstub import DNSStub
from tests.support.server import Running, inbox

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Carol <carol@b.test>\r\n"
    b"Subject: Quarterly numbers\r\n"
    b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <q4@example.org>\r\n"
    b"\r\n"
    b"The numbers are attached.\r\n"
)


def records(policy: str) -> dict[str, list[str]]:
    return {
        "b.test MX": ["10 mx.b.test."],
        "mx.b.test A": ["127.0.0.3"],
        # A's mail leaves from 127.0.0.1 (the kernel's choice towards 127.0.0.3).
        "example.org TXT": ['"v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 -all"'],
        "_dmarc.example.org TXT": [f'"v=DMARC1; p={policy}; rua=mailto:dmarc@reports.test"'],
        # RFC 7489 §7.1: reports.test agrees to take example.org's reports.
        "example.org._report._dmarc.reports.test TXT": ['"v=DMARC1"'],
    }


def results_of(message: bytes, authserv_id: str = "mx.b.test") -> dict[str, list[str]]:
    """Each method's results in the Authentication-Results field of ``authserv_id``."""
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    fields = [f for f in head.replace("\r\n\t", " ").replace("\r\n ", " ").split("\r\n")]
    ours = [
        authres.AuthenticationResultsHeader.parse(f)
        for f in fields
        if f.lower().startswith("authentication-results:")
    ]
    ours = [h for h in ours if h.authserv_id == authserv_id]
    assert len(ours) == 1, fields
    found: dict[str, list[str]] = {}
    for result in ours[0].results:
        found.setdefault(result.method, []).append(result.result)
    return found


def spoof(b: Running, content: bytes, mail_from: str = "mallory@attacker.test") -> None:
    """An outsider on 127.0.0.5 talks to B's MX directly (blocking: run in a thread)."""
    with smtplib.SMTP(
        "127.0.0.3", b.port("smtp"), local_hostname="attacker.test", source_address=("127.0.0.5", 0)
    ) as client:
        client.sendmail(mail_from, ["carol@b.test"], content)


async def test_mail_from_a_passes_every_check_at_b(tmp_path: Path) -> None:
    stub = DNSStub(records("reject"))
    async with two_servers(tmp_path, stub) as (a, b):
        await publish_dkim(a, stub)
        await submit(a, ["carol@b.test"], MESSAGE)
        await queue_empty(a)
        (received,) = await inbox(b.store, "carol@b.test")
        found = results_of(received)
        assert found["spf"] == ["pass"]
        assert found["dkim"] == ["pass", "pass"]  # RSA and Ed25519
        assert found["dmarc"] == ["pass"]
        head = received.split(b"\r\n\r\n")[0]
        assert b"header.from=example.org" in head and b"header.d=example.org" in head
        assert b"smtp.mailfrom=bob@example.org" in head
        assert b"Received-SPF: pass" in head
        # Counted for example.org's aggregate report.
        (row,) = await b.store.dmarc_day(time.strftime("%Y-%m-%d", time.gmtime()))
        record = json.loads(row.record)
        assert (row.policy_domain, row.count) == ("example.org", 1)
        assert (record["dkim"], record["spf"], record["disposition"]) == ("pass", "pass", "none")
        # B's aggregate report for the day: queued for reports.test, valid by the schema.
        day = time.strftime("%Y-%m-%d", time.gmtime())
        (sent,) = await send_day(b.server.settings, b.store, day)
        assert (sent.kind, sent.domain) == ("dmarc", "example.org")
        (queued,) = await b.store.list_queue()
        assert [r.recipient for r in queued.recipients] == ["dmarc@reports.test"]
        report = await b.store.read_queued_by_id(queued.queue_id)
        assert report is not None
        parsed = email.message_from_bytes(report, policy=email.policy.default)
        (part,) = [p for p in parsed.walk() if p.get_filename()]
        xml = gzip.decompress(part.get_payload(decode=True))
        SCHEMA.validate(xml.decode())
        assert b"<header_from>example.org</header_from>" in xml
        assert b"<count>1</count>" in xml and b"<disposition>none</disposition>" in xml


async def test_a_body_altered_after_signing_fails_dkim(tmp_path: Path) -> None:
    stub = DNSStub(records("none"))
    async with two_servers(tmp_path, stub) as (a, b):
        await publish_dkim(a, stub)
        await submit(a, ["carol@b.test"], MESSAGE)
        await queue_empty(a)
        (received,) = await inbox(b.store, "carol@b.test")
        # The signed message as A sent it, replayed by someone who changed the body.
        start = received.index(b"DKIM-Signature:")
        altered = received[start:].replace(b"numbers are attached", b"numbers are wrong")
        await asyncio.to_thread(spoof, b, altered, "bob@example.org")
        received_twice = await inbox(b.store, "carol@b.test")
        found = results_of(received_twice[1])
        assert found["dkim"] == ["fail", "fail"]
        assert found["spf"] == ["fail"]  # 127.0.0.5 is not in example.org's SPF record
        assert found["dmarc"] == ["fail"]  # p=none: delivered all the same


async def test_a_spoofed_from_goes_to_junk_under_quarantine(tmp_path: Path) -> None:
    stub = DNSStub(records("quarantine"))
    async with two_servers(tmp_path, stub) as (_, b):
        planted = b"Authentication-Results: mx.b.test; dmarc=pass header.from=example.org\r\n"
        await asyncio.to_thread(spoof, b, planted + MESSAGE)
        assert await inbox(b.store, "carol@b.test") == []
        (junk,) = await inbox(b.store, "carol@b.test", "Junk")
        found = results_of(junk)  # exactly one field of ours: the planted one is gone
        assert found["dmarc"] == ["fail"]
        assert found["spf"] == ["none"]  # attacker.test publishes nothing
        assert found["dkim"] == ["none"]
        assert b"dmarc=pass" not in junk
        (row,) = await b.store.dmarc_day(time.strftime("%Y-%m-%d", time.gmtime()))
        record = json.loads(row.record)
        assert (record["disposition"], record["source_ip"]) == ("quarantine", "127.0.0.5")


@pytest.mark.parametrize("setting", ["reject", "quarantine"])
async def test_a_spoofed_from_is_refused_under_reject(tmp_path: Path, setting: str) -> None:
    stub = DNSStub(records("reject"))
    async with two_servers(tmp_path, stub, {"mailauth.dmarc_reject": setting}) as (_, b):
        if setting == "reject":
            with pytest.raises(smtplib.SMTPDataError) as refused:
                await asyncio.to_thread(spoof, b, MESSAGE)
            assert refused.value.smtp_code == 550
            assert refused.value.smtp_error.startswith(b"5.7.1 ")
            assert await inbox(b.store, "carol@b.test", "Junk") == []
        else:  # the receiving operator chose to quarantine instead
            await asyncio.to_thread(spoof, b, MESSAGE)
            assert len(await inbox(b.store, "carol@b.test", "Junk")) == 1
        assert await inbox(b.store, "carol@b.test") == []


async def test_mail_forwarded_by_an_alias_leaves_arc_sealed(tmp_path: Path) -> None:
    """B forwards list@b.test to another server: the queued copy carries B's ARC set, which
    tells the next receiver that SPF, DKIM and DMARC passed here (RFC 8617)."""
    stub = DNSStub(records("reject"))
    async with two_servers(tmp_path, stub) as (a, b):
        await provisioning.add_alias(b.store, "list@b.test", ["dave@c.test"])
        await publish_dkim(a, stub)
        await publish_dkim(b, stub, "b.test")
        content = MESSAGE.replace(b"To: Carol <carol@b.test>", b"To: list@b.test")
        await submit(a, ["list@b.test"], content)
        await queue_empty(a)
        (queued,) = await b.store.list_queue()
        forwarded = await b.store.read_queued_by_id(queued.queue_id)
        assert forwarded is not None
        head = forwarded.split(b"\r\n\r\n")[0]
        assert b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=b.test" in head.replace(b"\r\n\t", b" ")
        assert b"ARC-Authentication-Results: i=1; mx.b.test;" in head
        assert b"dmarc=pass" in head and b"spf=pass" in head
        resolver = make_resolver(b.server.settings, timeout=2)
        chain = await verify_arc(forwarded, resolver)
        assert (chain.result, chain.sealers) == ("pass", ("b.test",))
        # The independent verifier agrees.
        lookup = dns_lookup(b.server.settings.dns.resolvers[0])
        cv, _, why = await asyncio.to_thread(dkim.arc_verify, forwarded, dnsfunc=lookup)
        assert cv == b"pass", why
