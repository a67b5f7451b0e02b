"""FETCH responses (RFC 9051 §6.4.5, §7.5.2; RFC 3501 §6.4.5, §7.4.2): one untagged
``* n FETCH (...)`` line per message, as octets ready to send, literals included.

This module owns the rendering of every fetch item: the attributes kept with the message row
(UID, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY, MODSEQ, PREVIEW,
EMAILID, THREADID, SAVEDATE), the body sections cut out of the stored octets (BODY[...],
RFC822, RFC822.HEADER, RFC822.TEXT) and the decoded ones of RFC 3516 (BINARY[...],
BINARY.SIZE[...]). It also says which items need the message octets (:func:`needs_raw`) and
which set ``\\Seen`` (:func:`sets_seen`). Pure functions of their arguments: the session reads
the blob, updates flags and sends what :func:`render` returns.

Choices where the RFCs leave room (Dovecot's behaviour unless said otherwise):

- Body sections that do not exist (no such part, HEADER/TEXT after a part that is not
  message/rfc822, MIME without a part number) are the empty string ``""``, as in Dovecot and
  Cyrus. Non-empty section contents are always literals.
- NUL, which no IMAP string may carry (RFC 9051 §4.3 CHAR8), is sent as 0x80 in BODY[...] and
  RFC822* contents, octet for octet, so sizes and partial offsets stay those of the stored
  message (what Dovecot does).
- BINARY[...] of a part that does not exist is ``NIL`` and its BINARY.SIZE is 0. Content
  with NUL goes as literal8 (RFC 3516 §4.2). BINARY of a multipart or message/rfc822 part, and
  BINARY[] (the whole message, header included), is the section as stored with the body of
  every leaf inside it decoded, the header of each decoded leaf saying
  ``Content-Transfer-Encoding: binary`` instead of what it said (what Dovecot does), so the
  result is still a well-formed MIME entity; a nested leaf in an encoding this server cannot
  undo is left as it is (only a leaf asked for by itself answers ``NO [UNKNOWN-CTE]``).
- Response names repeat the section normalised: part numbers, the upper-cased section text and
  field names, ``<origin>`` for a partial fetch (also for BINARY, §7.5.2), never PEEK.
- An item asked twice is answered once (the first time it was asked).
- PREVIEW is always available (computed at delivery): a message without text gets ``""``.
- EMAILID (RFC 8474) is ``M`` and the blob id in hex; THREADID and SAVEDATE (RFC 8514) are NIL.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Sequence

from courrier.imap.types import FetchAttr, FetchItem, FetchSection
from courrier.message.headers import split_header
from courrier.message.imapform import string
from courrier.message.mime import MimePart, parse_mime
from courrier.message.text import decode_transfer
from courrier.store.models import Flag, Message

__all__ = [
    "UnknownCTE",
    "columns",
    "format_flags",
    "format_internal_date",
    "header_only",
    "needs_raw",
    "render",
    "sets_seen",
]


class UnknownCTE(Exception):
    """BINARY[...] or BINARY.SIZE[...] of a part whose Content-Transfer-Encoding this server
    cannot undo: the session answers ``NO [UNKNOWN-CTE]`` (RFC 9051 §7.1, RFC 3516)."""

    def __init__(self, encoding: str, part: tuple[int, ...]) -> None:
        super().__init__(f"unknown Content-Transfer-Encoding {encoding!r} in part {part}")
        self.encoding = encoding
        self.part = part


# -- what items need ------------------------------------------------------------------------

_RAW_ATTRS = frozenset(("RFC822", "RFC822.HEADER", "RFC822.TEXT"))
_SEEN_ATTRS = frozenset(("RFC822", "RFC822.TEXT"))


def needs_raw(items: Sequence[FetchItem]) -> bool:
    """Whether any item needs the message octets: body sections, BINARY[.SIZE], RFC822*."""
    return any(isinstance(item, FetchSection) or item.name in _RAW_ATTRS for item in items)


_HEADER_TEXTS = frozenset(("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"))


def header_only(items: Sequence[FetchItem]) -> bool:
    """Whether the octets ``items`` need are all in the message's header (RFC822.HEADER,
    BODY[HEADER], BODY[HEADER.FIELDS (…)] and .NOT): rendering them from the header with its
    empty line alone gives the same answer as from the whole message."""
    for item in items:
        if isinstance(item, FetchSection):
            if item.part or item.text not in _HEADER_TEXTS or item.binary or item.size_only:
                return False
        elif item.name in _RAW_ATTRS and item.name != "RFC822.HEADER":
            return False
    return True


#: The row's content columns (see ``Store.list_messages``) each attribute needs.
_ATTR_COLUMNS = {
    "ENVELOPE": "envelope",
    "BODYSTRUCTURE": "bodystructure",
    "BODY": "body",
    "PREVIEW": "preview",
}


def columns(items: Sequence[FetchItem]) -> frozenset[str]:
    """The content columns of the message row that rendering ``items`` reads."""
    return frozenset(
        _ATTR_COLUMNS[item.name]
        for item in items
        if isinstance(item, FetchAttr) and item.name in _ATTR_COLUMNS
    )


def sets_seen(items: Sequence[FetchItem]) -> bool:
    """Whether fetching ``items`` sets ``\\Seen`` (RFC 9051 §6.4.5): BODY[...] and BINARY[...]
    without PEEK, RFC822 and RFC822.TEXT. BINARY.SIZE and RFC822.HEADER do not."""
    for item in items:
        if isinstance(item, FetchSection):
            if not item.peek and not item.size_only:
                return True
        elif item.name in _SEEN_ATTRS:
            return True
    return False


# -- attributes ------------------------------------------------------------------------------

_SYSTEM_FLAGS = (
    (Flag.SEEN, b"\\Seen"),
    (Flag.ANSWERED, b"\\Answered"),
    (Flag.FLAGGED, b"\\Flagged"),
    (Flag.DELETED, b"\\Deleted"),
    (Flag.DRAFT, b"\\Draft"),
)
_ALL_FLAGS = sum(int(bit) for bit, _ in _SYSTEM_FLAGS)
# Every combination of system flags, formatted once: most messages have no keywords.
_SYSTEM_NAMES: tuple[tuple[bytes, ...], ...] = tuple(
    tuple(name for bit, name in _SYSTEM_FLAGS if bits & bit) for bits in range(_ALL_FLAGS + 1)
)
_FLAG_LISTS: tuple[bytes, ...] = tuple(b"(" + b" ".join(n) + b")" for n in _SYSTEM_NAMES)


def format_flags(flags: int, keywords: Sequence[str] = ()) -> bytes:
    """The flag list of a FLAGS item (RFC 9051 §7.5.2): ``(\\Seen \\Answered $Forwarded)``,
    system flags in the order Seen, Answered, Flagged, Deleted, Draft, then the keywords."""
    bits = int(flags) & _ALL_FLAGS
    if not keywords:
        return _FLAG_LISTS[bits]
    return b"(" + b" ".join((*_SYSTEM_NAMES[bits], *(k.encode() for k in keywords))) + b")"


_MONTHS = (
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
    b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
)  # fmt: skip


def format_internal_date(timestamp: int, tz: datetime.tzinfo = datetime.UTC) -> bytes:
    """``"23-Nov-2026 10:00:00 +0000"``: RFC 9051 §9 date-time, in ``tz``; the day is
    date-day-fixed (a space before a single digit) and the month English whatever the locale."""
    try:
        when = datetime.datetime.fromtimestamp(timestamp, tz)
    except (OverflowError, OSError, ValueError):
        when = datetime.datetime.fromtimestamp(0, tz)
    offset = when.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds()) // 60
    sign = b"-" if minutes < 0 else b"+"
    minutes = abs(minutes)
    return b'"%2d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        when.day,
        _MONTHS[when.month - 1],
        when.year,
        when.hour,
        when.minute,
        when.second,
        sign,
        minutes // 60,
        minutes % 60,
    )


# Octets a UTF-8 quoted string may hold (the text is UTF-8 already): all but NUL, CR and LF.
_OCTETS_8BIT_QUOTABLE = bytes(c for c in range(1, 256) if c not in (0x0A, 0x0D))


def _preview(text: str, rev2: bool) -> bytes:
    """RFC 8970 §4: ``PREVIEW`` nstring. IMAP4rev2 (and UTF8=ACCEPT) quoted strings may carry
    UTF-8 (RFC 9051 §9 QUOTED-CHAR); rev1 clients get a literal for anything 8-bit."""
    data = text.encode()
    if rev2 and not data.isascii() and not data.translate(None, _OCTETS_8BIT_QUOTABLE):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return string(data)


# -- body sections ---------------------------------------------------------------------------

_EMPTY = b'""'
_NUL = b"\x00"
_NUL_TO_0X80 = bytes.maketrans(b"\x00", b"\x80")
# RFC 9051 §9 ATOM-CHAR: anything else makes a field name quoted. ASTRING-CHAR would allow
# "]" too, but clients finding the end of the item name by looking for "]" would stumble.
_NOT_ATOM = frozenset(b'(){ %*"\\]') | frozenset(range(0x20)) | {0x7F}
_FTEXT = bytes(range(33, 127))
_WSP = b" \t"
_IDENTITY_CTE = frozenset(("", "7bit", "8bit", "binary"))
_DECODED_CTE = frozenset(("base64", "quoted-printable"))


class _Source:
    """The message octets, with its MIME tree parsed at most once, and only when needed: the
    top header's extent (all RFC822.HEADER and BODY[HEADER.FIELDS ...] need) is cheaper."""

    __slots__ = ("_root", "_top", "binary", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._root: MimePart | None = None
        self._top: tuple[int, int] | None = None
        # Decoded BINARY sections by part number: BINARY.SIZE[1] and BINARY[1] in one FETCH
        # decode once.
        self.binary: dict[tuple[int, ...], bytes | None] = {}

    def root(self) -> MimePart:
        if self._root is None:
            self._root = parse_mime(self.raw)
        return self._root

    def top(self) -> tuple[int, int]:
        """``(header_end, body_start)`` of the message (see ``split_header``)."""
        if self._top is None:
            if self._root is not None:
                self._top = self._root.header_end, self._root.body_start
            else:
                self._top = split_header(self.raw, 0, len(self.raw))
        return self._top


def _emit(out: list[bytes], name: bytes, data: bytes, *, binary: bool = False) -> None:
    """Append ``name`` and ``data`` as a string: ``""`` when empty, else a literal (RFC 9051
    §4.3); NUL becomes 0x80 in BODY contents, and makes a literal8 in BINARY ones (RFC 3516)."""
    out.append(b" ")
    if not data:
        out.append(name + b" " + _EMPTY)
        return
    if _NUL in data:
        if binary:
            out.append(name + b" ~{%d}\r\n" % len(data))
            out.append(data)
            return
        data = data.translate(_NUL_TO_0X80)
    out.append(name + b" {%d}\r\n" % len(data))
    out.append(data)


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    """RFC 9051 §6.4.5 ``<origin.count>``: an origin past the end gives the empty string."""
    if partial is None:
        return data
    origin = max(partial[0], 0)
    return data[origin : origin + max(partial[1], 0)]


def _field_name(name: str) -> bytes:
    data = name.encode()
    if data and data.isascii() and not any(c in _NOT_ATOM for c in data):
        return data
    return string(data)


@functools.lru_cache(maxsize=256)
def _section_name(item: FetchSection) -> bytes:
    """The response item name (RFC 9051 §7.5.2): ``BODY[1.2.HEADER.FIELDS (FROM)]<0>``."""
    spec = ".".join(map(str, item.part))
    if item.text is not None:
        spec = f"{spec}.{item.text}" if spec else item.text
    head = b"BINARY.SIZE[" if item.size_only else b"BINARY[" if item.binary else b"BODY["
    name = head + spec.encode()
    if item.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        name += b" (" + b" ".join(_field_name(f) for f in item.fields) + b")"
    name += b"]"
    if item.partial is not None and not item.size_only:
        name += b"<%d>" % max(item.partial[0], 0)
    return name


@functools.lru_cache(maxsize=64)
def _fields_pattern(names: frozenset[bytes]) -> re.Pattern[bytes] | None:
    """HEADER.FIELDS by one regular expression: each wanted field's first line at a line start
    (name, optional blanks, colon) and the continuation lines after it. None when a name is
    not made of field-name characters (RFC 5322 §3.6.8 ftext) and only the slow path knows."""
    if not names or any(not name or name.translate(None, _FTEXT) for name in names):
        return None
    alternatives = b"|".join(re.escape(name) for name in sorted(names))
    return re.compile(
        rb"^(?:" + alternatives + rb")[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*\n?", re.I | re.M
    )


def _header_fields(raw: bytes, start: int, end: int, names: frozenset[bytes], keep: bool) -> bytes:
    """HEADER.FIELDS (``keep``) or HEADER.FIELDS.NOT of the header ``raw[start:end]``.

    Each field goes whole, as stored (continuation lines included), in message order; names
    compare without regard to case (RFC 9051 §6.4.5). Lines that are no field are dropped by
    HEADER.FIELDS and kept by HEADER.FIELDS.NOT. The empty line ends the result.
    """
    pattern = _fields_pattern(names) if keep and (start == 0 or raw[start - 1] == 0x0A) else None
    if pattern is not None:
        found = pattern.findall(raw, start, end)
        if found and not found[-1].endswith(b"\n"):
            found.append(b"\r\n")  # the header ran to the end of the message: no line break
        found.append(b"\r\n")
        return b"".join(found)
    return _scan_fields(raw, start, end, names, keep)


def _scan_fields(raw: bytes, start: int, end: int, names: frozenset[bytes], keep: bool) -> bytes:
    """:func:`_header_fields` line by line: any names, and HEADER.FIELDS.NOT."""
    out: list[bytes] = []
    include = not keep
    pos = start
    while pos < end:
        eol = raw.find(b"\n", pos, end)
        stop = end if eol < 0 else eol + 1
        if raw[pos] not in _WSP:  # a new field (else a continuation line of the last one)
            colon = raw.find(b":", pos, stop)
            name = raw[pos:colon].rstrip(_WSP) if colon > pos else b""
            known = bool(name) and not name.translate(None, _FTEXT)
            include = (known and name.upper() in names) == keep
        if include:
            out.append(raw[pos:stop])
        pos = stop
    if out and not out[-1].endswith(b"\n"):
        out.append(b"\r\n")  # the header ran to the end of the message without a line break
    out.append(b"\r\n")
    return b"".join(out)


def _body_content(source: _Source, item: FetchSection) -> bytes | None:
    """The octets of ``BODY[section]`` (before any partial), or None when there are none."""
    raw = source.raw
    text = item.text
    if not item.part and text != "MIME":  # the message itself: no MIME tree needed
        if text is None:
            return raw
        header_end, body_start = source.top()
        if text == "HEADER":
            return raw[:body_start]
        if text == "TEXT":
            return raw[body_start:]
        start, end = 0, header_end
    else:
        root = source.root()
        if text in (None, "HEADER", "TEXT", "MIME"):
            where = root.section(item.part, text or "")
            return None if where is None else raw[where[0] : where[1]]
        part = root.find(item.part)  # HEADER.FIELDS[.NOT] of an encapsulated message
        if part is None or not part.is_message:
            return None
        start, end = part.children[0].header_start, part.children[0].header_end
    return _header_fields(raw, start, end, _field_names(item.fields), text == "HEADER.FIELDS")


@functools.lru_cache(maxsize=64)
def _field_names(fields: tuple[str, ...]) -> frozenset[bytes]:
    return frozenset(f.upper().encode() for f in fields)


def _encoding(part: MimePart) -> str:
    """The Content-Transfer-Encoding token, lower-cased ("" when absent); comments and junk
    after it ignored, as ``courrier.message.parsed`` reads it."""
    value = part.headers.get("content-transfer-encoding")
    if value is None:
        return ""
    words = value.replace(b"(", b" ").replace(b";", b" ").split()
    return words[0].strip(b"\"'").decode("latin-1").lower() if words else ""


_CTE_FIELD = frozenset((b"CONTENT-TRANSFER-ENCODING",))
_CTE_BINARY = b"Content-Transfer-Encoding: binary\r\n"


def _binary_header(raw: bytes, part: MimePart) -> bytes:
    """The header of a leaf whose body BINARY decodes: its Content-Transfer-Encoding fields
    replaced by ``Content-Transfer-Encoding: binary`` (RFC 3516 §4.2 leaves this open; it is
    Dovecot's choice), ended by the empty line as stored."""
    kept = _header_fields(raw, part.header_start, part.header_end, _CTE_FIELD, False)
    return kept[:-2] + _CTE_BINARY + (raw[part.header_end : part.body_start] or b"\r\n")


def _binary_entity(raw: bytes, part: MimePart, with_header: bool, out: list[bytes]) -> None:
    """Append the decoded form of ``part`` (its header too if ``with_header``): a leaf's body
    decoded when base64 or quoted-printable, the preamble, delimiter lines and epilogue of a
    multipart as stored around its decoded children, an encapsulated message whole."""
    encoding = _encoding(part)
    decode = not part.children and encoding in _DECODED_CTE
    if with_header:
        out.append(
            _binary_header(raw, part) if decode else raw[part.header_start : part.body_start]
        )
    if not part.children:
        body = raw[part.body_start : part.body_end]
        out.append(decode_transfer(body, encoding) if decode else body)
        return
    pos = part.body_start
    for child in part.children:
        out.append(raw[pos : child.header_start])
        _binary_entity(raw, child, True, out)
        pos = child.body_end
    out.append(raw[pos : part.body_end])


def _binary_content(source: _Source, item: FetchSection) -> bytes | None:
    """The decoded octets of ``BINARY[section]`` (RFC 3516 §4.2, RFC 9051 §6.4.5) before any
    partial, or None when there is no such part. ``BINARY[]`` is the whole message, header
    included; ``BINARY[n]`` is the body of part n (for a message/rfc822 part, the encapsulated
    message with its header). Raises :class:`UnknownCTE` for a leaf in an encoding that this
    server cannot undo."""
    if item.text is not None:
        return None  # section-binary is part numbers only
    if item.part in source.binary:
        return source.binary[item.part]
    part = source.root().find(item.part)
    content: bytes | None = None
    if part is not None:
        encoding = _encoding(part)
        if not part.children and encoding not in _IDENTITY_CTE and encoding not in _DECODED_CTE:
            raise UnknownCTE(encoding, item.part)
        out: list[bytes] = []
        _binary_entity(source.raw, part, not item.part, out)
        content = b"".join(out)
    source.binary[item.part] = content
    return content


def _binary_size(source: _Source, item: FetchSection) -> int:
    """``BINARY.SIZE[section]`` (RFC 3516 §4.2): the size of the decoded section, 0 if none."""
    content = _binary_content(source, item)
    return 0 if content is None else len(content)


def _section(out: list[bytes], source: _Source, item: FetchSection, name: bytes) -> None:
    """Append one BODY[...], BINARY[...] or BINARY.SIZE[...] item."""
    if item.size_only:
        out.append(b" " + name + b" %d" % _binary_size(source, item))
    elif item.binary:
        content = _binary_content(source, item)
        if content is None:
            out.append(b" " + name + b" NIL")
        else:
            _emit(out, name, _partial(content, item.partial), binary=True)
    else:
        content = _body_content(source, item)
        _emit(out, name, b"" if content is None else _partial(content, item.partial))


# -- the response ------------------------------------------------------------------------------

# RFC 3501 §6.4.5: RFC822 is BODY[], RFC822.HEADER is BODY.PEEK[HEADER], RFC822.TEXT is
# BODY[TEXT]; the response keeps the rev1 name.
_RFC822 = {
    "RFC822": FetchSection(),
    "RFC822.HEADER": FetchSection(text="HEADER", peek=True),
    "RFC822.TEXT": FetchSection(text="TEXT"),
}


def render(
    seq: int,
    message: Message,
    items: Sequence[FetchItem],
    raw: bytes | None,
    *,
    flags: bytes | None = None,
    rev2: bool = True,
    include_uid: bool = False,
    include_modseq: bool = False,
    tz: datetime.tzinfo = datetime.UTC,
) -> bytes:
    """The untagged ``* seq FETCH (...)\\r\\n`` response for ``message``.

    ``raw`` is the message as stored (what RFC822.SIZE counts); it may be None when
    :func:`needs_raw` is false, and its MIME tree is parsed at most once. ``flags`` is the
    formatted flag list for FLAGS (the session's view, \\Seen included when the fetch just set
    it); None formats ``message.flags`` and ``message.keywords``. ``rev2``: the client takes
    UTF-8 in quoted strings (IMAP4rev2, or UTF8=ACCEPT enabled). ``include_uid`` adds UID
    first, as UID FETCH must (RFC 9051 §6.4.9); ``include_modseq`` adds MODSEQ (RFC 7162
    §3.1.4.1, §3.2). ``tz`` is the server's zone for INTERNALDATE.

    Raises :class:`UnknownCTE` for BINARY of a part in an encoding it cannot undo, and
    ValueError when a section is asked for without ``raw``.
    """
    # Items are appended with their leading space; the first space is dropped at the end.
    out: list[bytes] = [b"* %d FETCH (" % seq]
    seen: set[object] = set()
    if include_uid:
        out.append(b" UID %d" % message.uid)
        seen.add("UID")
    if include_modseq:
        out.append(b" MODSEQ (%d)" % message.modseq)
        seen.add("MODSEQ")
    source: _Source | None = None
    for item in items:
        if isinstance(item, FetchAttr):
            attr = item.name
            if attr in seen:
                continue
            seen.add(attr)
            if attr == "UID":
                out.append(b" UID %d" % message.uid)
            elif attr == "FLAGS":
                if flags is None:
                    flags = format_flags(message.flags, message.keywords)
                out.append(b" FLAGS " + flags)
            elif attr == "RFC822.SIZE":
                out.append(b" RFC822.SIZE %d" % message.size)
            elif attr == "ENVELOPE":
                out.append(b" ENVELOPE " + message.envelope)
            elif attr == "INTERNALDATE":
                out.append(b" INTERNALDATE " + format_internal_date(message.internal_date, tz))
            elif attr == "BODYSTRUCTURE":
                out.append(b" BODYSTRUCTURE " + message.bodystructure)
            elif attr == "BODY":
                out.append(b" BODY " + message.body)
            elif attr == "MODSEQ":
                out.append(b" MODSEQ (%d)" % message.modseq)
            elif attr == "PREVIEW":
                out.append(b" PREVIEW " + _preview(message.preview, rev2))
            elif attr == "EMAILID":
                out.append(b" EMAILID (M%x)" % message.blob_id)
            elif attr == "THREADID":
                out.append(b" THREADID NIL")
            elif attr == "SAVEDATE":
                out.append(b" SAVEDATE NIL")
            else:  # RFC822, RFC822.HEADER, RFC822.TEXT
                if raw is None:
                    raise ValueError(f"FETCH {attr} needs the message octets")
                if source is None:
                    source = _Source(raw)
                content = _body_content(source, _RFC822[attr])
                _emit(out, attr.encode(), b"" if content is None else content)
            continue
        name = _section_name(item)
        if name in seen:
            continue
        seen.add(name)
        if raw is None:
            raise ValueError("FETCH of a body section needs the message octets")
        if source is None:
            source = _Source(raw)
        _section(out, source, item, name)
    if len(out) > 1:
        out[1] = out[1][1:]
    out.append(b")\r\n")
    return b"".join(out)
