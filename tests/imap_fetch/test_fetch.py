"""FETCH responses (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY) rendered by
``courrier.imap.fetch``.

Expected section contents are cut out of the raw octets here, by searching for the text around
them, never taken from the MIME parser; BINARY contents are decoded with Python's ``email``
package. Every response is read back with a small literal-aware reader that checks the
response is well-formed: literal sizes equal the octets that follow, no NUL outside literal8.
"""

from __future__ import annotations

import base64
import email
import email.policy
import quopri
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message as EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.imap import fetch
from courrier.imap.fetch import (
    UnknownCTE,
    format_flags,
    format_internal_date,
    needs_raw,
    render,
    sets_seen,
)
from courrier.imap.types import FetchAttr, FetchItem, FetchName, FetchSection
from courrier.message import parse
from courrier.message.headers import header_span
from courrier.store.models import Flag, Message
from tests.message.corpus import DATA, IMAPTEST_QP, IMAPTEST_QP_DECODED, load, seg

# --- helpers ---------------------------------------------------------------------------------

NO_FLAGS = Flag(0)
NOV_3_10H = int(datetime(2026, 11, 3, 10, 0, 0, tzinfo=UTC).timestamp())


def make_message(
    raw: bytes,
    *,
    uid: int = 7,
    modseq: int = 42,
    flags: Flag = NO_FLAGS,
    keywords: tuple[str, ...] = (),
    internal_date: int = NOV_3_10H,
    blob_id: int = 0x2A,
) -> Message:
    """A message row as the store builds it (``AppendItem.row``), without a delivery prefix."""
    p = parse(raw)
    return Message(
        id=1,
        mailbox_id=1,
        uid=uid,
        modseq=modseq,
        flags=flags,
        keywords=keywords,
        internal_date=internal_date,
        size=len(raw),
        blob_id=blob_id,
        envelope=p.envelope,
        bodystructure=p.bodystructure,
        body=p.body,
        subject=p.subject,
        from_=p.from_,
        to=p.to,
        cc=p.cc,
        bcc=p.bcc,
        sent_date=None if p.sent_date is None else int(p.sent_date.timestamp()),
        message_id=p.message_id,
        in_reply_to=p.in_reply_to,
        references=p.references,
        preview=p.preview,
        sort_subject=p.sort_subject,
        sort_from=p.sort_from,
        sort_to=p.sort_to,
        sort_cc=p.sort_cc,
    )


class Atom(str):
    """An atom or number as sent (flags, NIL is None)."""


class Quoted(bytes):
    pass


class Lit(bytes):
    pass


class Lit8(bytes):
    pass


Value = None | Atom | Quoted | Lit | Lit8 | list["Value"]


def _read_value(data: bytes, i: int) -> tuple[Value, int]:
    c = data[i]
    if c == 0x28:  # "("
        items: list[Value] = []
        i += 1
        while data[i] != 0x29:
            if items and data[i] == 0x20:  # body-type-mpart has no space between bodies
                i += 1
            item, i = _read_value(data, i)
            items.append(item)
        return items, i + 1
    if c == 0x22:  # quoted string: no CR, LF or NUL; 8-bit only as UTF-8 (rev2)
        out = bytearray()
        i += 1
        while data[i] != 0x22:
            if data[i] == 0x5C:
                i += 1
                assert data[i] in b'"\\'
            assert data[i] not in b"\r\n\x00"
            out.append(data[i])
            i += 1
        bytes(out).decode("utf-8")
        return Quoted(out), i + 1
    if c in b"{~":
        binary = c == 0x7E
        match = re.compile(rb"~?\{(\d+)\}\r\n").match(data, i)
        assert match is not None, data[i : i + 20]
        n = int(match.group(1))
        body = data[match.end() : match.end() + n]
        assert len(body) == n, "literal shorter than announced"
        end = match.end() + n
        assert data[end : end + 1] in (b" ", b")"), "literal size does not match its octets"
        if not binary:
            assert b"\x00" not in body, "NUL in a literal (RFC 9051 CHAR8)"
        return (Lit8 if binary else Lit)(body), end
    match = re.compile(rb"[^ ()\x00-\x1f\"{]+").match(data, i)
    assert match is not None, data[i : i + 20]
    word = match.group()
    return (None if word == b"NIL" else Atom(word.decode())), match.end()


def read_fetch(data: bytes) -> tuple[int, list[tuple[bytes, Value]]]:
    """Read back one ``* n FETCH (...)`` response, checking it is well-formed."""
    head = re.match(rb"\* (\d+) FETCH \(", data)
    assert head is not None, data[:40]
    i = head.end()
    items: list[tuple[bytes, Value]] = []
    while data[i] != 0x29:
        if items:
            assert data[i] == 0x20
            i += 1
        start, depth = i, 0
        while depth or data[i] != 0x20:  # the item name: BODY[HEADER.FIELDS (A "B")]<0>
            if data[i] == 0x22:
                _, i = _read_value(data, i)
                continue
            depth += {0x5B: 1, 0x5D: -1}.get(data[i], 0)
            i += 1
        name = data[start:i]
        value, i = _read_value(data, i + 1)
        items.append((name, value))
    assert data[i:] == b")\r\n", data[i:]
    return int(head.group(1)), items


def one(raw: bytes, item: FetchItem, **kwargs: object) -> tuple[bytes, Value]:
    """Render one item of ``raw`` and read it back: (name, value)."""
    out = render(1, make_message(raw), [item], raw, **kwargs)  # type: ignore[arg-type]
    _, items = read_fetch(out)
    assert len(items) == 1
    return items[0]


