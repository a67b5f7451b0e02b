"""Reports arriving on the MX: a DMARC aggregate report (Google's zip) and a TLS report sent
to our server over SMTP are delivered to the mailbox and read into the store; a report about
someone else's domain, or an ordinary message, adds nothing."""

from __future__ import annotations

import asyncio
import smtplib

from courrier.mailauth.reportin import ReportInbox
from tests.mailauth.reportmail import google_dmarc, google_tlsrpt
from tests.support.server import Running, inbox


def send(running: Running, content: bytes, to: str = "bob@example.org") -> None:
    with smtplib.SMTP("127.0.0.1", running.port("smtp")) as client:
        client.sendmail("noreply-dmarc-support@google.com", [to], content)


async def reports_read(running: Running) -> None:
    """Wait until the server has read what it was sent (it does so after replying)."""
    reader = running.server.reports
    assert isinstance(reader, ReportInbox)
    await asyncio.wait_for(reader.idle(), 10)


async def test_reports_sent_to_us_are_read(running: Running) -> None:
    await asyncio.to_thread(send, running, google_dmarc())
    await asyncio.to_thread(send, running, google_tlsrpt())
    other = google_dmarc().replace(b"<domain>example.org</domain>", b"<domain>else.test</domain>")
    await asyncio.to_thread(send, running, other)
    await asyncio.to_thread(send, running, b"Subject: hello\r\n\r\nNo report here.\r\n")
    await reports_read(running)
    assert len(await inbox(running.store, "bob@example.org")) == 4  # delivered as mail too
    reports = await running.store.list_reports(direction="received")
    assert sorted((r.kind, r.domain, r.org) for r in reports) == [
        ("dmarc", "example.org", "google.com"),
        ("tlsrpt", "example.org", "Google Inc."),
    ]
