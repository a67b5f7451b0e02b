"""Helpers for the message corpus tests: loading files and measuring bodies independently.

Sizes and line counts in expected BODYSTRUCTUREs are never taken from the parser: ``seg``
finds a body by searching the raw octets for the text around it, as a person reading the file
would, and ``size`` counts its octets and LFs.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "messages"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def seg(raw: bytes, start: bytes, end: bytes | None = None, *, after: bytes = b"") -> bytes:
    """The octets between the first ``start`` (searched from the first ``after``) and the next
    ``end``, or the end of ``raw``."""
    begin = raw.index(start, raw.index(after) if after else 0) + len(start)
    return raw[begin:] if end is None else raw[begin : raw.index(end, begin)]


def size(body: bytes) -> bytes:
    """``octets lines`` as BODYSTRUCTURE writes them for a text part."""
    return b"%d %d" % (len(body), body.count(b"\n"))


def lit(text: str | bytes) -> bytes:
    """An IMAP literal (RFC 9051 §4.3) of ``text`` in UTF-8."""
    data = text.encode() if isinstance(text, str) else text
    return b"{%d}\r\n" % len(data) + data


# The encoded part of imaptest's fetch-binary-mime-qp test, and what Dovecot decodes it to
# (65 octets; imaptest checks BINARY.SIZE[1] and BINARY[1] octet for octet).
IMAPTEST_QP = (
    b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\n"
    b"foo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n"
)
IMAPTEST_QP_DECODED = (
    b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"
)