def body(raw: bytes, **section: object) -> bytes:
    """The content of BODY.PEEK[...] as sent ("" and literals alike)."""
    _, value = one(raw, FetchSection(peek=True, **section))  # type: ignore[arg-type]
    assert isinstance(value, Quoted | Lit), value
    if isinstance(value, Quoted):
        assert value == b"", "non-empty section contents are literals"
    return bytes(value)


def header_of(raw: bytes) -> bytes:
    return raw[: raw.index(b"\r\n\r\n") + 4]


def text_of(raw: bytes) -> bytes:
    return raw[raw.index(b"\r\n\r\n") + 4 :]


CORPUS = sorted(DATA.glob("*.eml"))


# --- attributes of a simple message ---------------------------------------------------------


def test_each_attribute_of_a_simple_message() -> None:
    raw = load("01-simple.eml")
    p = parse(raw)
    msg = make_message(raw, flags=Flag.SEEN | Flag.FLAGGED, keywords=("$Forwarded",))

    def only(name: FetchName, **kwargs: object) -> bytes:
        return render(3, msg, [FetchAttr(name)], None, **kwargs)  # type: ignore[arg-type]

    assert only("UID") == b"* 3 FETCH (UID 7)\r\n"
    assert only("FLAGS") == b"* 3 FETCH (FLAGS (\\Seen \\Flagged $Forwarded))\r\n"
    assert only("FLAGS", flags=b"(\\Seen)") == b"* 3 FETCH (FLAGS (\\Seen))\r\n"
    assert only("INTERNALDATE") == b'* 3 FETCH (INTERNALDATE " 3-Nov-2026 10:00:00 +0000")\r\n'
    assert only("RFC822.SIZE") == b"* 3 FETCH (RFC822.SIZE %d)\r\n" % len(raw)
    assert only("ENVELOPE") == b"* 3 FETCH (ENVELOPE " + p.envelope + b")\r\n"
    assert p.envelope.startswith(b'("Mon, 23 Nov 2026 10:00:00 +0100" "Lunch on Friday?" ')
    assert only("BODYSTRUCTURE") == b"* 3 FETCH (BODYSTRUCTURE " + p.bodystructure + b")\r\n"
    assert only("BODY") == b"* 3 FETCH (BODY " + p.body + b")\r\n"
    assert only("MODSEQ") == b"* 3 FETCH (MODSEQ (42))\r\n"
    assert only("PREVIEW") == (
        b'* 3 FETCH (PREVIEW "Hi Bob, Are you free for lunch on Friday? The usual place at '
        b'noon. Alice")\r\n'
    )
    assert only("EMAILID") == b"* 3 FETCH (EMAILID (M2a))\r\n"
    assert only("THREADID") == b"* 3 FETCH (THREADID NIL)\r\n"
    assert only("SAVEDATE") == b"* 3 FETCH (SAVEDATE NIL)\r\n"
    header = header_of(raw)
    text = raw[len(header) :]
    full = render(3, msg, [FetchAttr("RFC822")], raw)
    assert full == b"* 3 FETCH (RFC822 {%d}\r\n%s)\r\n" % (len(raw), raw)
    head = render(3, msg, [FetchAttr("RFC822.HEADER")], raw)
    assert head == b"* 3 FETCH (RFC822.HEADER {%d}\r\n%s)\r\n" % (len(header), header)
    rest = render(3, msg, [FetchAttr("RFC822.TEXT")], raw)
    assert rest == b"* 3 FETCH (RFC822.TEXT {%d}\r\n%s)\r\n" % (len(text), text)
    assert render(3, msg, [FetchSection()], raw) == (
        b"* 3 FETCH (BODY[] {%d}\r\n%s)\r\n" % (len(raw), raw)
    )


def test_several_items_in_order_uid_and_modseq_added_duplicates_once() -> None:
    raw = load("01-simple.eml")
    msg = make_message(raw, uid=99, modseq=5, flags=Flag.ANSWERED | Flag.DELETED | Flag.DRAFT)
    items: list[FetchItem] = [
        FetchAttr("FLAGS"),
        FetchAttr("RFC822.SIZE"),
        FetchAttr("UID"),
        FetchAttr("FLAGS"),
        FetchSection(text="HEADER.FIELDS", fields=("SUBJECT",), peek=True),
        FetchSection(text="HEADER.FIELDS", fields=("SUBJECT",)),
    ]
    out = render(12, msg, items, raw, include_uid=True, include_modseq=True)
    assert out == (
        b"* 12 FETCH (UID 99 MODSEQ (5) FLAGS (\\Answered \\Deleted \\Draft) RFC822.SIZE %d "
        b"BODY[HEADER.FIELDS (SUBJECT)] {29}\r\nSubject: Lunch on Friday?\r\n\r\n)\r\n" % len(raw)
    )
    assert render(1, msg, [], None) == b"* 1 FETCH ()\r\n"
    assert render(1, msg, [], None, include_uid=True) == b"* 1 FETCH (UID 99)\r\n"


def test_flags_and_dates_formatting() -> None:
    assert format_flags(Flag(0)) == b"()"
    assert format_flags(Flag.DRAFT | Flag.SEEN) == b"(\\Seen \\Draft)"
    assert format_flags(Flag(31), ("$Junk", "work")) == (
        b"(\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk work)"
    )
    assert format_flags(Flag(0), ("$MDNSent",)) == b"($MDNSent)"
    when = int(datetime(2026, 1, 31, 23, 59, 58, tzinfo=UTC).timestamp())
    assert format_internal_date(when) == b'"31-Jan-2026 23:59:58 +0000"'
    india = timezone(timedelta(hours=5, minutes=30))
    assert format_internal_date(when, india) == b'" 1-Feb-2026 05:29:58 +0530"'
    newfoundland = timezone(-timedelta(hours=3, minutes=30))
    assert format_internal_date(when, newfoundland) == b'"31-Jan-2026 20:29:58 -0330"'
    msg = make_message(load("01-simple.eml"), internal_date=when)
    assert render(1, msg, [FetchAttr("INTERNALDATE")], None, tz=india) == (
        b'* 1 FETCH (INTERNALDATE " 1-Feb-2026 05:29:58 +0530")\r\n'
    )


