"""Header blocks: splitting, fields, encoded-words, MIME parameters."""

from __future__ import annotations

import pytest

from courrier.message import (
    Param,
    decode_words,
    param_text,
    parse_content_type,
    parse_disposition,
    parse_headers,
    split_header,
)
from courrier.message.headers import param_bytes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody", (12, 14)),
        (b"A: 1\nB: 2\n\nbody", (10, 11)),
        (b"A: 1\r\nB: 2\n\r\nbody", (11, 13)),  # mixed line ends
        (b"A: 1\r\nB: 2\r\n", (12, 12)),  # no empty line: all header
        (b"A: 1", (4, 4)),
        (b"\r\nbody", (0, 2)),  # empty first line: no header at all
        (b"\nbody", (0, 1)),
        (b"just text\r\nA: 1\r\n\r\n", (0, 0)),  # not a field: the body starts at once
        (b" folded: x\r\n\r\n", (0, 0)),
        (b"Bad Name: x\r\n\r\n", (0, 0)),
        (b"Subject : obsolete space\r\n\r\nx", (26, 28)),  # RFC 5322 §4.5
        (b"", (0, 0)),
        (b"\r", (0, 0)),
    ],
)
def test_split_header(raw: bytes, expected: tuple[int, int]) -> None:
    assert split_header(raw, 0, len(raw)) == expected


def test_split_header_respects_bounds() -> None:
    raw = b"xxA: 1\r\n\r\nbodyyy"
    assert split_header(raw, 2, 12) == (8, 10)
    assert split_header(raw, 2, 9) == (9, 9)  # the empty line lies past the end


def test_fields_unfold_and_keep_order() -> None:
    block = (
        b"Subject: a\r\n\tfolded\r\n  twice\r\n"
        b"X-Empty:\r\n"
        b"not a field\r\n"
        b" continuation of nothing\r\n"
        b"Subject : second  \r\n"
        b"Bad\xffName: skipped\r\n"
        b"To: x@example.org\n"
    )
    headers = parse_headers(block, 0, len(block))
    assert headers.fields == [
        ("Subject", b"a\tfolded  twice"),
        ("X-Empty", b""),
        ("Subject", b"second"),
        ("To", b"x@example.org"),
    ]
    assert headers.get("SUBJECT") == b"a\tfolded  twice"  # first one wins
    assert headers.get_all("subject") == [b"a\tfolded  twice", b"second"]
    assert headers.get("x-empty") == b"" and headers.get("cc") is None
    assert list(headers) == headers.fields


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain ascii", "plain ascii"),
        (b"=?UTF-8?B?SsO2cmc=?=", "Jörg"),
        (b"=?iso-8859-1?q?caf=E9_au_lait?=", "café au lait"),
        (b"=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab"),  # RFC 2047 §6.2: space between words dropped
        (b"=?UTF-8?Q?a?=\t =?ISO-8859-1?Q?=E9?=", "aé"),  # also across charsets
        (b"=?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?=", "café"),  # one character in two words
        (b"x =?UTF-8?Q?a?= y", "x a y"),
        (b"=?UTF-8?Q?a?=, =?UTF-8?Q?b?=", "a, b"),
        (b"=?utf-8*fr?Q?oui?=", "oui"),  # RFC 2231 §5 language
        (b"=?x-unknown-charset?Q?caf=E9?=", "café"),
        (b"=?rot13?Q?abc?=", "abc"),  # not a text encoding: read as UTF-8
        (b"=?UTF-8?B?not*base64!?=", "=?UTF-8?B?not*base64!?="),  # "*", "!" are not B text
        (b"=?UTF-8?B?SsO2cm?=", "Jör"),  # padding missing
        (b"=?UTF-8?B?SsO2c?=", "J\xf6"),  # a sextet short: the octets that are whole
        (b"=?UTF-8?X?abc?=", "=?UTF-8?X?abc?="),  # unknown encoding: left alone
        (b"=?UTF-8?Q?unterminated", "=?UTF-8?Q?unterminated"),
        ("Grüße".encode(), "Grüße"),  # RFC 6532 raw UTF-8
        (b"R\xe9sum\xe9", "Résumé"),  # not UTF-8: Latin-1
        (b"", ""),
    ],
)
def test_decode_words(raw: bytes, text: str) -> None:
    assert decode_words(raw) == text


