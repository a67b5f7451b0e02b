"""Header blocks: where a header ends, its fields, RFC 2047 words and MIME parameters.

Offsets always point into the raw message; values stay raw bytes (unfolded) until someone asks
for text.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from courrier.message.text import decode_8bit, decode_base64, decode_charset

# RFC 5322 §3.6.8: ftext is printable US-ASCII except ":" (which ends the name anyway).
_FTEXT = bytes(range(33, 127))
_WSP = b" \t"
_WSP_CRLF = b" \t\r\n"


def _is_field_name(name: bytes) -> bool:
    return bool(name) and not name.translate(None, _FTEXT)


def _starts_field(raw: bytes, start: int, end: int) -> bool:
    """Whether the line at ``start`` is a header field: ``name *WSP ":"`` (RFC 5322 §3.6.8,
    with the obsolete WSP before the colon of §4.5)."""
    eol = raw.find(b"\n", start, end)
    colon = raw.find(b":", start, end if eol < 0 else eol)
    return colon > start and _is_field_name(raw[start:colon].rstrip(_WSP))


_END_OF_HEADER = re.compile(rb"\n\r?\n")


def split_header(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """Split ``raw[start:end]`` into header and body: ``(header_end, body_start)``.

    The header ends at the first empty line (RFC 5322 §2.1), ended by CRLF or a bare LF;
    ``header_end`` is just after the last field's line break and ``body_start`` just after the
    empty line. Without an empty line it is all header. A first line that is not a field
    starts the body at once (nothing is taken as header).
    """
    if start >= end:
        return start, start
    first = raw[start]
    if first == 0x0A:
        return start, start + 1
    if first == 0x0D and start + 1 < end and raw[start + 1] == 0x0A:
        return start, start + 2
    if not _starts_field(raw, start, end):
        return start, start
    match = _END_OF_HEADER.search(raw, start, end)
    if match is None:
        return end, end
    return match.start() + 1, match.end()


def header_span(raw: bytes) -> int:
    """How many first octets of ``raw`` hold its header, with header lines put before it or
    not (a delivery prefix): ``split_header`` of ``prefix + raw`` then ends within
    ``prefix + raw[:header_span(raw)]`` and splits it the same way. After header lines, a
    first line that is no field does not start the body, so that span may be longer."""
    _, alone = split_header(raw, 0, len(raw))
    if raw.startswith((b"\n", b"\r\n")):
        return alone  # an empty line at once: the body starts there either way
    match = _END_OF_HEADER.search(raw)
    return max(alone, len(raw) if match is None else match.end())


class Headers:
    """The fields of one header block, in order: ``(name as written, unfolded raw value)``.

    Values have the line breaks of folding removed (RFC 5322 §2.2.3) and surrounding
    whitespace stripped; lookups ignore case and the first occurrence wins.
    """

    __slots__ = ("_first", "fields")

    def __init__(self, fields: list[tuple[str, bytes]]) -> None:
        self.fields = fields
        self._first = {name.lower(): value for name, value in reversed(fields)}

    def get(self, name: str) -> bytes | None:
        """The first field called ``name`` (any case), or None."""
        return self._first.get(name.lower())

    def get_all(self, name: str) -> list[bytes]:
        """Every field called ``name`` (any case), in order."""
        wanted = name.lower()
        return [value for field, value in self.fields if field.lower() == wanted]

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return iter(self.fields)


# A field and its continuation lines (RFC 5322 §2.2.3: they start with WSP); "." stops only at
# LF, so a CR before it stays in the value until stripped.
_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*(?:\n[ \t].*)*)", re.M)


def parse_headers(raw: bytes, start: int, end: int) -> Headers:
    """Parse the fields of the header block ``raw[start:end]`` (see ``split_header``).

    Continuation lines (starting with SP or HTAB) are joined to their field; lines that are
    not fields (no colon, or a name with spaces or 8-bit octets) are skipped with theirs.
    """
    fields: list[tuple[str, bytes]] = []
    for name, value in _FIELD.findall(raw[start:end]):
        if b"\n" in value:  # unfold: remove each line break (all are followed by WSP)
            value = value.replace(b"\r\n", b"").replace(b"\n", b"")
        fields.append((name.decode("ascii"), value.strip()))
    return Headers(fields)


# RFC 2047 §2: =?charset?encoding?encoded-text?= (charset may carry *language, RFC 2231 §5);
# B text is base64's alphabet (§4.1), Q text anything but "?" and spaces (§4.2).
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?(?:[Bb]\?([A-Za-z0-9+/=]*)|[Qq]\?([^?\s]*))\?=")


def decode_words(value: bytes) -> str:
    """Header text for people: RFC 2047 encoded-words decoded (B and Q, any known charset),
    the whitespace between adjacent encoded-words dropped (§6.2), everything else read as UTF-8
    (RFC 6532) or, failing that, Latin-1."""
    if b"=?" not in value:
        return decode_8bit(value)
    out: list[str] = []
    pending: bytes | None = None  # decoded octets of the previous encoded-word(s)
    pending_charset = ""
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        charset = match.group(1).split(b"*", 1)[0].decode("latin-1").lower()
        b_text, q_text = match.group(2), match.group(3)
        # RFC 2047 §4.2: in Q, "_" is a space
        data = decode_base64(b_text) if q_text is None else binascii.a2b_qp(q_text, header=True)
        between_words = pending is not None and not gap.strip(_WSP_CRLF)
        if pending is not None and between_words and charset == pending_charset:
            pending += data  # a character may be split across adjacent words
        else:
            if pending is not None:
                out.append(decode_charset(pending, pending_charset))
            if gap and not between_words:
                out.append(decode_8bit(gap))
            pending, pending_charset = data, charset
        pos = match.end()
    if pending is not None:
        out.append(decode_charset(pending, pending_charset))
    out.append(decode_8bit(value[pos:]))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Param:
    """A MIME parameter as BODYSTRUCTURE shows it: name as written, value unquoted.

    RFC 2231 continuations are merged into one parameter; when a segment was encoded the name
    ends with ``*`` and the value keeps the ``charset'language'%XX`` form (as Dovecot does).
    """

    name: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed Content-Type: type and subtype as written (for IMAP) and lower-cased (for
    logic), and its parameters."""

    type: bytes
    subtype: bytes
    maintype: str
    minor: str
    params: tuple[Param, ...]


