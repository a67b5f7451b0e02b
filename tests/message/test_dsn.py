"""Bounces (RFC 3464): parsed back with Python's email package, every field where it belongs."""

from __future__ import annotations

import email
import email.policy

from courrier.message import parse
from courrier.message.dsn import Failure, compose, wanted

ORIGINAL = (
    b"From: Bob <bob@example.org>\r\nTo: carol@b.test\r\nSubject: Lunch\r\n"
    b"Message-ID: <m1@example.org>\r\n\r\nSee you at noon.\r\n"
)


def test_a_failure_report_with_the_whole_message() -> None:
    raw = compose(
        reporting_mta="mx.example.org",
        sender="bob@example.org",
        original=ORIGINAL,
        failures=[
            Failure(
                "nobody@b.test",
                "5.1.1",
                "550 5.1.1 No such user",
                remote_mta="mx.b.test",
                original_recipient="rfc822;nobody@b.test",
            )
        ],
        arrival=1_790_000_000,
        envid="ENV42",
    )
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"] == "auto-replied" and msg["To"].addresses[0].addr_spec == (
        "bob@example.org"
    )
    text, status, returned = msg.get_payload()  # type: ignore[misc]
    assert "nobody@b.test" in text.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mx.example.org"
    assert per_message["Original-Envelope-Id"] == "ENV42"
    assert per_recipient["Final-Recipient"] == "rfc822; nobody@b.test"
    assert per_recipient["Original-Recipient"] == "rfc822;nobody@b.test"
    assert (per_recipient["Action"], per_recipient["Status"]) == ("failed", "5.1.1")
    assert per_recipient["Remote-MTA"] == "dns; mx.b.test"
    assert per_recipient["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"
    assert returned.get_content_type() == "message/rfc822"
    assert returned.get_payload()[0]["Message-ID"] == "<m1@example.org>"
    assert raw.endswith(b"--\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    assert parse(raw).subject == "Undelivered Mail Returned to Sender"  # our own parser too


def test_ret_hdrs_and_delays_return_the_header_only() -> None:
    for ret, action in (("HDRS", "failed"), (None, "delayed")):
        raw = compose(
            reporting_mta="mx.example.org",
            sender="bob@example.org",
            original=ORIGINAL,
            failures=[Failure("carol@b.test", "4.4.1", "connection refused", action=action)],
            arrival=1_790_000_000,
            ret=ret,
        )
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        returned = msg.get_payload()[2]  # type: ignore[index]
        assert returned.get_content_type() == "text/rfc822-headers"
        assert b"See you at noon" not in raw
        assert ("Delayed Mail" in msg["Subject"]) == (action == "delayed")


def test_notify_decides() -> None:
    assert wanted(None, "failed") and wanted(None, "delayed")
    assert wanted("FAILURE,DELAY", "failed") and wanted("delay", "delayed")
    assert not wanted("NEVER", "failed") and not wanted("SUCCESS", "failed")
    assert not wanted("FAILURE", "delayed")
