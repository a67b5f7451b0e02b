"""``parse``: everything the store saves about a message, computed once at delivery.

IMAP data (ENVELOPE, BODYSTRUCTURE, BODY) as ready-to-send octets, and decoded text for
SEARCH, SORT (RFC 5256) and PREVIEW (RFC 8970).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from courrier.message.address import Address, format_addresses
from courrier.message.headers import decode_words, param_text, parse_disposition
from courrier.message.imap import body_structures, envelope, read_addresses
from courrier.message.mime import MimePart, parse_mime
from courrier.message.text import decode_8bit, decode_charset, decode_transfer, html_to_text

PREVIEW_LENGTH = 200  # RFC 8970 §3.1: at most 200 characters


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What the store keeps for a message (see ``parse``)."""

    size: int
    """Octets of the message as given."""
    envelope: bytes
    """ENVELOPE value, parenthesised (RFC 9051 §7.5.2)."""
    bodystructure: bytes
    """BODYSTRUCTURE value, with extension data."""
    body: bytes
    """BODY value: BODYSTRUCTURE without extension data."""
    subject: str
    """Subject, decoded."""
    from_: str
    """From as ``Name <addr>, ...``, decoded; likewise ``to``, ``cc`` and ``bcc``."""
    to: str
    cc: str
    bcc: str
    sort_from: str
    """RFC 5256 §3 sort key: the mailbox (local part) of the first From address, or ""."""
    sort_to: str
    sort_cc: str
    sort_subject: str
    """RFC 5256 §2.1 base subject: "Re:", "Fwd:", "[list]" and "(fwd)" removed."""
    sent_date: datetime | None
    """The Date field, timezone-aware; None when absent or unreadable."""
    message_id: str
    """Message-ID, In-Reply-To and References as written (unfolded)."""
    in_reply_to: str
    references: str
    preview: str
    """RFC 8970 preview: the start of the first text, whitespace collapsed."""
    text: str
    """Searchable body text: the decoded text parts, HTML reduced to text."""
    headers_text: str
    """Every header field of the message as ``Name: decoded value`` lines."""


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# RFC 5322 §3.3 date-time with a numeric zone; anything else goes to the stdlib parser,
# which knows the obsolete forms of §4.3.
_DATE = re.compile(
    r"\s*(?:[A-Za-z]{3}\s*,\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d\d)"
    r"(?::(\d\d))?\s+([+-])(\d\d)(\d\d)(?:\s|\(|$)"
)
_ZONES: dict[int, timezone] = {0: UTC}


def _zone(minutes: int) -> timezone:
    zone = _ZONES.get(minutes)
    if zone is None:
        zone = _ZONES[minutes] = timezone(timedelta(minutes=minutes))
    return zone


def _sent_date(value: bytes | None) -> datetime | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    match = _DATE.match(text)
    try:
        if match is not None and match.group(2).lower() in _MONTHS:
            day, month, year, hour, minute, second, sign, zh, zm = match.groups()
            offset = int(zh) * 60 + int(zm)
            return datetime(
                int(year),
                _MONTHS[month.lower()],
                int(day),
                int(hour),
                int(minute),
                int(second or 0),
                tzinfo=_zone(-offset if sign == "-" else offset),
            )
        parsed = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    # RFC 5322 §3.3: "-0000" means UTC with the local zone unknown; Python returns it naive.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_SUBJ_TRAILER = re.compile(r"(?:\s|\(fwd\))+$", re.I)
