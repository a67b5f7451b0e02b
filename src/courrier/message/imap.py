"""IMAP ENVELOPE, BODYSTRUCTURE and BODY values (RFC 9051 §7.5.2), computed from the MIME tree.

Header values are given raw (unfolded, encoded-words left for the client to decode); type and
parameter names as written in the message; sizes and line counts are those of the stored
octets (line count: the number of LFs, as Dovecot counts them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from courrier.message.address import Address, parse_address_list
from courrier.message.headers import Headers, Param, parse_disposition
from courrier.message.imapform import is_plain, nstring, plist, string
from courrier.message.mime import MimePart

ADDRESS_FIELDS = ("from", "sender", "reply-to", "to", "cc", "bcc")
_NIL = b"NIL"
_US_ASCII = b'"charset" "us-ascii"'  # RFC 2045 §5.2 default, written as Dovecot does
_DEFAULT_ENCODING = b'"7BIT"'
# RFC 2045 §6.1: mechanism := token (also what Content-Language tags are made of)
_TOKEN = re.compile(rb"[ \t]*([^\x00-\x20\x7f()<>@,;:\\\"/\[\]?=]+)")
_COMMENT = re.compile(rb"\((?:[^()\\]|\\.)*\)", re.S)


def read_addresses(headers: Headers) -> dict[str, list[Address]]:
    """The address fields of a header (first occurrence of each), parsed; absent ones left out."""
    found: dict[str, list[Address]] = {}
    for name in ADDRESS_FIELDS:
        value = headers.get(name)
        if value is not None:
            found[name] = parse_address_list(value)
    return found


def _address(address: Address) -> bytes:
    """``(name adl mailbox host)``."""
    name, mailbox, host = address.name, address.mailbox, address.host
    if (
        address.route is None
        and mailbox is not None
        and host is not None
        and is_plain(mailbox + host if name is None else name + mailbox + host)
    ):  # the common case, written at once
        if name is None:
            return b'(NIL NIL "%s" "%s")' % (mailbox, host)
        return b'("%s" NIL "%s" "%s")' % (name, mailbox, host)
    return b"(%s %s %s %s)" % (
        nstring(name),
        nstring(address.route),
        nstring(mailbox),
        nstring(host),
    )


def _address_list(addresses: list[Address] | None) -> bytes:
    """A list of addresses, NIL when there is none; no space between them (RFC 9051 §9,
    ``env-from = "(" 1*address ")" / nil``)."""
    if not addresses:
        return _NIL
    return plist([_address(a) for a in addresses], sep=b"")


def envelope(headers: Headers, addresses: Mapping[str, list[Address]] | None = None) -> bytes:
    """ENVELOPE: ``(date subject from sender reply-to to cc bcc in-reply-to message-id)``.

    ``addresses`` are the parsed address fields when the caller already has them
    (``read_addresses``). Sender and Reply-To default to From when absent or empty.
    """
    if addresses is None:
        addresses = read_addresses(headers)
    get = headers.get
    from_ = _address_list(addresses.get("from"))
    sender = _address_list(addresses.get("sender"))
    reply_to = _address_list(addresses.get("reply-to"))
    return b"(%s %s %s %s %s %s %s %s %s %s)" % (
        nstring(get("date")),
        nstring(get("subject")),
        from_,
        from_ if sender == _NIL else sender,
        from_ if reply_to == _NIL else reply_to,
        _address_list(addresses.get("to")),
        _address_list(addresses.get("cc")),
        _address_list(addresses.get("bcc")),
        nstring(get("in-reply-to")),
        nstring(get("message-id")),
    )


def _params(params: tuple[Param, ...], text: bool) -> bytes:
    items = [string(p.name) + b" " + string(p.value) for p in params]
    if text and not any(p.name.lower() == b"charset" for p in params):
        items.append(_US_ASCII)  # Dovecot adds the RFC 2045 §5.2 default, so do we
    return plist(items) if items else _NIL


def _disposition(headers: Headers) -> bytes:
    value = headers.get("content-disposition")
    parsed = None if value is None else parse_disposition(value)
    if parsed is None:
        return _NIL
    return plist([string(parsed.type), _params(parsed.params, False)])


def _language(headers: Headers) -> bytes:
    """Content-Language (RFC 3282): NIL, one string, or a list of strings."""
    value = headers.get("content-language")
    if value is None:
        return _NIL
    if b"(" in value:
        value = _COMMENT.sub(b" ", value)
    tags = [string(m.group(1)) for item in value.split(b",") if (m := _TOKEN.match(item))]
    if not tags:
        return _NIL
    return tags[0] if len(tags) == 1 else plist(tags)


def _encoding(headers: Headers) -> bytes:
    value = headers.get("content-transfer-encoding")
    match = None if value is None else _TOKEN.match(value)
    return _DEFAULT_ENCODING if match is None else string(match.group(1))


def _extension(headers: Headers) -> bytes:
    """disposition, language and location: the extension data both kinds of body share."""
    return b"%s %s %s" % (
        _disposition(headers),
        _language(headers),
        nstring(headers.get("content-location")),
    )


def _write(raw: bytes, part: MimePart, ext: list[bytes], basic: list[bytes]) -> None:
    """Append ``part`` as a BODYSTRUCTURE to ``ext`` and as a BODY to ``basic``."""
    content_type = part.content_type
    headers = part.headers
    if part.is_multipart:
        ext.append(b"(")
        basic.append(b"(")
        for child in part.children:  # RFC 9051 body-type-mpart: no space between parts
            _write(raw, child, ext, basic)
        subtype = b" " + string(content_type.subtype)
        basic.append(subtype + b")")
        ext.append(
            b"%s %s %s)" % (subtype, _params(content_type.params, False), _extension(headers))
        )
        return
    text = content_type.maintype == "text"
    fields = b"(%s %s %s %s %s %s %d" % (
        string(content_type.type),
        string(content_type.subtype),
        _params(content_type.params, text),
        nstring(headers.get("content-id")),
        nstring(headers.get("content-description")),
        _encoding(headers),
        part.body_end - part.body_start,
    )
    if text:
        fields += b" %d" % raw.count(b"\n", part.body_start, part.body_end)
    ext.append(fields)
    basic.append(fields)
    if part.is_message:
        inner = part.children[0]
        head = b" " + envelope(inner.headers) + b" "
        ext.append(head)
        basic.append(head)
        _write(raw, inner, ext, basic)
        lines = b" %d" % raw.count(b"\n", part.body_start, part.body_end)
        ext.append(lines)
        basic.append(lines)
    basic.append(b")")
    ext.append(b" %s %s)" % (nstring(headers.get("content-md5")), _extension(headers)))


def body_structures(raw: bytes, root: MimePart) -> tuple[bytes, bytes]:
    """``(BODYSTRUCTURE, BODY)`` of the message ``raw`` whose MIME tree is ``root``."""
    ext: list[bytes] = []
    basic: list[bytes] = []
    _write(raw, root, ext, basic)
    return b"".join(ext), b"".join(basic)