def test_preview_is_utf8_quoted_for_rev2_a_literal_for_rev1() -> None:
    raw = load("08-smtputf8.eml")
    text = "Schöne Grüße!".encode()
    msg = make_message(raw)
    item = [FetchAttr("PREVIEW")]
    assert render(1, msg, item, None) == b'* 1 FETCH (PREVIEW "' + text + b'")\r\n'
    assert render(1, msg, item, None, rev2=False) == (
        b"* 1 FETCH (PREVIEW {%d}\r\n%s)\r\n" % (len(text), text)
    )
    # No text at all: an empty preview, not NIL (it is not "unavailable").
    empty = make_message(b"Content-Type: image/png\r\n\r\niVBO\r\n")
    assert render(1, empty, item, None) == b'* 1 FETCH (PREVIEW "")\r\n'


def test_the_no_raw_path_does_no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(fetch, "parse_mime", boom)
    monkeypatch.setattr(fetch, "split_header", boom)
    msgs = [make_message(load(path.name), uid=n) for n, path in enumerate(CORPUS, 1)]
    items = [FetchAttr("FLAGS"), FetchAttr("UID"), FetchAttr("RFC822.SIZE"), FetchAttr("ENVELOPE")]
    assert not needs_raw(items)
    for n, msg in enumerate(msgs, 1):
        out = render(n, msg, items, None)
        assert out == b"* %d FETCH (FLAGS () UID %d RFC822.SIZE %d ENVELOPE %s)\r\n" % (
            n,
            msg.uid,
            msg.size,
            msg.envelope,
        )
        read_fetch(out)


def test_sections_need_the_octets() -> None:
    msg = make_message(load("01-simple.eml"))
    with pytest.raises(ValueError):
        render(1, msg, [FetchSection()], None)
    with pytest.raises(ValueError):
        render(1, msg, [FetchAttr("RFC822.HEADER")], None)


# --- what needs what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "raw", "seen"),
    [
        (FetchAttr("UID"), False, False),
        (FetchAttr("FLAGS"), False, False),
        (FetchAttr("BODYSTRUCTURE"), False, False),
        (FetchAttr("PREVIEW"), False, False),
        (FetchAttr("RFC822"), True, True),
        (FetchAttr("RFC822.TEXT"), True, True),
        (FetchAttr("RFC822.HEADER"), True, False),
        (FetchSection(), True, True),
        (FetchSection(peek=True), True, False),
        (FetchSection(part=(1,), text="MIME"), True, True),
        (FetchSection(binary=True), True, True),
        (FetchSection(binary=True, peek=True), True, False),
        (FetchSection(binary=True, size_only=True), True, False),
    ],
)
def test_needs_raw_and_sets_seen(item: FetchItem, raw: bool, seen: bool) -> None:
    assert needs_raw([item]) is raw
    assert sets_seen([item]) is seen
    assert needs_raw([FetchAttr("UID"), item]) is raw
    assert sets_seen([FetchAttr("UID"), item, FetchAttr("FLAGS")]) is seen


def test_needs_raw_and_sets_seen_of_nothing() -> None:
    assert not needs_raw([])
    assert not sets_seen([])


# --- BODY[section] on a nested multipart ------------------------------------------------------


def test_every_section_kind_of_a_forwarded_message() -> None:
    raw = load("05-message-rfc822.eml")
    inner = seg(raw, b"Content-Disposition: inline\r\n\r\n", b"\r\n--fwd--")
    inner_header = header_of(inner)
    inner_text = text_of(inner)
    html_part = b"<ol><li>Budget approved.</li><li>Next meeting Monday.</li></ol>\r\n"
    expected: dict[FetchSection, bytes] = {
        FetchSection(): raw,
        FetchSection(text="HEADER"): header_of(raw),
        FetchSection(text="TEXT"): text_of(raw),
        FetchSection(part=(1,)): b"Forwarding the notes below.\r\n",
        FetchSection(part=(1,), text="MIME"): b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        FetchSection(part=(2,)): inner,
        FetchSection(part=(2,), text="MIME"): (
            b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        ),
        FetchSection(part=(2,), text="HEADER"): inner_header,
        FetchSection(part=(2,), text="TEXT"): inner_text,
        FetchSection(part=(2, 1)): b"1. Budget approved.\r\n2. Next meeting Monday.\r\n",
        FetchSection(part=(2, 1), text="MIME"): (
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        ),
        FetchSection(part=(2, 2)): html_part,
        FetchSection(part=(2, 2), text="MIME"): (
            b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
        ),
        FetchSection(part=(2,), text="HEADER.FIELDS", fields=("SUBJECT", "CC")): (
            b"Cc: Grace <grace@example.org>\r\nSubject: Meeting notes\r\n\r\n"
        ),
        FetchSection(part=(2,), text="HEADER.FIELDS.NOT", fields=("CONTENT-TYPE", "DATE")): (
            b"From: Ivan <ivan@example.com>\r\nTo: team@example.com\r\n"
            b"Cc: Grace <grace@example.org>\r\nSubject: Meeting notes\r\n"
            b"Message-ID: <notes@example.com>\r\nIn-Reply-To: <agenda@example.com>\r\n"
            b"MIME-Version: 1.0\r\n\r\n"
        ),
        FetchSection(text="HEADER.FIELDS", fields=("SUBJECT",)): (
            b"Subject: Fwd: Meeting notes\r\n\r\n"
        ),
        # No such section: the empty string (as Dovecot and Cyrus answer).
        FetchSection(part=(3,)): b"",
        FetchSection(part=(0,)): b"",
        FetchSection(part=(1, 1)): b"",
        FetchSection(part=(2, 1, 1)): b"",
        FetchSection(part=(2, 3)): b"",
        FetchSection(part=(1,), text="HEADER"): b"",
        FetchSection(part=(1,), text="TEXT"): b"",
        FetchSection(part=(2, 1), text="HEADER"): b"",
        FetchSection(part=(1,), text="HEADER.FIELDS", fields=("FROM",)): b"",
        FetchSection(part=(7,), text="MIME"): b"",
        FetchSection(text="MIME"): b"",
    }
    assert inner.startswith(b"From: Ivan") and inner.endswith(b"--notes-alt--\r\n")
    assert inner_header.endswith(b'boundary="notes-alt"\r\n\r\n')
    for section, content in expected.items():
        _, value = one(raw, section)
        assert value == content, section
        assert isinstance(value, Lit if content else Quoted)