_SUBJ_LEADER = re.compile(r"(?:\s+|(?:\[[^\[\]]*\]\s*)*(?:re|fwd?)\s*(?:\[[^\[\]]*\]\s*)?:)", re.I)
_SUBJ_BLOB = re.compile(r"\[[^\[\]]*\]\s*")


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1 base subject of a decoded subject (steps 1 to 6).

    Only the first 1000 characters count, which bounds the work on hostile subjects.
    """
    text = " ".join(subject[:1000].split())
    while True:
        text = _SUBJ_TRAILER.sub("", text)  # step 2
        while True:  # steps 3 to 5
            before = text
            while (match := _SUBJ_LEADER.match(text)) is not None and match.end():
                text = text[match.end() :]
            blob = _SUBJ_BLOB.match(text)
            if blob is not None and text[blob.end() :]:
                text = text[blob.end() :]
            if text == before:
                break
        # step 6: "[fwd: ...]" wrapping
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            continue
        return text.strip()


def _encoding(part: MimePart) -> str:
    value = part.headers.get("content-transfer-encoding")
    words = [] if value is None else value.replace(b"(", b" ").replace(b";", b" ").split()
    return words[0].decode("latin-1").lower() if words else ""


def part_text(raw: bytes, part: MimePart) -> str:
    """The text of a leaf part: transfer encoding undone, decoded from its charset, line
    breaks as LF; HTML reduced to its text."""
    data = decode_transfer(raw[part.body_start : part.body_end], _encoding(part))
    text = decode_charset(data, param_text(part.content_type.params, "charset"))
    if "\r" in text:
        text = "\n".join(text.split("\r\n"))  # faster than replace() with many lines
    return html_to_text(text) if part.content_type.minor == "html" else text


def _is_attachment(part: MimePart) -> bool:
    value = part.headers.get("content-disposition")
    if value is None:
        return False
    disposition = parse_disposition(value)
    return disposition is not None and disposition.type.lower() == b"attachment"


def _preview_part(part: MimePart) -> MimePart | None:
    """The first inline text/plain or text/html leaf, not looking into attached messages."""
    if part.is_multipart:
        for child in part.children:
            found = _preview_part(child)
            if found is not None:
                return found
        return None
    content_type = part.content_type
    if (
        content_type.maintype == "text"
        and content_type.minor in ("plain", "html")
        and not _is_attachment(part)
    ):
        return part
    return None


def _collect_text(
    raw: bytes, part: MimePart, known: tuple[MimePart | None, str], out: list[str]
) -> None:
    """Append the text of every text/* leaf; of alternatives, only text/plain (else the last,
    RFC 2046 §5.1.4's preferred one)."""
    if part.is_multipart:
        children = part.children
        if part.content_type.minor == "alternative":
            plain = [
                c for c in children if (c.content_type.maintype, c.content_type.minor) == _PLAIN
            ]
            children = plain[:1] or children[-1:]
        for child in children:
            _collect_text(raw, child, known, out)
    elif part.is_message:
        _collect_text(raw, part.children[0], known, out)
    elif part.content_type.maintype == "text":
        out.append(known[1] if part is known[0] else part_text(raw, part))


_PLAIN = ("text", "plain")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]+")


def _preview(text: str) -> str:
    """Whitespace runs and control characters become single spaces (RFC 8970 §3.1)."""
    collapsed = ""
    for size in (400, 4000, len(text)):
        collapsed = " ".join(text[:size].split())
        # done when all text is in, or when the word the cut may have split lies past the end
        if size >= len(text) or collapsed.rfind(" ") > PREVIEW_LENGTH:
            break
    collapsed = collapsed[: PREVIEW_LENGTH + 50]
    if _CONTROLS.search(collapsed) is not None:
        collapsed = " ".join(_CONTROLS.sub(" ", collapsed).split())
    return collapsed[:PREVIEW_LENGTH]


def _first_mailbox(addresses: list[Address] | None) -> str:
    for address in addresses or ():
        if address.host is not None:  # not a group marker
            return decode_8bit(address.mailbox or b"")
    return ""


def _text_field(value: bytes | None) -> str:
    return "" if value is None else decode_8bit(value)


def parse(raw: bytes) -> ParsedMessage:
    """Parse a message as stored; never raises, whatever the octets."""
    root = parse_mime(raw)
    headers = root.headers
    addresses = read_addresses(headers)
    bodystructure, body = body_structures(raw, root)
    preview_part = _preview_part(root)
    preview_text = "" if preview_part is None else part_text(raw, preview_part)
    texts: list[str] = []
    _collect_text(raw, root, (preview_part, preview_text), texts)
    subject_raw = headers.get("subject")
    subject = "" if subject_raw is None else decode_words(subject_raw)
    return ParsedMessage(
        size=len(raw),
        envelope=envelope(headers, addresses),
        bodystructure=bodystructure,
        body=body,
        subject=subject,
        from_=format_addresses(addresses.get("from", [])),
        to=format_addresses(addresses.get("to", [])),
        cc=format_addresses(addresses.get("cc", [])),
        bcc=format_addresses(addresses.get("bcc", [])),
        sort_from=_first_mailbox(addresses.get("from")),
        sort_to=_first_mailbox(addresses.get("to")),
        sort_cc=_first_mailbox(addresses.get("cc")),
        sort_subject=base_subject(subject),
        sent_date=_sent_date(headers.get("date")),
        message_id=_text_field(headers.get("message-id")),
        in_reply_to=_text_field(headers.get("in-reply-to")),
        references=_text_field(headers.get("references")),
        preview=_preview(preview_text),
        text="\n".join(texts),
        headers_text="\n".join([f"{name}: {decode_words(value)}" for name, value in headers]),
    )
