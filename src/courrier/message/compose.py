"""Composing simple MIME messages (RFC 5322, RFC 2045-2046): a header, then parts.

What this module owns: the building blocks of the messages courrier writes itself (the DMARC
and TLS reports it sends): a text part, a base64 attachment with its file name, a multipart
body around them, and header fields folded at whitespace to stay within 78 characters where
they can (RFC 5322 §2.1.1, §2.2.3). Everything is ASCII with CRLF line ends; values are taken
as given (the callers write domain names, addresses and fixed text).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence

__all__ = ["attachment", "fold", "multipart", "text_part"]

#: RFC 5322 §2.1.1: lines SHOULD be at most 78 characters.
LINE = 78


def fold(name: str, value: str) -> str:
    """``Name: value`` ending in CRLF, folded before a space when a line would grow past 78
    characters (RFC 5322 §2.2.3); a word longer than a line stays whole."""
    lines: list[str] = []
    line = f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > LINE and line not in ("", f"{name}:"):
            lines.append(line)
            line = ""
        line += f" {word}"
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def text_part(text: str) -> bytes:
    """A text/plain part (header and body); ``text`` is ASCII, lines joined with CRLF."""
    body = "\r\n".join(text.splitlines())
    return (
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n" + body + "\r\n"
    ).encode("ascii")


def attachment(content_type: str, filename: str, data: bytes) -> bytes:
    """A base64 attachment part named ``filename``, lines of 76 characters (RFC 2045 §6.8)."""
    encoded = base64.b64encode(data).decode("ascii")
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return (
        fold("Content-Type", f'{content_type}; name="{filename}"')
        + fold("Content-Disposition", f'attachment; filename="{filename}"')
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + "\r\n".join(lines)
        + "\r\n"
    ).encode("ascii")


def multipart(
    headers: Sequence[tuple[str, str]],
    parts: Sequence[bytes],
    *,
    subtype: str = "mixed",
    params: str = "",
) -> bytes:
    """A message of ``headers`` (folded), MIME-Version and a ``multipart/<subtype>`` body of
    ``parts`` (RFC 2046 §5.1); ``params`` go before the boundary (``report-type=...``)."""
    boundary = f"=_courrier_{secrets.token_hex(12)}"
    head = "".join(fold(name, value) for name, value in headers)
    content_type = f'multipart/{subtype}; {params + "; " if params else ""}boundary="{boundary}"'
    head += "MIME-Version: 1.0\r\n" + fold("Content-Type", content_type) + "\r\n"
    body = b"".join(f"--{boundary}\r\n".encode("ascii") + part for part in parts)
    return head.encode("ascii") + body + f"--{boundary}--\r\n".encode("ascii")
