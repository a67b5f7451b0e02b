"""The MIME tree of a message (RFC 2045, RFC 2046), as offsets into the raw octets.

Every part knows where its header and body are in the message as stored, so IMAP section
fetches (RFC 9051 §6.4.5) are slices, and sizes and line counts are those of the stored
octets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from courrier.message.headers import (
    ContentType,
    Headers,
    param_bytes,
    parse_content_type,
    parse_headers,
    split_header,
)

MAX_DEPTH = 100
"""Multiparts and encapsulated messages nested deeper than this are leaves."""
MAX_PARTS = 10_000
"""Parts past this many in one message are left out of the tree."""

# RFC 2045 §5.2: no (or an invalid) Content-Type means text/plain; charset=us-ascii (the
# charset is added where BODYSTRUCTURE is written, as for any text part without one).
TEXT_PLAIN = ContentType(b"text", b"plain", "text", "plain", ())
# RFC 2046 §5.1.5: inside multipart/digest the default is message/rfc822.
MESSAGE_RFC822 = ContentType(b"message", b"rfc822", "message", "rfc822", ())

_ENCAPSULATING = ("rfc822", "global")  # message/global: RFC 6532 §3.7


@dataclass(slots=True, eq=False)
class MimePart:
    """One part: offsets into the raw message, its header fields and its content type.

    ``raw[header_start:body_start]`` is the header with its empty line (what BODY[HEADER] and
    BODY[n.MIME] return), ``raw[body_start:body_end]`` the body. ``children`` holds the parts
    of a multipart, or for message/rfc822 and message/global the encapsulated message's top
    part; it is empty for every other part. A multipart that cannot be split (no boundary, no
    delimiter line) or lies too deep is reported as text/plain.
    """

    header_start: int
    header_end: int
    body_start: int
    body_end: int
    headers: Headers
    content_type: ContentType
    children: list[MimePart]

    @property
    def is_multipart(self) -> bool:
        return self.content_type.maintype == "multipart"

    @property
    def is_message(self) -> bool:
        """message/rfc822 or message/global: ``children[0]`` is the encapsulated message."""
        return self.content_type.maintype == "message" and self.content_type.minor in (
            _ENCAPSULATING
        )

    def find(self, section: Sequence[int]) -> MimePart | None:
        """The part at an IMAP section path (RFC 9051 §6.4.5) below this message, or None.

        ``[]`` is the message itself; in a message that is not multipart, part 1 is the message
        itself (its body); after a message/rfc822 part the numbers continue inside the
        encapsulated message.
        """
        part = self
        message_level = True  # ``part`` is a message: its single part 1 is itself
        for number in section:
            if not message_level:
                if part.is_message:
                    part = part.children[0]
                    message_level = True
                elif not part.is_multipart:
                    return None
            if part.is_multipart:
                if not 1 <= number <= len(part.children):
                    return None
                part = part.children[number - 1]
            elif not (message_level and number == 1):
                return None
            message_level = False
        return part

    def section(self, section: Sequence[int], specifier: str = "") -> tuple[int, int] | None:
        """Offsets ``(start, end)`` in the raw message of ``BODY[section.specifier]``.

        ``specifier`` is ``""``, ``"MIME"``, ``"HEADER"`` or ``"TEXT"`` (HEADER.FIELDS and
        HEADER.FIELDS.NOT pick lines out of the HEADER range). HEADER and TEXT after a part
        number need a message/rfc822 part; MIME needs a part number. None when there is no
        such section.
        """
        part = self.find(section)
        if part is None:
            return None
        specifier = specifier.upper()
        if specifier == "":
            if not section:
                return part.header_start, part.body_end
            return part.body_start, part.body_end
        if specifier == "MIME":
            return (part.header_start, part.body_start) if section else None
        if specifier in ("HEADER", "TEXT"):
            if section:
                if not part.is_message:
                    return None
                part = part.children[0]
            if specifier == "HEADER":
                return part.header_start, part.body_start
            return part.body_start, part.body_end
        return None


def _split_multipart(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """The ``(start, end)`` ranges of the body parts of a multipart body (RFC 2046 §5.1.1).

    A delimiter is ``--boundary`` at the start of a line followed only by whitespace (the close
    delimiter adds ``--``); the line break before it belongs to it, not to the part. The
    preamble and epilogue are left out; without a close delimiter the last part runs to the end.
    """
    delimiter = b"--" + boundary
    ranges: list[tuple[int, int]] = []
    part_start = -1  # -1 while in the preamble
    pos = start
    while True:
        found = raw.find(delimiter, pos, end)
        if found < 0:
            break
        pos = found + 1
        if found != start and raw[found - 1] != 0x0A:
            continue  # not at the start of a line
        after = found + len(delimiter)
        eol = raw.find(b"\n", after, end)
        line_end = end if eol < 0 else eol
        close = raw.startswith(b"--", after, line_end)
        if raw[after + 2 if close else after : line_end].strip(b" \t\r"):
            continue  # "--boundary" is only the start of something else
        if part_start >= 0:
            stop = found - 1  # the LF before the delimiter line
            if stop > part_start and raw[stop - 1] == 0x0D:
                stop -= 1
            ranges.append((part_start, max(part_start, stop)))
        if close:
            return ranges
        part_start = pos = line_end if eol < 0 else eol + 1
    if part_start >= 0:
        ranges.append((part_start, end))
    return ranges


def _parse_part(
    raw: bytes, start: int, end: int, in_digest: bool, depth: int, budget: list[int]
) -> MimePart:
    header_end, body_start = split_header(raw, start, end)
    headers = parse_headers(raw, start, header_end)
    budget[0] -= 1
    value = headers.get("content-type")
    content_type = None if value is None else parse_content_type(value)
    if content_type is None:
        content_type = MESSAGE_RFC822 if in_digest else TEXT_PLAIN
    children: list[MimePart] = []
    deeper = depth < MAX_DEPTH and budget[0] > 0
    if content_type.maintype == "multipart":
        boundary = param_bytes(content_type.params, "boundary")
        ranges = _split_multipart(raw, body_start, end, boundary) if boundary and deeper else []
        if ranges:
            digest = content_type.minor == "digest"
            children = [
                _parse_part(raw, s, e, digest, depth + 1, budget) for s, e in ranges[: budget[0]]
            ]
        else:
            content_type = TEXT_PLAIN
    elif content_type.maintype == "message" and content_type.minor in _ENCAPSULATING:
        if deeper:
            children = [_parse_part(raw, body_start, end, False, depth + 1, budget)]
        else:
            content_type = TEXT_PLAIN
    return MimePart(start, header_end, body_start, end, headers, content_type, children)


def parse_mime(raw: bytes) -> MimePart:
    """The MIME tree of ``raw``; never raises, whatever the octets."""
    return _parse_part(raw, 0, len(raw), False, 0, [MAX_PARTS])
