"""The decoded fields of ``parse``: dates, base subject, preview, searchable text."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from courrier.message import ParsedMessage, base_subject, parse


def _date(value: str) -> datetime | None:
    return parse(b"Date: " + value.encode() + b"\r\n\r\n").sent_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 23 Nov 2026 10:00:00 +0100", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
        ("23 Nov 2026 10:00 -0230", datetime(2026, 11, 23, 12, 30, tzinfo=UTC)),
        ("Mon, 23 Nov 2026 10:00:00 +0000 (UTC)", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        ("Mon,23 Nov 2026 10:00:00 +0000", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        ("Mon, 23 Nov 2026 10:00:00 -0000", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        # The obsolete forms of RFC 5322 §4.3: zone names, two-digit years.
        ("Mon, 23 Nov 2026 10:00:00 EST", datetime(2026, 11, 23, 15, 0, tzinfo=UTC)),
        ("Mon, 23 Nov 2026 10:00:00 GMT", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        ("23 Nov 96 10:00:00 +0000", datetime(1996, 11, 23, 10, 0, tzinfo=UTC)),
        ("Mon, 30 Feb 2026 10:00:00 +0000", None),
        ("Mon, 23 Xyz 2026 10:00:00 +0000", None),
        ("Mon, 23 Nov 2026 25:00:00 +0000", None),
        ("Mon, 23 Nov 2026 10:00:00 +9999", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_sent_date(value: str, expected: datetime | None) -> None:
    found = _date(value)
    assert found == expected
    assert found is None or found.tzinfo is not None


def test_sent_date_keeps_the_zone() -> None:
    found = _date("Tue, 1 Dec 2026 08:00:00 +0530")
    assert found is not None and found.utcoffset() == timedelta(hours=5, minutes=30)
    assert found == datetime(2026, 12, 1, 8, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Re: hello", "hello"),
        ("RE: Re: re:hello", "hello"),
        ("Fwd: [list] Re: hello (fwd)", "hello"),
        ("[list] hello", "hello"),
        ("[list]", "[list]"),  # removing the blob would leave nothing (RFC 5256 §2.1 step 4)
        ("Re[2]: hello", "hello"),
        ("[Fwd: Re: hello]", "hello"),
        ("  spaced   out\tsubject  ", "spaced out subject"),
        ("", ""),
        ("Réponse: pas un préfixe", "Réponse: pas un préfixe"),
    ],
)
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == base


def test_preview_limits_and_whitespace() -> None:
    words = " ".join(f"w{i}" for i in range(200))
    parsed = parse(b"Content-Type: text/plain\r\n\r\n" + words.encode())
    assert len(parsed.preview) == 200 and parsed.preview == words[:200]
    spaced = b"\r\n".join([b"  "] * 600 + [b"late\tstart \x00 after\x07bell"])
    assert parse(b"\r\n" + spaced).preview == "late start after bell"
    html = b"Content-Type: text/html\r\n\r\n<style>x</style><p>Hello</p><p>world</p>"
    assert parse(html).preview == "Hello world"


def test_preview_skips_attachments_and_non_text() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nattached\r\n"
        b"--x\r\nContent-Type: image/png\r\n\r\nPNG\r\n"
        b"--x\r\nContent-Type: text/html\r\nContent-Disposition: inline\r\n\r\n<b>inline</b>\r\n"
        b"--x--\r\n"
    )
    parsed = parse(raw)
    assert parsed.preview == "inline"
    assert parsed.text == "attached\ninline"


def test_alternative_without_plain_takes_the_last() -> None:
    raw = (
        b"Content-Type: multipart/alternative; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/enriched\r\n\r\n<bold>rich</bold>\r\n"
        b"--x\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--x--"
    )
    assert parse(raw).text == "html"


def test_parsed_message_is_frozen_and_slotted() -> None:
    parsed = parse(b"Subject: x\r\n\r\ny")
    assert not hasattr(parsed, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.subject = "changed"  # type: ignore[misc]
    assert isinstance(parsed, ParsedMessage)
    assert parsed.headers_text == "Subject: x"
    assert (parsed.in_reply_to, parsed.references, parsed.message_id) == ("", "", "")