@pytest.mark.parametrize(
    ("section", "name"),
    [
        (FetchSection(), b"BODY[]"),
        (FetchSection(peek=True), b"BODY[]"),
        (FetchSection(partial=(0, 10)), b"BODY[]<0>"),
        (FetchSection(part=(1, 2), text="MIME", peek=True), b"BODY[1.2.MIME]"),
        (FetchSection(part=(2,), text="TEXT", partial=(7, 3)), b"BODY[2.TEXT]<7>"),
        (
            FetchSection(part=(1, 2), text="HEADER.FIELDS", fields=("FROM", "SUBJECT")),
            b"BODY[1.2.HEADER.FIELDS (FROM SUBJECT)]",
        ),
        (
            FetchSection(text="HEADER.FIELDS.NOT", fields=("X-A", "X-A]", 'X"B', "X(C")),
            b'BODY[HEADER.FIELDS.NOT (X-A "X-A]" "X\\"B" "X(C")]',
        ),
        (FetchSection(text="HEADER"), b"BODY[HEADER]"),
        (FetchSection(part=(3,), binary=True, peek=True), b"BINARY[3]"),
        (FetchSection(part=(3,), binary=True, partial=(5, 2)), b"BINARY[3]<5>"),
        (FetchSection(binary=True), b"BINARY[]"),
        (FetchSection(part=(1, 1), binary=True, size_only=True), b"BINARY.SIZE[1.1]"),
    ],
)
def test_response_names(section: FetchSection, name: bytes) -> None:
    got, _ = one(load("26-base64-qp-html.eml"), section)
    assert got == name


def test_single_part_message_sections() -> None:
    raw = load("01-simple.eml")
    assert body(raw, part=(1,)) == text_of(raw)
    assert body(raw, part=(1,), text="MIME") == header_of(raw)  # part 1 is the message
    assert body(raw, part=(2,)) == b""
    assert body(raw, part=(1,), text="TEXT") == b""  # not message/rfc822


def test_message_global_counts_as_encapsulated() -> None:
    raw = load("28-message-global.eml")
    inner = seg(raw, b"Content-Type: message/global\r\n\r\n", b"\r\n--g--")
    assert body(raw, part=(2,)) == inner
    assert body(raw, part=(2,), text="HEADER") == header_of(inner)
    assert body(raw, part=(2,), text="TEXT") == b"Szia!"
    assert body(raw, part=(2, 1)) == b"Szia!"
    assert body(raw, part=(2,), text="HEADER.FIELDS", fields=("SUBJECT",)) == (
        b"Subject: \xc3\x9cdv\xc3\xb6zlet\r\n\r\n"
    )


# --- partial fetches ------------------------------------------------------------------------


def test_partials() -> None:
    raw = load("05-message-rfc822.eml")
    assert body(raw, partial=(0, 10)) == raw[:10]
    assert body(raw, partial=(5, 1_000_000)) == raw[5:]
    assert body(raw, partial=(len(raw) - 1, 5)) == raw[-1:]
    assert body(raw, partial=(len(raw), 5)) == b""
    assert body(raw, partial=(len(raw) + 100, 5)) == b""
    assert body(raw, partial=(3, 0)) == b""
    assert body(raw, part=(1,), partial=(11, 5)) == b"the n"
    fields = {"text": "HEADER.FIELDS", "fields": ("SUBJECT",)}
    assert body(raw, partial=(9, 4), **fields) == b"Fwd:"
    assert one(raw, FetchSection(partial=(900_000, 1)))[0] == b"BODY[]<900000>"
    name, value = one(raw, FetchSection(part=(9,), partial=(0, 5)))
    assert (name, value) == (b"BODY[9]<0>", b"")


# --- HEADER.FIELDS ----------------------------------------------------------------------------

FOLDED = (
    b"Received: from a.example\r\n\tby b.example; Mon, 1 Dec 2026 10:00:00 +0000\r\n"
    b"Subject: one\r\n"
    b"X-Thing: a\r\n  continued\r\n\tand more\r\n"
    b"subject: two\r\n"
    b"From: x@example.org\r\n"
    b"SUBJECT : three, obsolete space before the colon\r\n"
    b"To: z@example.org\r\n"
    b"\r\n"
    b"Subject: not a header, the body\r\n"
)


