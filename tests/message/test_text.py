"""Decoding: transfer encodings, charsets, HTML to text."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.message.text import (
    decode_base64,
    decode_charset,
    decode_quoted_printable,
    decode_transfer,
    html_to_text,
)
from tests.message.corpus import IMAPTEST_QP, IMAPTEST_QP_DECODED


@pytest.mark.parametrize(
    ("data", "octets"),
    [
        (b"aGVsbG8=", b"hello"),
        (b"aGVs\r\nbG8=\r\n", b"hello"),
        (b"aGVsbG8", b"hello"),  # padding missing
        (b"aGVsbG8===", b"hello"),  # too much
        (b"aGV sbG8*!=", b"hello"),  # junk characters ignored
        (b"aGVsbG8=aGVsbG8=", b"hellohello"),  # chunks concatenated after padding
        (b"aGVsbG8x", b"hello1"),
        (b"aGVsbG8xM", b"hello1"),  # a lone trailing sextet carries nothing
        (b"", b""),
        (b"====", b""),
    ],
)
def test_decode_base64(data: bytes, octets: bytes) -> None:
    assert decode_base64(data) == octets


def test_decode_transfer() -> None:
    assert decode_transfer(b"caf=C3=A9 =\r\nsoft=3D", "quoted-printable") == b"caf\xc3\xa9 soft="
    assert decode_transfer(b"broken =ZZ and =", "quoted-printable") == b"broken =ZZ and "
    assert decode_transfer(base64.b64encode(b"\x00\xff"), "base64") == b"\x00\xff"
    for identity in ("7bit", "8bit", "binary", "x-uuencode", ""):
        assert decode_transfer(b"as is=41", identity) == b"as is=41"


@pytest.mark.parametrize(
    ("data", "octets"),
    [
        (IMAPTEST_QP, IMAPTEST_QP_DECODED),
        # RFC 2045 §6.7 rule 3: trailing whitespace is deleted, whatever the line break.
        (b"a  \r\nb\t\nc \t", b"a\r\nb\nc"),
        # Whitespace inside a line, and encoded whitespace at its end, stay.
        (b"a \t b=20\r\n", b"a \t b \r\n"),
        (b"a=09\r\n", b"a\t\r\n"),
        # Rule 5: "=" ending a line (trailing whitespace after it deleted first) joins lines.
        (b"a=\r\nb", b"ab"),
        (b"a=\nb", b"ab"),
        (b"a= \t\r\nb", b"ab"),
        (b"a = \r\nb", b"a b"),
        (b"end=", b"end"),
        # Rule 1: "=XY", lower-case digits accepted; anything else after "=" stays as it is.
        (b"=3D=3d=C3=A9", b"==\xc3\xa9"),
        (b"=ZZ =4 =", b"=ZZ =4 "),
        # One pass: a soft line break never makes "=4" and "1" into "=41".
        (b"=4=\r\n1", b"=41"),
        (b"=3D41", b"=41"),
        # "_" is a space only in encoded words (RFC 2047 §4.2).
        (b"foo_bar", b"foo_bar"),
        (b"", b""),
    ],
)
def test_decode_quoted_printable(data: bytes, octets: bytes) -> None:
    assert decode_quoted_printable(data) == octets
    assert decode_transfer(data, "quoted-printable") == octets


_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def _reference_qp(data: bytes) -> bytes:
    """RFC 2045 §6.7 read line by line, the plain way, to check the one-pass decoder."""
    out: list[bytes] = []
    lines = data.split(b"\n")
    for number, line in enumerate(lines):
        last = number == len(lines) - 1
        eol = b"" if last else b"\r\n" if line.endswith(b"\r") else b"\n"
        if eol == b"\r\n":
            line = line[:-1]
        line = line.rstrip(b" \t")  # rule 3
        if line.endswith(b"="):  # rule 5
            line, eol = line[:-1], b""
        out.append(_HEX.sub(lambda m: bytes((int(m[1], 16),)), line) + eol)
    return b"".join(out)


# No bare CR: it is not valid in quoted-printable (RFC 2045 §6.7 rule 4), and where a space
# separates it from the LF the two readings of "=\r \n" differ without either being wrong.
_QP_PIECES = [b"=", b"=", b"\r\n", b"\n", b" ", b"\t", b"A", b"f", b"3", b"D", b"g"]


@settings(max_examples=2000)
@given(st.lists(st.sampled_from(_QP_PIECES), max_size=16).map(b"".join))
def test_decode_quoted_printable_as_read_line_by_line(data: bytes) -> None:
    assert decode_quoted_printable(data) == _reference_qp(data)


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        ("café".encode(), "UTF-8", "café"),
        ("café".encode(), None, "café"),
        (b"caf\xe9", "us-ascii", "café"),  # mislabelled: not UTF-8, so Windows-1252
        (b"\x93quoted\x94", "iso-8859-1", "“quoted”"),  # ISO-8859-1 read as Windows-1252
        ("日本".encode("iso-2022-jp"), "ISO-2022-JP", "日本"),
        ("中文".encode("gb18030"), "gb2312", "中文"),
        (b"caf\xe9", "x-no-such-charset", "café"),
        (b"caf\xe9", "base64", "café"),  # a codec, but not a text encoding
        (b"caf\xe9", "idna", "café"),  # refuses errors="replace": Latin-1
        (b"\xff\xfeh\x00i\x00!", "utf-16", "hi\ufffd"),  # odd length: a replacement character
        (b'"caf\xe9"', '"latin1"', '"café"'),
    ],
)
def test_decode_charset(data: bytes, charset: str | None, text: str) -> None:
    assert decode_charset(data, charset) == text


def test_html_to_text() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>Title</title><style>p{}</style></head>"
        "<body><script type='x'>var a = '<p>';</script><h1>Hi&nbsp;there</h1>"
        "<p>One &amp; <b>two</b> &lt;3 &#8212; &eacute;</p><!-- <p>hidden</p> -->"
        "<ul><li>a</li><li>b</li></ul>a < b but <unclosed tag"
    )
    assert html_to_text(html) == "Hi there\nOne & two <3 — é\na\nb\na < b but"
    assert html_to_text("<p>unclosed comment<!-- rest") == "unclosed comment"
    assert html_to_text("<script>never closed") == ""
    assert html_to_text("<head><title>unclosed<body><p>kept</p>") == "kept"
    assert html_to_text("") == ""
