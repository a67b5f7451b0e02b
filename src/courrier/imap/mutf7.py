"""Modified UTF-7, the IMAP4rev1 mailbox name encoding (RFC 3501 §5.1.3).

This module owns the conversion between mailbox names as text and their 7-bit wire form for
clients that have not enabled UTF-8 (IMAP4rev2 and UTF8=ACCEPT clients send UTF-8 instead,
RFC 9051 §5.1 and RFC 6855 §3). Printable US-ASCII stands for itself except ``&``, written
``&-``; every other character is the base64 of its UTF-16BE form between ``&`` and ``-``, with
``,`` in place of ``/`` and no ``=`` padding.

:func:`decode` accepts only the canonical encoding :func:`encode` produces, so that one name has
exactly one spelling on the wire: RFC 3501 §5.1.3 forbids encoding printable ASCII and requires
consecutive non-ASCII characters to share one shift.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["decode", "encode"]

# RFC 3501 §5.1.3: modified BASE64 (RFC 2152 with "," for "/"), never padded.
_MODIFIED_BASE64 = re.compile(r"[A-Za-z0-9+,]+")


def _printable(char: str) -> bool:
    return " " <= char <= "~"


def encode(name: str) -> str:
    """The modified UTF-7 form of ``name``.

    Raises ValueError (UnicodeEncodeError) for a lone surrogate, which UTF-16 cannot carry.
    """
    out: list[str] = []
    run: list[str] = []
    for char in name:
        if _printable(char):
            if run:
                out.append(_shift("".join(run)))
                run.clear()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    if run:
        out.append(_shift("".join(run)))
    return "".join(out)


def _shift(text: str) -> str:
    octets = text.encode("utf-16-be")
    encoded = base64.b64encode(octets).rstrip(b"=").replace(b"/", b",")
    return "&" + encoded.decode("ascii") + "-"


def decode(name: str) -> str:
    """The text a modified UTF-7 mailbox name stands for.

    Raises ValueError when ``name`` is not the canonical encoding of some text: a character
    outside printable US-ASCII, an ``&`` without its ``-``, invalid modified base64 (including
    non-zero padding bits), an odd number of octets or unpaired surrogates in the UTF-16, a
    shift encoding printable ASCII, or two shifts that should have been one.
    """
    out: list[str] = []
    length = len(name)
    i = 0
    previous_shift_end = -1
    while i < length:
        char = name[i]
        if not _printable(char):
            raise ValueError(f"character {char!r} must be base64-encoded in modified UTF-7")
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError("unterminated '&' shift in modified UTF-7")
        if end == i + 1:
            out.append("&")
        else:
            if i == previous_shift_end:
                raise ValueError("adjacent modified UTF-7 shifts must be merged into one")
            out.append(_unshift(name[i + 1 : end]))
            previous_shift_end = end + 1
        i = end + 1
    return "".join(out)


def _unshift(encoded: str) -> str:
    if not _MODIFIED_BASE64.fullmatch(encoded) or len(encoded) % 4 == 1:
        raise ValueError(f"invalid modified base64 {encoded!r}")
    standard = encoded.replace(",", "/")
    try:
        octets = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid modified base64 {encoded!r}") from exc
    # The bits after the last whole octet must be zero, or two spellings would decode the same.
    if base64.b64encode(octets).rstrip(b"=").decode("ascii") != standard:
        raise ValueError(f"non-zero padding bits in modified base64 {encoded!r}")
    if len(octets) % 2:
        raise ValueError("odd number of octets in modified UTF-7 (UTF-16 needs pairs)")
    text = octets.decode("utf-16-be")  # strict: an unpaired surrogate raises
    if any(_printable(char) for char in text):
        raise ValueError("printable ASCII must not be base64-encoded in modified UTF-7")
    return text
