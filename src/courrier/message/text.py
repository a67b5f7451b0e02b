"""Turning stored octets into text: charsets, transfer encodings, HTML reduced to text.

Everything here is tolerant: junk in, best-effort text out, never an exception.
"""

from __future__ import annotations

import binascii
import html
import re

# Labels whose Python codec is missing or narrower than what senders mean by them
# (the WHATWG Encoding Standard maps them the same way browsers do).
_ALIASES = {
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "default": "utf-8",
}
_CHARSET_CACHE: dict[str, str] = {}
_CHARSET_CACHE_MAX = 256


def _codec(charset: str) -> str:
    """The Python codec for a MIME charset label; unknown labels give ``utf-8``."""
    found = _CHARSET_CACHE.get(charset)
    if found is not None:
        return found
    label = charset.strip().strip("\"'").lower()
    name = _ALIASES.get(label, label)
    try:
        b"".decode(name)  # rejects unknown and non-text codecs (base64, rot13, ...)
    except (LookupError, ValueError):
        name = "utf-8"
    if len(_CHARSET_CACHE) < _CHARSET_CACHE_MAX:
        _CHARSET_CACHE[charset] = name
    return name


def decode_8bit(data: bytes) -> str:
    """Header octets as text: UTF-8 (RFC 6532), else Latin-1, which never fails."""
    if data.isascii():
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_charset(data: bytes, charset: str | None) -> str:
    """Decode ``data`` labelled with ``charset``.

    UTF-8 (the default, and what unknown labels fall back to) is tried strictly first; octets
    that are not UTF-8 are then read as Windows-1252, which is what mislabelled mail usually is.
    Any other label decodes with replacement characters.
    """
    name = "utf-8" if charset is None else _codec(charset)
    if name == "utf-8":
        if data.isascii():
            return data.decode("ascii")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace")
    try:
        return data.decode(name, "replace")
    except (UnicodeError, LookupError, ValueError):  # codecs such as idna refuse "replace"
        return data.decode("latin-1")


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(c for c in range(256) if c not in _B64_ALPHABET)


def _base64_chunk(chunk: bytes) -> bytes:
    clean = chunk.translate(None, _B64_JUNK)
    if len(clean) % 4 == 1:  # a lone trailing sextet carries no whole octet
        clean = clean[:-1]
    return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))


def decode_base64(data: bytes) -> bytes:
    """RFC 2045 §6.8 base64, ignoring characters outside the alphabet and broken padding.

    Padding followed by more data (chunks encoded separately, then concatenated) decodes each
    chunk, where a plain decoder would stop at the first padding.
    """
    if b"=" not in data.rstrip(b"= \t\r\n"):
        try:
            return binascii.a2b_base64(data)
        except binascii.Error:
            pass
    return b"".join(_base64_chunk(chunk) for chunk in data.split(b"="))


# RFC 2045 §6.7 rule 3: spaces and tabs ending an encoded line "MUST be deleted".
_QP_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n|\Z)")
# Once they are: "=" ending a line (or the data) is a soft line break (rule 5), removed with
# its line break; "=XY" is an octet (rule 1; lower-case hex digits accepted, as robust
# decoders do). One pass, so that what one rule produces is never read by another.
_QP_TOKEN = re.compile(rb"=(?:\r?\n|\Z)|=([0-9A-Fa-f]{2})")
# An "=" that starts neither: binascii.a2b_qp reads some of those its own way ("==" is "=").
_QP_ODD_EQUALS = re.compile(rb"=(?![0-9A-Fa-f]{2}|\r?\n|\Z)")
_HEX_OCTETS = {b"%02x" % n: bytes((n,)) for n in range(256)}


def _qp_token(match: re.Match[bytes]) -> bytes:
    hex_digits = match[1]
    return b"" if hex_digits is None else _HEX_OCTETS[hex_digits.lower()]


def decode_quoted_printable(data: bytes) -> bytes:
    """RFC 2045 §6.7 quoted-printable.

    Spaces and tabs ending an encoded line are deleted (rule 3), so ``foo =`` followed by
    a space and a tab at the end of a line is a soft line break; ``=`` at the end of a line
    (or of the data) joins that line to the next (rule 5); ``=XY`` is the octet XY. Line
    breaks are kept as written (CRLF or bare LF). An ``=`` that starts none of these stays
    as it is, as does ``_`` (a space only in encoded words, RFC 2047 §4.2).
    """
    data = _QP_TRAILING_SPACE.sub(b"", data)
    if _QP_ODD_EQUALS.search(data) is None:
        return binascii.a2b_qp(data)  # the same reading, in C, of well-formed data
    return _QP_TOKEN.sub(_qp_token, data)


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); identity encodings and unknown ones
    return the octets unchanged. ``encoding`` is lower case."""
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        return decode_quoted_printable(data)
    return data


# What to drop whole: comments, scripts, styles, the head. An unclosed one ends at <body> or
# runs to the end, so each match consumes what it scans and the pass stays linear.
_HTML_DROP = re.compile(
    r"<!--.*?(?:-->|\Z)|<(script|style|head|title)\b.*?(?:</\1\s*>|(?=<body\b)|\Z)",
    re.S | re.I,
)
_HTML_BREAK = re.compile(
    r"<(?:br|p|div|tr|li|ul|ol|table|h[1-6]|blockquote|pre|hr|dt|dd)\b[^>]*>?|</(?:p|div|tr|li|h[1-6]|blockquote|pre|table|dt|dd)\s*>",
    re.I,
)
_HTML_TAG = re.compile(r"</?[a-zA-Z!?][^>]*>?")
_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


def html_to_text(markup: str) -> str:
    """Reduce HTML to its readable text: scripts, styles and comments dropped, block elements
    turned into line breaks, other tags removed, entities decoded."""
    text = _HTML_DROP.sub("", markup)
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()