def test_header_fields_folded_repeated_any_case() -> None:
    got = body(FOLDED, text="HEADER.FIELDS", fields=("SUBJECT", "X-THING"))
    assert got == (
        b"Subject: one\r\nX-Thing: a\r\n  continued\r\n\tand more\r\nsubject: two\r\n"
        b"SUBJECT : three, obsolete space before the colon\r\n\r\n"
    )
    assert body(FOLDED, text="HEADER.FIELDS", fields=("x-thing",)) == (
        b"X-Thing: a\r\n  continued\r\n\tand more\r\n\r\n"
    )
    assert body(FOLDED, text="HEADER.FIELDS.NOT", fields=("SUBJECT", "X-THING")) == (
        b"Received: from a.example\r\n\tby b.example; Mon, 1 Dec 2026 10:00:00 +0000\r\n"
        b"From: x@example.org\r\nTo: z@example.org\r\n\r\n"
    )
    # Nothing matches: just the empty line.
    assert body(FOLDED, text="HEADER.FIELDS", fields=("CC",)) == b"\r\n"
    assert body(FOLDED, text="HEADER.FIELDS.NOT", fields=()) == header_of(FOLDED)


def test_header_fields_on_the_corpus() -> None:
    dup = load("10-duplicate-subject.eml")
    assert body(dup, text="HEADER.FIELDS", fields=("SUBJECT", "DATE")) == (
        b"Subject: First subject\r\nSubject: Second subject\r\n"
        b"Date: Tue, 1 Dec 2026 10:00:00 +0100\r\nDate: Wed, 2 Dec 2026 10:00:00 +0100\r\n\r\n"
    )
    long = load("20-long-header.eml")
    subject = long[long.index(b"Subject:") : long.index(b"\r\nReferences:")]
    got = body(long, text="HEADER.FIELDS", fields=("SUBJECT",))
    assert got.startswith(b"Subject: word0\r\n\tword1\r\n")
    assert got == subject + b"\r\n\r\n"
    # A header that runs to the end of the message without a line break still gets one.
    bare = load("17-no-blank-line.eml")
    assert body(bare, text="HEADER.FIELDS", fields=("DATE",)) == (
        b"Date: Sun, 6 Dec 2026 10:00:00 +0100\r\n\r\n"
    )
    assert body(bare, text="HEADER") == bare
    assert body(bare, text="TEXT") == b""
    # Bare LF line breaks are sent as stored; the empty line added is CRLF.
    lf = load("18-bare-lf.eml")
    from_line = lf[lf.index(b"From:") : lf.index(b"\n", lf.index(b"From:")) + 1]
    assert from_line.endswith(b"\n") and not from_line.endswith(b"\r\n")
    assert body(lf, text="HEADER.FIELDS", fields=("FROM",)) == from_line + b"\r\n"


# --- BINARY (RFC 3516) ----------------------------------------------------------------------


def _email_leaves(raw: bytes) -> list[EmailMessage]:
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [part for part in parsed.walk() if not part.is_multipart()]


def test_binary_decodes_base64_and_quoted_printable() -> None:
    raw = load("26-base64-qp-html.eml")
    plain, html, csv, jpeg = (p.get_payload(decode=True) for p in _email_leaves(raw))
    assert isinstance(plain, bytes) and plain.startswith(b"Hello Xavier,\n")
    assert isinstance(html, bytes) and b"caf\xe9" in html
    assert csv == b"year,amount\n2026,42\n"
    assert isinstance(jpeg, bytes) and b"\x00" in jpeg
    for part, decoded in [((1, 1), plain), ((1, 2), html), ((2,), csv), ((3,), jpeg)]:
        name, value = one(raw, FetchSection(part=part, binary=True))
        assert value == decoded, part
        assert isinstance(value, Lit8 if b"\x00" in decoded else Lit)
        name, size = one(raw, FetchSection(part=part, binary=True, size_only=True))
        assert size == str(len(decoded))
        assert name == b"BINARY.SIZE[%s]" % ".".join(map(str, part)).encode()
    name, value = one(raw, FetchSection(part=(3,), binary=True, partial=(6, 4)))
    assert (name, value) == (b"BINARY[3]<6>", b"JFIF")
    assert isinstance(value, Lit)  # the slice has no NUL: a plain literal does
    assert one(raw, FetchSection(part=(3,), binary=True, partial=(0, 5)))[1] == Lit8(jpeg[:5])
    assert one(raw, FetchSection(part=(3,), binary=True, partial=(99, 5)))[1] == b""


def test_binary_of_no_such_part_is_nil() -> None:
    raw = load("26-base64-qp-html.eml")
    for part in [(4,), (1, 3), (2, 1), (0,)]:
        assert one(raw, FetchSection(part=part, binary=True))[1] is None, part
        assert one(raw, FetchSection(part=part, binary=True, size_only=True))[1] == "0", part
    assert one(raw, FetchSection(part=(1,), text="MIME", binary=True))[1] is None


def _binary_form(raw: bytes) -> bytes:
    """``raw`` with every base64 or quoted-printable leaf decoded, its header saying
    ``Content-Transfer-Encoding: binary`` (in these messages the field ends the header): what
    BINARY[] is expected to be, built without the MIME parser."""
    cte = re.compile(
        rb"Content-Transfer-Encoding: (base64|quoted-printable)\r\n\r\n(.*?)(?=\r\n--)", re.S
    )

    def decoded(match: re.Match[bytes]) -> bytes:
        if match[1] == b"base64":
            content = base64.b64decode(match[2])
        else:
            content = quopri.decodestring(match[2])
        return b"Content-Transfer-Encoding: binary\r\n\r\n" + content

    return cte.sub(decoded, raw)


