"""IMAP string forms (RFC 9051 §4.3) and their round trip through a minimal IMAP reader."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from courrier.message.imapform import is_plain, nstring, plist, string


def read_string(data: bytes) -> tuple[bytes | None, bytes]:
    """Read one nstring from the start of ``data`` (RFC 9051 §9 grammar): (value, rest)."""
    if data.startswith(b"NIL"):
        return None, data[3:]
    if data.startswith(b'"'):
        out = bytearray()
        i = 1
        while data[i] != 0x22:
            if data[i] == 0x5C:
                assert data[i + 1] in b'\\"', "only quoted-specials may be escaped"
                i += 1
            assert data[i] not in b"\r\n\x00" and data[i] < 0x80
            out.append(data[i])
            i += 1
        return bytes(out), data[i + 1 :]
    match = re.match(rb"\{(\d+)\}\r\n", data)
    assert match is not None, data
    start = match.end()
    end = start + int(match.group(1))
    assert b"\x00" not in data[start:end]  # CHAR8 excludes NUL
    return data[start:end], data[end:]


def test_examples() -> None:
    assert string(b"plain text") == b'"plain text"'
    assert string(b"") == b'""'
    assert string(b'say "hi" \\ bye') == b'"say \\"hi\\" \\\\ bye"'
    assert string(b"tab\tok") == b'"tab\tok"'  # TEXT-CHAR allows HTAB
    assert string(b"line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert string("Grüße".encode()) == b"{7}\r\n" + "Grüße".encode()
    assert string(b"nul\x00") == b"{6}\r\nnul\xef\xbf\xbd"  # NUL is no CHAR8: U+FFFD
    assert nstring(None) == b"NIL"
    assert nstring(b"NIL") == b'"NIL"'
    assert plist([b'"a"', b"NIL"]) == b'("a" NIL)'
    assert plist([b"(x)", b"(y)"], sep=b"") == b"((x)(y))"
    assert plist([]) == b"()"
    assert is_plain(b"abc") and not is_plain(b'a"b') and not is_plain(b"a\\b")


@given(st.binary())
def test_round_trip(value: bytes) -> None:
    encoded = string(value)
    decoded, rest = read_string(encoded + b" tail")
    assert rest == b" tail"
    assert decoded == value.replace(b"\x00", "\ufffd".encode())


@given(st.one_of(st.none(), st.binary()))
def test_nstring_round_trip(value: bytes | None) -> None:
    decoded, rest = read_string(nstring(value))
    assert rest == b""
    assert decoded == (None if value is None else value.replace(b"\x00", "\ufffd".encode()))