def test_content_type_basic_and_case() -> None:
    parsed = parse_content_type(b'Text/HTML; Charset="UTF-8"; format=flowed')
    assert parsed is not None
    assert (parsed.type, parsed.subtype, parsed.maintype, parsed.minor) == (
        b"Text",
        b"HTML",
        "text",
        "html",
    )
    assert parsed.params == (Param(b"Charset", b"UTF-8"), Param(b"format", b"flowed"))
    assert param_text(parsed.params, "charset") == "UTF-8"


def test_content_type_comments_quotes_and_junk() -> None:
    parsed = parse_content_type(
        b'(c) multipart / mixed (sub) ; boundary = "a \\"q\\" (not a comment) ;b"'
        b" (c (nested)) ; junk ; name=unquoted=value.txt;x=1"
    )
    assert parsed is not None
    assert (parsed.maintype, parsed.minor) == ("multipart", "mixed")
    assert parsed.params == (
        Param(b"boundary", b'a "q" (not a comment) ;b'),
        Param(b"name", b"unquoted=value.txt"),
        Param(b"x", b"1"),
    )


@pytest.mark.parametrize("value", [b"", b"text", b"/plain", b"text/", b"; charset=x", b"(c)"])
def test_content_type_without_type_and_subtype_is_invalid(value: bytes) -> None:
    assert parse_content_type(value) is None  # RFC 2045 §5.2: then assume the default


def test_rfc2231_continuations_and_encoding() -> None:
    parsed = parse_content_type(
        b'application/x-stuff; title*2="isn\'t it!"; title*1*=%2A%2A%2Afun%2A%2A%2A%20;'
        b" title*0*=us-ascii'en'This%20is%20even%20more%20; other=1"
    )
    assert parsed is not None
    # RFC 2231 §4.1's example: merged in index order, the plain segment %-escaped.
    assert parsed.params == (
        Param(
            b"title*", b"us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn't it!"
        ),
        Param(b"other", b"1"),
    )
    assert param_text(parsed.params, "title") == "This is even more ***fun*** isn't it!"
    # A percent sign in a plain segment stays itself once merged into an encoded value.
    mixed = parse_content_type(b'text/plain; n*0="50%"; n*1*=%20off')
    assert mixed is not None
    assert mixed.params == (Param(b"n*", b"''50%25%20off"),)
    assert param_text(mixed.params, "n") == "50% off"


def test_rfc2231_gaps_keep_the_pieces() -> None:
    parsed = parse_content_type(b"text/plain; name*0=a; name*2=c")
    assert parsed is not None
    assert parsed.params == (Param(b"name*0", b"a"), Param(b"name*2", b"c"))
    assert param_text(parsed.params, "name") is None


def test_rfc2231_charsets() -> None:
    parsed = parse_content_type(b"text/plain; a*=iso-8859-1''caf%E9; b*=''plain; c*=no-quotes")
    assert parsed is not None
    assert param_text(parsed.params, "a") == "café"
    assert param_text(parsed.params, "b") == "plain"
    assert param_text(parsed.params, "c") == "no-quotes"
    assert param_bytes(parsed.params, "a") == b"caf\xe9"


def test_encoded_word_filenames_are_decoded_for_people() -> None:
    disposition = parse_disposition(b'attachment; filename="=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?="')
    assert disposition is not None
    assert disposition.type == b"attachment"
    assert param_text(disposition.params, "filename") == "résumé.pdf"
    # The encoded form wins over the plain one when both are given (RFC 2231 readers do).
    both = parse_disposition(b"inline; filename=old.txt; filename*=utf-8''new.txt")
    assert both is not None
    assert param_text(both.params, "FILENAME") == "new.txt"


def test_disposition_without_type() -> None:
    assert parse_disposition(b"") is None
    assert parse_disposition(b"; filename=x") is None