def test_binary_of_a_multipart_decodes_the_leaves_inside() -> None:
    # imaptest fetch-binary-mime: BINARY[] and BINARY.SIZE[] of a multipart message are the
    # whole message, not NIL and 0 (RFC 3516 §4.2 decodes what it can, down to the leaves).
    raw = load("26-base64-qp-html.eml")
    whole = _binary_form(raw)
    assert whole.count(b"Content-Transfer-Encoding: binary\r\n") == 4
    assert b"Content-Transfer-Encoding: base64" not in whole
    assert b"Hello Xavier,\n" in whole and b"caf\xe9" in whole and b"\xff\xd8\xff\xe0" in whole
    name, value = one(raw, FetchSection(binary=True))
    assert (name, value) == (b"BINARY[]", Lit8(whole))  # the JPEG has NUL: literal8
    assert one(raw, FetchSection(binary=True, size_only=True))[1] == str(len(whole))
    # Part 1, a multipart/alternative: its body, from the first delimiter to the epilogue.
    alternative = seg(whole, b'boundary="enc-alt"\r\n\r\n', b"\r\n--enc\r\n")
    assert alternative.startswith(b"--enc-alt\r\n") and alternative.endswith(b"--enc-alt--\r\n")
    assert one(raw, FetchSection(part=(1,), binary=True))[1] == alternative
    assert one(raw, FetchSection(part=(1,), binary=True, size_only=True))[1] == str(
        len(alternative)
    )
    # <origin.count> applies to the decoded octets.
    name, value = one(raw, FetchSection(binary=True, partial=(100, 50)))
    assert (name, value) == (b"BINARY[]<100>", whole[100:150])
    name, value = one(raw, FetchSection(binary=True, partial=(len(whole) - 3, 50)))
    assert value == whole[-3:] == b"-\r\n"


def test_binary_of_a_7bit_multipart_is_the_message_as_stored() -> None:
    # imaptest fetch-binary-mime: nothing to decode, so BINARY[] is the message (602 octets
    # there), BINARY[n] of a message/rfc822 part the encapsulated message, header included.
    raw = (
        b"From: user@domain.org\r\nMime-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="foo\r\n bar"\r\n\r\n'
        b"Root MIME prologue\r\n\r\n--foo bar\r\nContent-Type: text/x-myown\r\n\r\nhello\r\n"
        b"\r\n--foo bar\r\nContent-Type: message/rfc822\r\n\r\n"
        b'From: sub@domain.org\r\nContent-Type: multipart/alternative; boundary="sub1"\r\n\r\n'
        b"Sub MIME prologue\r\n--sub1\r\nContent-Type: text/html\r\n\r\n<p>Hello</p>\r\n"
        b"\r\n--sub1--\r\nSub MIME epilogue\r\n\r\n--foo bar--\r\nRoot MIME epilogue\r\n"
    )
    assert one(raw, FetchSection(binary=True)) == (b"BINARY[]", Lit(raw))
    assert one(raw, FetchSection(binary=True, size_only=True))[1] == str(len(raw))
    inner = seg(raw, b"message/rfc822\r\n\r\n", b"\r\n--foo bar--")
    assert one(raw, FetchSection(part=(2,), binary=True))[1] == inner
    assert one(raw, FetchSection(part=(2,), binary=True, size_only=True))[1] == str(len(inner))
    assert one(raw, FetchSection(part=(1,), binary=True, size_only=True))[1] == "7"
    assert one(raw, FetchSection(part=(2, 1), binary=True))[1] == b"<p>Hello</p>\r\n"


def test_binary_of_quoted_printable_as_imaptest_expects() -> None:
    # imaptest fetch-binary-mime-qp: trailing whitespace deleted (RFC 2045 §6.7 rule 3), soft
    # line breaks joined, and the partials cut out of the decoded octets.
    raw = (
        b'Mime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="foo"\r\n\r\n'
        b"--foo\r\nContent-Type: text/x-myown; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + IMAPTEST_QP + b"\r\n--foo--\r\n"
    )
    assert len(IMAPTEST_QP_DECODED) == 65
    assert one(raw, FetchSection(part=(1,), binary=True, size_only=True))[1] == "65"
    assert one(raw, FetchSection(part=(1,), binary=True))[1] == IMAPTEST_QP_DECODED
    for origin, count, expected in [
        (0, 10, b"hello\r\nbar"),
        (10, 10, b"\r\nfoo\tbar\r"),
        (20, 10, b"\nfoo\t \tb\r\n"),
        (15, 10, b"\tbar\r\nfoo\t"),
        (40, 100, b"oo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"),
    ]:
        name, value = one(raw, FetchSection(part=(1,), binary=True, partial=(origin, count)))
        assert (name, value) == (b"BINARY[1]<%d>" % origin, expected)


def test_binary_of_whole_single_part_messages() -> None:
    raw = load("01-simple.eml")  # 7bit: nothing to undo
    assert one(raw, FetchSection(binary=True))[1] == raw
    assert one(raw, FetchSection(binary=True, size_only=True))[1] == str(len(raw))
    assert one(raw, FetchSection(part=(1,), binary=True))[1] == text_of(raw)
    encoded = (
        b"Subject: b64\r\nContent-Transfer-Encoding: BASE64\r\n"
        b"Content-Type: application/octet-stream\r\n\r\nAAECAw==\r\n"
    )
    # The decoded message says so: its Content-Transfer-Encoding field becomes "binary", at
    # the end of the header.
    header = (
        b"Subject: b64\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\n"
    )
    assert one(encoded, FetchSection(binary=True))[1] == header + b"\x00\x01\x02\x03"
    assert one(encoded, FetchSection(part=(1,), binary=True)) == (
        b"BINARY[1]",
        Lit8(b"\x00\x01\x02\x03"),
    )
    size = one(encoded, FetchSection(binary=True, size_only=True))[1]
    assert size == str(len(header) + 4)
    # A folded field goes whole; a bare LF empty line stays as stored.
    folded = b"Subject: qp\nContent-Transfer-Encoding:\n quoted-printable\nX-After: 1\n\na=3Db=\n"
    assert one(folded, FetchSection(binary=True))[1] == (
        b"Subject: qp\nX-After: 1\nContent-Transfer-Encoding: binary\r\n\na=b"
    )


