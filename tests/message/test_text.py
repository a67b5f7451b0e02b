"""Decoding: transfer encodings, charsets, HTML to text."""

from __future__ import annotations

import base64

import pytest

from courrier.message.text import (
    decode_base64,
    decode_charset,
    decode_transfer,
    html_to_text,
)


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
