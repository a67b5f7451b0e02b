"""The examples of RFC 9051 (and RFC 3501) reproduced: ENVELOPE, BODY, sections."""

from __future__ import annotations

from courrier.message import parse, parse_mime

# RFC 9051 §8 shows this header as "BODY[HEADER] {342}" for message 12.
RFC_HEADER = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev2 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
)


def _body(octets: int, lines: int) -> bytes:
    """``lines`` CRLF-ended lines making ``octets`` octets in all."""
    width, extra = divmod(octets - 2 * lines, lines)
    rows = [b"x" * (width + (1 if i < extra else 0)) + b"\r\n" for i in range(lines)]
    body = b"".join(rows)
    assert (len(body), body.count(b"\n")) == (octets, lines)
    return body


def test_rfc9051_fetch_example_envelope_and_body() -> None:
    assert len(RFC_HEADER) == 342
    raw = RFC_HEADER + _body(3028, 92)
    parsed = parse(raw)
    # RFC 9051 §6.4.5/§8 example, except that the RFC's text puts a space between the two cc
    # addresses, which its own grammar (§9, env-cc = "(" 1*address ")") does not allow, and
    # that §8 truncates the Message-ID to "...washington.ed>" (a typo; §6.4.5 has it whole).
    assert parsed.envelope == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )
    assert parsed.body == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'
    assert parsed.bodystructure == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)'
    )
    assert parse_mime(raw).section([], "HEADER") == (0, 342)


def test_rfc9051_multipart_body_example() -> None:
    """RFC 9051 §7.5.2 BODYSTRUCTURE example, rebuilt as a message with the same parts."""
    part1 = _body(1152, 23)
    part2 = _body(4554, 73)
    raw = (
        b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: MULTIPART/MIXED; BOUNDARY=xyz\r\n\r\n"
        b"--xyz\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n" + part1 + b"\r\n"
        b"--xyz\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n"
        b"Content-ID: <960723163407.20117h@cac.washington.edu>\r\n"
        b"Content-Description: Compiler diff\r\n"
        b"Content-Transfer-Encoding: BASE64\r\n\r\n" + part2 + b"\r\n--xyz--\r\n"
    )
    parsed = parse(raw)
    assert parsed.body == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff")'
        b' "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73)'
        b' "MIXED")'
    )
    assert parsed.bodystructure == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff")'
        b' "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73'
        b' NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "xyz") NIL NIL NIL)'
    )


def _leaf(content_type: bytes, text: bytes) -> bytes:
    return b"Content-Type: " + content_type + b"\r\n\r\n" + text


def _multipart(subtype: bytes, boundary: bytes, *parts: bytes) -> bytes:
    out = b"Content-Type: multipart/" + subtype + b'; boundary="' + boundary + b'"\r\n\r\n'
    for part in parts:
        out += b"--" + boundary + b"\r\n" + part + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def _message(subject: bytes, content: bytes) -> bytes:
    return b"Content-Type: message/rfc822\r\n\r\nSubject: " + subject + b"\r\n" + content


# The example message of RFC 9051 §6.4.5 (FETCH, BODY[<section>]), part for part.
SECTION_EXAMPLE = b"Subject: top\r\nMIME-Version: 1.0\r\n" + _multipart(
    b"mixed",
    b"b0",
    _leaf(b"text/plain", b"part 1"),
    _leaf(b"application/octet-stream", b"part 2"),
    _message(
        b"three",
        _multipart(
            b"mixed",
            b"b3",
            _leaf(b"text/plain", b"part 3.1"),
            _leaf(b"application/octet-stream", b"part 3.2"),
        ),
    ),
    _multipart(
        b"mixed",
        b"b4",
        _leaf(b"image/gif", b"part 4.1"),
        _message(
            b"four-two",
            _multipart(
                b"mixed",
                b"b42",
                _leaf(b"text/plain", b"part 4.2.1"),
                _multipart(
                    b"alternative",
                    b"b422",
                    _leaf(b"text/plain", b"part 4.2.2.1"),
                    _leaf(b"text/richtext", b"part 4.2.2.2"),
                ),
            ),
        ),
    ),
)


def _fetch(section: str) -> bytes | None:
    root = parse_mime(SECTION_EXAMPLE)
    *numbers, last = section.split(".") if section else [""]
    if last.isdigit():
        numbers, last = [*numbers, last], ""
    found = root.section([int(n) for n in numbers], last)
    return None if found is None else SECTION_EXAMPLE[found[0] : found[1]]


def test_rfc9051_section_numbering_example() -> None:
    for leaf in ("1", "2", "3.1", "3.2", "4.1", "4.2.1", "4.2.2.1", "4.2.2.2"):
        assert _fetch(leaf) == b"part " + leaf.encode()
    assert _fetch("4.1.MIME") == b"Content-Type: image/gif\r\n\r\n"
    assert _fetch("3.HEADER") == (
        b'Subject: three\r\nContent-Type: multipart/mixed; boundary="b3"\r\n\r\n'
    )
    assert _fetch("4.2.HEADER") == (
        b'Subject: four-two\r\nContent-Type: multipart/mixed; boundary="b42"\r\n\r\n'
    )
    assert (_fetch("3.TEXT") or b"").startswith(b"--b3\r\nContent-Type: text/plain\r\n\r\npart 3.1")
    assert (_fetch("4.2.TEXT") or b"").endswith(b"--b42--\r\n")
    assert (_fetch("3") or b"").startswith(b"Subject: three\r\n")  # the whole attached message
    assert (_fetch("4") or b"").startswith(b"--b4\r\n")
    assert _fetch("HEADER") == b"Subject: top\r\nMIME-Version: 1.0\r\n" + (
        b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    )
    assert _fetch("") == SECTION_EXAMPLE
    assert (_fetch("TEXT") or b"").startswith(b"--b0\r\n")
    # Sections that do not exist.
    for missing in ("5", "0", "1.1", "2.HEADER", "4.3", "4.1.1", "MIME", "4.2.2.3", "3.3"):
        assert _fetch(missing) is None, missing


def test_single_part_message_sections() -> None:
    raw = b"Subject: x\r\n\r\nhello"
    root = parse_mime(raw)
    # "Non-multipart messages ... only have a part 1" (RFC 9051 §6.4.5): the body.
    assert root.section([1]) == (14, 19)
    assert root.section([1], "MIME") == (0, 14)
    assert root.section([2]) is None and root.section([1, 1]) is None
    # A message whose own type is message/rfc822: part 1 is the attached message, and its
    # parts continue from there.
    raw = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner body"
    root = parse_mime(raw)
    assert root.section([1]) == (32, len(raw))
    assert root.section([1], "HEADER") == (32, 32 + 15)
    assert root.section([1, 1]) == (47, len(raw))
    assert root.section([1, 1, 1]) is None
