"""Two courrier instances on two loopback addresses and a DNS stand-in: mail submitted on A
leaves A's queue for B's mailbox; unknown recipients fail, a dead MX falls back to the next,
a failing lookup is retried."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from pathlib import Path

from courrier.smtp.client_proto import Recipient
from courrier.store.queue import Outbound, OutboundRecipient
from tests.queue.helpers import queue_empty, server_b, submit, two_servers
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub
from tests.support.server import PASSWORD, inbox, start_server


async def test_submitted_on_a_delivered_into_b(tmp_path: Path) -> None:
    stub = DNSStub({"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]})
    async with two_servers(tmp_path, stub) as (a, b):
        content = make_message(1, body="Hello B.\r\n.A dotted line\r\n")
        await submit(a, ["carol@b.test", "nobody@b.test"], content)
        await queue_empty(a)
        (received,) = await inbox(b.store, "carol@b.test")
        assert received.endswith(content)
        assert b"from mx.example.org" in received.split(b"\r\n\r\n")[0]  # B's trace of A
        # Exactly one report, in the sender's INBOX at A, about the unknown recipient only.
        (report,) = await inbox(a.store, "bob@example.org")
    assert ("b.test", "MX") in stub.queries
    msg = email.message_from_bytes(report, policy=email.policy.default)
    assert msg["Return-Path"] == "<>" and msg.get_content_type() == "multipart/report"
    _, status, returned = msg.get_payload()  # type: ignore[misc]
    (per_recipient,) = status.get_payload()[1:]
    assert per_recipient["Final-Recipient"] == "rfc822; nobody@b.test"
    assert per_recipient["Status"] == "5.1.1" and per_recipient["Remote-MTA"] == "dns; mx.b.test"
    assert per_recipient["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    assert returned.get_payload()[0]["Subject"] == email.message_from_bytes(content)["Subject"]


async def test_a_dead_mx_falls_back_to_the_next(tmp_path: Path) -> None:
    stub = DNSStub(
        {
            "b.test MX": ["10 dead.b.test.", "20 mx.b.test."],
            "dead.b.test A": ["127.0.0.9"],  # nothing listens there
            "mx.b.test A": ["127.0.0.3"],
        }
    )
    async with two_servers(tmp_path, stub) as (a, b):
        await submit(a, ["carol@b.test"], make_message(2))
        await queue_empty(a)
        assert len(await inbox(b.store, "carol@b.test")) == 1


async def test_a_failing_lookup_is_tried_again(tmp_path: Path) -> None:
    stub = DNSStub(
        {"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]}, failing={"b.test"}
    )
    async with two_servers(tmp_path, stub) as (a, b):
        await submit(a, ["carol@b.test"], make_message(3))
        deadline = time.monotonic() + 10
        while True:
            (queued,) = await a.store.list_queue()
            if queued.recipients[0].attempts >= 1:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert queued.recipients[0].state == "queued"
        assert queued.recipients[0].last_reply.startswith("451 4.4.3")
        stub.failing.clear()  # the DNS is back
        await queue_empty(a)
        assert len(await inbox(b.store, "carol@b.test")) == 1


async def test_notify_never_gets_no_report(tmp_path: Path) -> None:
    stub = DNSStub({"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]})
    async with two_servers(tmp_path, stub) as (a, _b):
        await submit(a, [Recipient("nobody@b.test", notify="NEVER")], make_message(5))
        await queue_empty(a)
        assert await inbox(a.store, "bob@example.org") == []  # NOTIFY=NEVER: no report


async def test_a_report_is_never_reported_on(tmp_path: Path) -> None:
    """Mail from the null reverse-path (a report itself) that fails is dropped, not bounced
    (RFC 5321 §4.5.5)."""
    stub = DNSStub({"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]})
    async with two_servers(tmp_path, stub) as (a, _b):
        outbound = Outbound("NULL1", "", (OutboundRecipient("nobody@b.test"),), b"")
        await a.store.deliver(make_message(6), [], outbound=outbound)
        await queue_empty(a)
        await asyncio.sleep(0.3)
        assert await a.store.list_queue() == []  # no report was queued either
        assert await inbox(a.store, "bob@example.org") == []


async def test_a_sender_hears_once_that_mail_is_delayed(tmp_path: Path) -> None:
    stub = DNSStub(
        {"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]}, failing={"b.test"}
    )
    async with two_servers(tmp_path, stub, **{"queue.delay_warning": 1}) as (a, b):
        await submit(a, ["carol@b.test"], make_message(7))
        deadline = time.monotonic() + 15
        while True:  # a few more attempts after the warning was due
            (queued,) = await a.store.list_queue()
            if queued.recipients[0].attempts >= 4:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        stub.failing.clear()
        await queue_empty(a)
        assert len(await inbox(b.store, "carol@b.test")) == 1
        (report,) = await inbox(a.store, "bob@example.org")  # one, however many attempts
    msg = email.message_from_bytes(report, policy=email.policy.default)
    assert "Delayed Mail" in msg["Subject"]
    _, status, returned = msg.get_payload()  # type: ignore[misc]
    (per_recipient,) = status.get_payload()[1:]
    assert per_recipient["Action"] == "delayed" and per_recipient["Status"] == "4.4.3"
    assert returned.get_content_type() == "text/rfc822-headers"


class BrokenTLSServer:
    """An MX that offers STARTTLS and then sends no TLS at all; it takes mail in clear."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.tls_tries = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 broken.c.test ESMTP\r\n")
        while line := await reader.readline():
            command = line.strip().upper()
            if command.startswith(b"EHLO"):
                writer.write(b"250-broken.c.test\r\n250 STARTTLS\r\n")
            elif command == b"STARTTLS":
                self.tls_tries += 1
                writer.write(b"220 go ahead\r\n" + b"this is not a TLS record\r\n" * 8)
                await writer.drain()
                writer.close()
                return
            elif command == b"DATA":
                writer.write(b"354 go on\r\n")
                await writer.drain()
                self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                writer.write(b"250 2.0.0 taken\r\n")
            elif command == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                writer.close()
                return
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()


