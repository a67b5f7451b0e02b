"""IMAP string forms (RFC 9051 §4.3, §9): NIL, quoted strings, literals and lists.

Values are octets in and octets out, ready to be sent inside a FETCH response.
"""

from __future__ import annotations

from collections.abc import Iterable

# QUOTED-CHAR is any 7-bit CHAR but CR and LF (TEXT-CHAR); NUL is not a CHAR at all.
_QUOTABLE = bytes(c for c in range(1, 128) if c not in (0x0A, 0x0D))
_PLAIN = bytes(c for c in _QUOTABLE if c not in b'"\\')
# CHAR8 (literal content) excludes NUL too (RFC 9051 §9); U+FFFD stands in for it.
_REPLACEMENT = "\ufffd".encode()


def string(value: bytes) -> bytes:
    """``value`` as a quoted string when every octet allows it, else as a literal.

    Quoted strings escape ``\\`` and ``"``; values with 8-bit octets, CR or LF become literals
    ``{N}\\r\\n<octets>``. NUL, which neither form can carry, becomes U+FFFD in a literal.
    """
    if not value.translate(None, _QUOTABLE):
        if b"\\" in value or b'"' in value:
            value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + value + b'"'
    if b"\x00" in value:
        value = value.replace(b"\x00", _REPLACEMENT)
    return b"{%d}\r\n" % len(value) + value


def is_plain(value: bytes) -> bool:
    """Whether ``b'"' + value + b'"'`` is already a valid quoted string (no escapes needed)."""
    return not value.translate(None, _PLAIN)


def nstring(value: bytes | None) -> bytes:
    """``NIL`` for None, else ``string(value)``."""
    return b"NIL" if value is None else string(value)


def plist(items: Iterable[bytes], *, sep: bytes = b" ") -> bytes:
    """A parenthesised list of already-encoded items, separated by ``sep``."""
    return b"(" + sep.join(items) + b")"
