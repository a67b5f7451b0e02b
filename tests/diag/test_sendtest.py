"""The send-test transcript on the paths courrier's own server does not take by itself (it
offers CHUNKING and AUTH PLAIN): DATA with its 354 and the message shown up to a few body
lines, AUTH LOGIN with both answers hidden; and the test message as composed."""

from __future__ import annotations

import email
import email.policy

from courrier.diag.sendtest import SHOWN_BODY_LINES, Recorder, Target, compose
from courrier.smtp.client import SMTPClient
from courrier.smtp.client_proto import Envelope, Extensions, Recipient
from tests.support.server import PASSWORD, Running, client_tls, inbox


async def test_data_and_auth_login_as_the_transcript_shows_them(running: Running) -> None:
    lines: list[str] = []
    port = running.port("submission")
    recorder = Recorder(lines.append, Target("localhost", "127.0.0.1", port), checked=False)
    body = "".join(f".line {n}\n" for n in range(30))  # dot-stuffed on the wire
    content = compose(
        "bob@example.org", "bob@example.org", hostname="test.example", subject="Long", body=body
    )
    async with await SMTPClient.connect(
        "127.0.0.1", port, local_name="laptop.example", transcript=recorder
    ) as client:
        await client.hello()
        await client.starttls(client_tls(), "localhost")
        kept = {k: v for k, v in client.extensions.keywords.items() if k != "CHUNKING"}
        client.extensions = Extensions({**kept, "AUTH": "LOGIN"})
        await client.authenticate("bob@example.org", PASSWORD)
        (outcome,) = await client.send(
            Envelope("bob@example.org", (Recipient("bob@example.org"),)), content
        )
    assert outcome.delivered is True
    assert lines[:3] == [
        "=== Connected to 127.0.0.1.",
        "<-  220 mx.example.org ESMTP courrier",
        " -> EHLO laptop.example",
    ]
    auth = lines.index(" ~> AUTH LOGIN")
    assert [line[:8] for line in lines[auth : auth + 6]] == [
        " ~> AUTH", "<~  334 ", " ~> ***", "<~  334 ", " ~> ***", "<~  235 ",
    ]  # fmt: skip
    assert " ~> DATA" in lines and any(line.startswith("<~  354 ") for line in lines)
    header_end = lines.index(" ~> ")
    assert " ~> Subject: Long" in lines[:header_end]
    # The first body lines as sent (dot-stuffed, RFC 5321 §4.5.2), the others counted.
    assert lines[header_end + 1 : lines.index(" ~> .")] == [
        *(f" ~> ..line {n}" for n in range(SHOWN_BODY_LINES)),
        f"=== {30 - SHOWN_BODY_LINES} more lines of the message not shown",
    ]
    assert PASSWORD not in "\n".join(lines)
    (stored,) = await inbox(running.store, "bob@example.org")
    assert stored.endswith(content)


def test_the_test_message() -> None:
    content = compose(
        "tester@example.net",
        "bob@example.org",
        hostname="host.example.net",
        headers=[("Subject", "Replaced"), ("X-Trace", "one"), ("X-Trace", "two")],
    )
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert message["From"] == "tester@example.net" and message["To"] == "bob@example.org"
    assert message.get_all("Subject") == ["Replaced"]
    assert message.get_all("X-Trace") == ["one", "two"]
    assert message["Message-ID"].endswith("@host.example.net>") and message["Date"]
    text = message.get_content()
    assert "test message sent by courrier send-test" in text and "bob@example.org" in text
    assert max(len(line) for line in content.split(b"\r\n")) <= 78  # no folding needed