def test_binary_of_a_comment_laden_encoding() -> None:
    raw = load("21-content-type-comments.eml")
    # Python's email package does not skip the comment in "Quoted-Printable (qp)": quopri.
    decoded = quopri.decodestring(text_of(raw))
    assert decoded == b"Caf\xe9 = coffee.\r\n"
    assert one(raw, FetchSection(part=(1,), binary=True))[1] == decoded


def test_nul_bytes_literal8_in_binary_0x80_in_body() -> None:
    raw = load("19-nul-bytes.eml")
    assert b"\x00" in text_of(raw)
    _, value = one(raw, FetchSection(part=(1,), binary=True))
    assert isinstance(value, Lit8) and value == text_of(raw)
    out = render(1, make_message(raw), [FetchAttr("RFC822.SIZE"), FetchSection()], raw)
    _, [(_, size), (_, whole)] = read_fetch(out)
    assert isinstance(whole, Lit) and whole == raw.replace(b"\x00", b"\x80")
    assert size == str(len(whole))
    assert body(raw, text="HEADER.FIELDS", fields=("SUBJECT",)) == b"Subject: Nul\x80byte\r\n\r\n"


def test_unknown_transfer_encoding() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=u\r\n\r\n--u\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n"
        b"\r\nbegin 644 f\r\n`\r\nend\r\n--u--\r\n"
    )
    for item in [
        FetchSection(part=(1,), binary=True),
        FetchSection(part=(1,), binary=True, peek=True, partial=(0, 1)),
        FetchSection(part=(1,), binary=True, size_only=True),
    ]:
        with pytest.raises(UnknownCTE) as info:
            render(1, make_message(raw), [FetchAttr("UID"), item], raw)
        assert (info.value.encoding, info.value.part) == ("x-uuencode", (1,))
    # BODY[1] does not care.
    assert body(raw, part=(1,)) == b"begin 644 f\r\n`\r\nend"
    # Inside a section that is not that leaf, the part goes as it is, header and all.
    for item in [FetchSection(binary=True), FetchSection(binary=True, size_only=True)]:
        got = one(raw, item)[1]
        assert got in (raw, str(len(raw))), item


# --- the whole corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_whole_message_items(path: object) -> None:
    raw = load(path.name)  # type: ignore[attr-defined]
    msg = make_message(raw)
    items: list[FetchItem] = [
        FetchAttr("UID"),
        FetchAttr("FLAGS"),
        FetchAttr("INTERNALDATE"),
        FetchAttr("RFC822.SIZE"),
        FetchAttr("ENVELOPE"),
        FetchAttr("BODYSTRUCTURE"),
        FetchAttr("BODY"),
        FetchAttr("PREVIEW"),
        FetchAttr("RFC822"),
        FetchAttr("RFC822.HEADER"),
        FetchAttr("RFC822.TEXT"),
        FetchSection(peek=True),
        FetchSection(text="HEADER", peek=True),
        FetchSection(text="TEXT", peek=True),
        FetchSection(text="HEADER.FIELDS", fields=("FROM", "TO", "SUBJECT"), peek=True),
    ]
    for rev2 in (True, False):
        _, got = read_fetch(render(4, msg, items, raw, rev2=rev2))
        values = dict(got)
        assert list(values) == [
            b"UID",
            b"FLAGS",
            b"INTERNALDATE",
            b"RFC822.SIZE",
            b"ENVELOPE",
            b"BODYSTRUCTURE",
            b"BODY",
            b"PREVIEW",
            b"RFC822",
            b"RFC822.HEADER",
            b"RFC822.TEXT",
            b"BODY[]",
            b"BODY[HEADER]",
            b"BODY[TEXT]",
            b"BODY[HEADER.FIELDS (FROM TO SUBJECT)]",
        ]
        whole = raw.replace(b"\x00", b"\x80")
        assert values[b"RFC822"] == values[b"BODY[]"] == whole
        assert values[b"RFC822.SIZE"] == str(len(whole))
        head, text = values[b"RFC822.HEADER"], values[b"RFC822.TEXT"]
        assert head == values[b"BODY[HEADER]"]
        assert text == values[b"BODY[TEXT]"]
        assert isinstance(head, bytes) and isinstance(text, bytes)
        assert head + text == whole
        preview = values[b"PREVIEW"]
        assert isinstance(preview, bytes)
        assert preview.decode() == msg.preview


# --- properties ---------------------------------------------------------------------------------