@dataclass(frozen=True, slots=True)
class Disposition:
    """A parsed Content-Disposition (RFC 2183): the type as written, and its parameters."""

    type: bytes
    params: tuple[Param, ...]


def _strip_comments(value: bytes) -> bytes:
    """Remove RFC 5322 §3.2.2 comments (nested, with quoted-pairs), leaving quoted strings."""
    out = bytearray()
    depth = 0
    quoted = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == 0x5C and (quoted or depth):  # quoted-pair
            if not depth:
                out += value[i : i + 2]
            i += 2
            continue
        if depth:
            depth += (c == 0x28) - (c == 0x29)
            if not depth:
                out += b" "
        elif quoted:
            out.append(c)
            quoted = c != 0x22
        elif c == 0x28:
            depth = 1
        else:
            out.append(c)
            quoted = c == 0x22
        i += 1
    return bytes(out)


# RFC 2045 §5.1: type "/" subtype, then *(";" attribute "=" value) with value a token or a
# quoted-string. Tolerated: spaces around "=", unquoted values with tspecials, a missing ";".
_TYPE = re.compile(rb"[ \t]*([^\s/;=\"]+)[ \t]*/[ \t]*([^\s/;=\"]+)")
_DISPOSITION_TYPE = re.compile(rb"[ \t]*([^\s/;=\"]+)")
_PARAM = re.compile(rb'[\s;]*([^\s;="]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.?)*)"?|([^\s;]*))', re.S)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.S)
_SECTION = re.compile(rb"(.*?)\*(?:([0-9]+)\*?|)$", re.S)


def _parse_params(value: bytes, pos: int) -> tuple[Param, ...]:
    raw: list[tuple[bytes, bytes]] = []
    n = len(value)
    while pos < n:
        match = _PARAM.match(value, pos)
        if match is None:
            semicolon = value.find(b";", pos + 1)
            if semicolon < 0:
                break
            pos = semicolon
            continue
        name, quoted, token = match.groups()
        if quoted is not None:
            quoted = _QUOTED_PAIR.sub(rb"\1", quoted) if b"\\" in quoted else quoted
        raw.append((name, quoted if quoted is not None else token))
        pos = match.end()
    if not any(b"*" in name for name, _ in raw):
        return tuple(Param(name, val) for name, val in raw)
    return _merge_rfc2231(raw)