async def test_a_failing_starttls_is_retried_in_clear_unless_requiretls(tmp_path: Path) -> None:
    fake = BrokenTLSServer()
    listener = await asyncio.start_server(fake.handle, "127.0.0.4", 0)
    port = listener.sockets[0].getsockname()[1]
    stub = DNSStub({"c.test MX": ["10 mx.c.test."], "mx.c.test A": ["127.0.0.4"]})
    async with listener, stub.serving() as resolver:
        settings = {
            "dns.resolvers": [resolver],
            "queue.deliver": True,
            "queue.outbound_port": port,
            "queue.scan_interval": 1,
            "queue.retry_min": 60,  # one attempt in this test
        }
        async with start_server(tmp_path / "a", **settings) as a:
            plain = Outbound("PLAIN", "", (OutboundRecipient("dave@c.test"),), b"")
            await a.store.deliver(make_message(8), [], outbound=plain)
            strict = Outbound(
                "STRICT", "", (OutboundRecipient("dave@c.test"),), b"", requiretls=True
            )
            await a.store.deliver(make_message(9), [], outbound=strict)
            deadline = time.monotonic() + 15
            while True:
                queued = await a.store.list_queue()
                if [q.queue_id for q in queued] == ["STRICT"] and queued[0].recipients[0].attempts:
                    break
                assert time.monotonic() < deadline, queued
                await asyncio.sleep(0.05)
            (strict_queued,) = queued
    assert fake.tls_tries == 1  # the plain one tried TLS, then went on in clear
    assert len(fake.messages) == 1
    # The REQUIRETLS one was not even tried: mx.c.test has neither DANE nor MTA-STS
    # (RFC 8689 §4.2.1), so it waits, and nothing was sent in clear.
    assert strict_queued.recipients[0].state == "queued"
    assert strict_queued.recipients[0].last_reply.startswith("451 4.7.10")
    assert "REQUIRETLS" in strict_queued.recipients[0].last_reply


async def test_through_a_smarthost_with_starttls_and_auth(tmp_path: Path) -> None:
    """Seed 000's "relay through SendGrid on 587": here B's submission port plays the
    provider; A sends everything there, over STARTTLS, logged in."""
    async with server_b(tmp_path) as b:
        relay = {
            "queue.deliver": True,
            "queue.scan_interval": 1,
            "queue.relayhost": f"127.0.0.3:{b.port('submission')}",
            "queue.relay_verify": False,  # B's certificate is self-signed
            "queue.relay_username": "bob@example.org",  # B hosts example.org too
            "queue.relay_password": PASSWORD,
        }
        async with start_server(tmp_path / "a", **{"server.listen": ["127.0.0.2"], **relay}) as a:
            await submit(a, ["carol@b.test"], make_message(10))
            await queue_empty(a)
        (received,) = await inbox(b.store, "carol@b.test")
    assert b"with ESMTPSA" in received  # B saw TLS and a login
    assert received.endswith(make_message(10))