_TEXTS = st.sampled_from([None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"])
_FIELDS = st.lists(
    st.sampled_from(["FROM", "SUBJECT", "CONTENT-TYPE", "X-NONE", "DATE", "TO", "RECEIVED"]),
    max_size=3,
).map(tuple)
_PARTIALS = st.none() | st.tuples(
    st.integers(0, 3000) | st.integers(0, 10**9), st.integers(0, 3000) | st.integers(0, 10**9)
)


@st.composite
def _sections(draw: st.DrawFn) -> FetchSection:
    kind = draw(st.sampled_from(["body", "binary", "size"]))
    text = draw(_TEXTS) if kind == "body" else draw(st.sampled_from([None, None, None, "TEXT"]))
    return FetchSection(
        part=tuple(draw(st.lists(st.integers(0, 4), max_size=4))),
        text=text,  # type: ignore[arg-type]
        fields=draw(_FIELDS) if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT") else (),
        partial=None if kind == "size" else draw(_PARTIALS),
        peek=draw(st.booleans()),
        binary=kind != "body",
        size_only=kind == "size",
    )


@dataclass(frozen=True)
class _Loaded:
    raw: bytes
    message: Message


_LOADED = [_Loaded(raw, make_message(raw)) for raw in (p.read_bytes() for p in CORPUS)]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(_LOADED),
    st.lists(_sections(), min_size=1, max_size=4),
    st.booleans(),
    st.integers(1, 2**32),
)
def test_random_sections_render_well_formed(
    loaded: _Loaded, sections: list[FetchSection], rev2: bool, seq: int
) -> None:
    try:
        out = render(seq, loaded.message, sections, loaded.raw, rev2=rev2, include_uid=True)
    except UnknownCTE:
        assert any(s.binary for s in sections)
        return
    got_seq, items = read_fetch(out)
    assert got_seq == seq
    assert items[0] == (b"UID", "7")
    whole = loaded.raw.replace(b"\x00", b"\x80")
    names = [name for name, _ in items[1:]]
    assert len(names) == len(set(names))
    assert len(names) == len({fetch._section_name(s) for s in sections})
    for name, value in items[1:]:
        if name.startswith(b"BINARY.SIZE["):
            assert isinstance(value, Atom) and value.isdigit()
        elif name.startswith(b"BINARY["):
            assert value is None or isinstance(value, Quoted | Lit | Lit8)
        else:
            assert isinstance(value, Quoted | Lit)
            if isinstance(value, Quoted):
                assert value == b""
            else:
                # a slice of the message, or picked header lines
                assert b"HEADER.FIELDS" in name or bytes(value) in whole


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_LOADED), _sections())
def test_partial_is_a_slice_of_the_whole(loaded: _Loaded, section: FetchSection) -> None:
    if section.size_only:
        return
    whole = FetchSection(
        part=section.part,
        text=section.text,
        fields=section.fields,
        binary=section.binary,
        peek=True,
    )
    try:
        _, full = one(loaded.raw, whole)
        _, piece = one(loaded.raw, section)
    except UnknownCTE:
        return
    if full is None:
        assert piece is None
        return
    assert isinstance(full, bytes) and isinstance(piece, bytes)
    if section.partial is None:
        assert piece == full
    else:
        origin, count = section.partial
        assert piece == full[origin : origin + count]


_FIELD_LINES = st.sampled_from(
    [
        b"From: a@example.org\r\n",
        b"from :  b@example.org\r\n",
        b"SUBJECT: hello\r\n",
        b"Subject: folded\r\n\tsecond line\r\n",
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n",
        b"X-From: not the From field\r\n",
        b"Fromage: neither\r\n",
        b"From x: no field name\r\n",
        b"  stray continuation\r\n",
        b"garbage without colon\r\n",
        b"To: c@example.org\n",
        b"Subject:bare-lf\n continued\n",
    ]
)


@given(
    st.lists(_FIELD_LINES, max_size=12),
    st.booleans(),
    st.sets(st.sampled_from([b"FROM", b"SUBJECT", b"DATE", b"X-FROM"]), min_size=1),
)
def test_header_fields_fast_path_agrees_with_the_line_scan(
    lines: list[bytes], cut_last: bool, names: set[bytes]
) -> None:
    """HEADER.FIELDS by regular expression gives what the line-by-line scan gives."""
    raw = b"".join(lines)
    if cut_last and raw.endswith(b"\n"):
        raw = raw.rstrip(b"\r\n")  # a header that runs to the end without a line break
    wanted = frozenset(names)
    fast = fetch._header_fields(raw, 0, len(raw), wanted, True)
    assert fast == fetch._scan_fields(raw, 0, len(raw), wanted, True)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_LOADED),
    st.lists(_sections(), min_size=1, max_size=3),
    st.sampled_from([b"", b"X-Prefix: 1\r\n", b"Received: from a\r\n\tby b\r\nX-Other: 2\r\n"]),
)
def test_header_items_render_the_same_from_the_header_alone(
    loaded: _Loaded, sections: list[FetchSection], prefix: bytes
) -> None:
    """What the store keeps apart (delivery prefix + the blob's header with its empty line)
    answers every item ``header_only`` accepts exactly as the whole message does."""
    items: list[FetchItem] = [*sections, FetchAttr("RFC822.HEADER")]
    if not fetch.header_only(items):
        items = [
            s
            for s in sections
            if not s.part and s.text in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT")
            and not s.binary and not s.size_only
        ] or [FetchAttr("RFC822.HEADER")]  # fmt: skip
    assert fetch.header_only(items)
    whole = prefix + loaded.raw
    header = prefix + loaded.raw[: header_span(loaded.raw)]
    message = make_message(whole)
    assert render(7, message, items, header) == render(7, message, items, whole)


def test_header_only_accepts_top_level_header_items_alone() -> None:
    top = FetchSection(text="HEADER.FIELDS", fields=("FROM",), peek=True)
    assert fetch.header_only([top, FetchSection(text="HEADER"), FetchAttr("RFC822.HEADER")])
    assert fetch.header_only([FetchAttr("UID"), FetchAttr("FLAGS")])  # no octets at all
    for other in (
        FetchSection(),  # BODY[]
        FetchSection(text="TEXT"),
        FetchSection(part=(1,), text="HEADER"),  # a part's header is in the body
        FetchSection(part=(1,), text="MIME"),
        FetchSection(binary=True),
        FetchAttr("RFC822"),
        FetchAttr("RFC822.TEXT"),
    ):
        assert not fetch.header_only([top, other]), other