def _merge_rfc2231(raw: list[tuple[bytes, bytes]]) -> tuple[Param, ...]:
    """RFC 2231 §3-4: join ``name*0``, ``name*1*``... into one parameter at the first's place.

    Segments with missing numbers are left as they are. When some segment is encoded the
    merged name gets a ``*`` and unencoded segments are %-escaped into the encoded form.
    """
    # name (lower case) -> list of (index, extended, name as written, value)
    groups: dict[bytes, list[tuple[int, bool, bytes, bytes]]] = {}
    order: list[tuple[bytes, bytes, bytes | None]] = []  # (name, value, group key or None)
    for name, val in raw:
        match = _SECTION.match(name)
        if match is None or not match.group(1):
            order.append((name, val, None))
            continue
        base, number = match.group(1), match.group(2)
        extended = name.endswith(b"*")
        key = base.lower()
        if key not in groups:
            groups[key] = []
            order.append((base, b"", key))
        groups[key].append((0 if number is None else int(number), extended, name, val))
    params: list[Param] = []
    for name, val, key in order:
        if key is None:
            params.append(Param(name, val))
            continue
        segments = sorted(groups[key], key=lambda s: s[0])
        if [s[0] for s in segments] != list(range(len(segments))):
            params.extend(Param(s[2], s[3]) for s in groups[key])
            continue
        if not any(s[1] for s in segments):
            params.append(Param(name, b"".join(s[3] for s in segments)))
            continue
        joined = b"" if segments[0][1] else b"''"
        for _, extended, _, piece in segments:
            joined += piece if extended else piece.replace(b"%", b"%25")
        params.append(Param(name + b"*", joined))
    return tuple(params)


def parse_content_type(value: bytes) -> ContentType | None:
    """Parse a Content-Type value; None when it has no ``type/subtype`` (RFC 2045 §5.2 then
    says to assume the default)."""
    if b"(" in value:
        value = _strip_comments(value)
    match = _TYPE.match(value)
    if match is None:
        return None
    type_, subtype = match.groups()
    return ContentType(
        type_,
        subtype,
        type_.decode("latin-1").lower(),
        subtype.decode("latin-1").lower(),
        _parse_params(value, match.end()),
    )


def parse_disposition(value: bytes) -> Disposition | None:
    """Parse a Content-Disposition value (RFC 2183 §2); None when it has no type."""
    if b"(" in value:
        value = _strip_comments(value)
    match = _DISPOSITION_TYPE.match(value)
    if match is None:
        return None
    return Disposition(match.group(1), _parse_params(value, match.end()))


def param_bytes(params: tuple[Param, ...], name: str) -> bytes | None:
    """The octets of parameter ``name`` (any case), RFC 2231 encoding undone, or None."""
    wanted = name.lower().encode("ascii")
    plain: bytes | None = None
    for param in params:
        lowered = param.name.lower()
        if lowered == wanted + b"*":
            return _rfc2231_octets(param.value)[1]
        if lowered == wanted and plain is None:
            plain = param.value
    return plain


def param_text(params: tuple[Param, ...], name: str) -> str | None:
    """Parameter ``name`` (any case) as text: RFC 2231 charset'lang'%XX decoded, else
    RFC 2047 words (common in filenames, though not standard) and 8-bit UTF-8."""
    wanted = name.lower().encode("ascii")
    plain: bytes | None = None
    for param in params:
        lowered = param.name.lower()
        if lowered == wanted + b"*":
            charset, octets = _rfc2231_octets(param.value)
            return decode_charset(octets, charset)
        if lowered == wanted and plain is None:
            plain = param.value
    return None if plain is None else decode_words(plain)


def _rfc2231_octets(value: bytes) -> tuple[str | None, bytes]:
    """RFC 2231 §4: ``charset'language'%XX...`` -> (charset or None, octets)."""
    charset: str | None = None
    parts = value.split(b"'", 2)
    if len(parts) == 3:
        charset = parts[0].decode("latin-1") or None
        value = parts[2]
    return charset, unquote_to_bytes(value)
