"""Address lists (RFC 5322 §3.4, with the obsolete forms of §4.4), as IMAP ENVELOPE needs them.

The parser accepts what real mail contains: display names quoted or not (encoded-words kept
raw), comments, ``addr (Name)``, bare addresses, groups, source routes ``<@a,@b:user@c>``,
missing domains, missing brackets or commas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from courrier.message.headers import decode_words
from courrier.message.text import decode_8bit


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address (RFC 9051 §7.5.2): ``(name adl mailbox host)``, raw octets.

    A group is a start marker (``mailbox`` is the group name, ``host`` None) followed by its
    members and an end marker (all None). An address without a domain has ``host == b""``,
    never None, which would mark a group.
    """

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None

    @property
    def is_group_start(self) -> bool:
        return self.host is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.host is None and self.mailbox is None

    @property
    def addr_spec(self) -> bytes:
        """``mailbox@host``, or the mailbox alone when there is no domain."""
        mailbox = self.mailbox or b""
        return mailbox + b"@" + self.host if self.host else mailbox


GROUP_END = Address(None, None, None, None)

_WS, _QUOTED, _LITERAL, _SPECIAL, _COMMENT, _ATOM = range(6)

# One token per match; the atom class takes every octet the others do not (8-bit included,
# RFC 6532), so any input tokenizes.
_TOKEN = re.compile(
    rb"""
      ([ \t\r\n]+)
    | "((?:[^"\\]|\\.?)*)"?
    | (\[(?:[^\]\\]|\\.?)*\]?)
    | ([<>@,;:.])
    | (\()
    | ([^ \t\r\n()<>@,;:".\[]+)
    """,
    re.S | re.X,
)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.S)

# A token: (kind, octets, preceded by whitespace or a comment)
_Token = tuple[int, bytes, bool]


def _comment_end(value: bytes, start: int) -> int:
    """Index just past the comment opening at ``start`` (nested, quoted-pairs; RFC 5322
    §3.2.2); the end of ``value`` when it is not closed."""
    depth = 0
    i = start
    n = len(value)
    while i < n:
        c = value[i]
        if c == 0x5C:
            i += 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _tokenize(value: bytes) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    n = len(value)
    space = False
    match_at = _TOKEN.match
    while pos < n:
        match = match_at(value, pos)
        if match is None:  # unreachable by construction of _TOKEN; stop rather than spin
            break
        kind = match.lastindex or 1
        if kind == 1:
            space = True
        elif kind == 5:
            end = _comment_end(value, pos)
            inner = value[pos + 1 : end - 1 if value[end - 1 : end] == b")" else end]
            tokens.append((_COMMENT, inner, space))
            space = True
            pos = end
            continue
        else:
            text = match.group(kind)
            if kind == 2 and b"\\" in text:
                text = _QUOTED_PAIR.sub(rb"\1", text)
            tokens.append((kind - 1, text, space))
            space = False
        pos = match.end()
    return tokens


def _words(tokens: list[_Token]) -> list[_Token]:
    return [t for t in tokens if t[0] != _COMMENT]


def _phrase(tokens: list[_Token]) -> bytes | None:
    """A display name: words separated by one space where the source had whitespace."""
    out = bytearray()
    for kind, text, space in tokens:
        if kind == _COMMENT:
            continue
        if space and out:
            out += b" "
        out += text
    return bytes(out) if out else None


def _joined(tokens: list[_Token]) -> bytes:
    return b"".join(t[1] for t in tokens if t[0] != _COMMENT)


def _last_comment(tokens: list[_Token]) -> bytes | None:
    for kind, text, _ in reversed(tokens):
        if kind == _COMMENT and text.strip():
            return b" ".join(text.split())
    return None


def _is_word(token: _Token) -> bool:
    return token[0] in (_ATOM, _QUOTED)


def _is_dot(token: _Token) -> bool:
    return token[0] == _SPECIAL and token[1] == b"."


def _domain(tokens: list[_Token]) -> bytes:
    """The domain after "@": atoms, dots and literals joined, up to whitespace that is not
    around a dot (RFC 5322 §4.4 allows CFWS there)."""
    out = bytearray()
    previous_dot = True
    for kind, text, space in tokens:
        is_dot = kind == _SPECIAL and text == b"."
        if space and out and not previous_dot and not is_dot:
            break
        out += text
        previous_dot = is_dot
    return bytes(out)


def _addr_spec(tokens: list[_Token]) -> tuple[bytes, bytes]:
    """(local part, domain) of tokens that should be ``local@domain``."""
    words = _words(tokens)
    for i, (kind, text, _) in enumerate(words):
        if kind == _SPECIAL and text == b"@":
            return _joined(words[:i]), _domain(words[i + 1 :])
    return _joined(words), b""


def _mailbox(before: list[_Token], angle: list[_Token] | None) -> Address | None:
    """One mailbox from the tokens before ``<`` and those inside ``<...>`` (None: no angle)."""
    if angle is not None:
        words = _words(angle)
        route: bytes | None = None
        colons = [i for i, t in enumerate(words) if t[0] == _SPECIAL and t[1] == b":"]
        if colons:  # obs-route (RFC 5322 §4.4): "@a,@b:" before the addr-spec
            route = _joined(words[: colons[-1]]) or None
            words = words[colons[-1] + 1 :]
        local, domain = _addr_spec(words)
        name = _phrase(before)
        if name is None and not local and not domain:
            return None
        return Address(name, route, local, domain)
    words = _words(before)
    if not words:
        return None
    at = next((i for i, t in enumerate(words) if t[0] == _SPECIAL and t[1] == b"@"), -1)
    if at < 0:  # no domain at all: "undisclosed-recipients", "John Doe"
        return Address(_last_comment(before), None, _phrase(words) or b"", b"")
    # The local part is the dot-atom just before "@" (dots anywhere: obs-local-part, RFC 5322
    # §4.4); words before it are a display name whose brackets were forgotten
    # ("John Doe john@example.org").
    first = at
    while first > 0:
        previous = words[first - 1]
        if _is_dot(previous) or (_is_word(previous) and (first == at or _is_dot(words[first]))):
            first -= 1
        else:
            break
    name = _phrase(words[:first]) or _last_comment(before)
    return Address(name, None, _joined(words[first:at]), _domain(words[at + 1 :]))


# The common shapes, ``addr``, ``Name <addr>`` and ``"Name" <addr>``, each followed by a comma
# or the end, take a single regular expression; anything else (groups, comments, routes,
# literals, missing parts) takes the tokenizer. Both give the same result where both apply.
_SIMPLE = re.compile(
    rb"""[ \t]*(?:
        (?:"((?:[^"\\\r\n]|\\[^\r\n])*)"|([^\s"<>@,;:()\[\]\\.]+(?:[ \t]+[^\s"<>@,;:()\[\]\\.]+)*))?
        [ \t]*<([^\s"<>@,;:()\[\]\\]+)@([^\s"<>@,;:()\[\]\\]+)>
      | ([^\s"<>@,;:()\[\]\\]+)@([^\s"<>@,;:()\[\]\\]+)
    )[ \t]*(?:,|\Z)""",
    re.X,
)


def _parse_simple(value: bytes) -> list[Address] | None:
    result: list[Address] = []
    pos = 0
    n = len(value)
    while pos < n:
        match = _SIMPLE.match(value, pos)
        if match is None:
            return None
        quoted, words, local, domain, bare_local, bare_domain = match.groups()
        if local is None:
            result.append(Address(None, None, bare_local, bare_domain))
        else:
            if quoted is not None:
                name = _QUOTED_PAIR.sub(rb"\1", quoted) if b"\\" in quoted else quoted
            else:
                name = None if words is None else b" ".join(words.split())
            result.append(Address(name or None, None, local, domain))
        pos = match.end()
    return result


def parse_address_list(value: bytes) -> list[Address]:
    """Parse an address-list header value into ENVELOPE addresses and group markers."""
    simple = _parse_simple(value)
    return simple if simple is not None else parse_address_list_full(value)


def parse_address_list_full(value: bytes) -> list[Address]:
    """``parse_address_list`` without the shortcut for common shapes: the reference parser."""
    result: list[Address] = []
    before: list[_Token] = []
    angle: list[_Token] | None = None
    angle_open = False
    in_group = False

    def flush() -> None:
        nonlocal before, angle, angle_open
        address = _mailbox(before, angle)
        if address is not None:
            result.append(address)
        before, angle, angle_open = [], None, False

    for token in _tokenize(value):
        kind, text, _ = token
        if kind != _SPECIAL:
            if angle_open and angle is not None:
                angle.append(token)
            elif angle is None:
                before.append(token)
            continue
        if angle_open and angle is not None:
            if text == b">":
                angle_open = False
            elif text == b"," and not (angle and angle[0][1] == b"@"):
                flush()  # "<a@b, c@d": a missing ">" (commas only belong in a route)
            elif text == b";" and in_group:
                flush()
                result.append(GROUP_END)
                in_group = False
            else:
                angle.append(token)
        elif text == b",":
            flush()
        elif text == b"<":
            if angle is not None:  # "<a@b> <c@d>": a missing comma
                flush()
            angle, angle_open = [], True
        elif text == b":" and not in_group and angle is None:
            result.append(Address(None, None, _phrase(before) or b"", None))
            before = []
            in_group = True
        elif text == b";" and in_group:
            flush()
            result.append(GROUP_END)
            in_group = False
        elif angle is None:
            before.append(token)
    flush()
    if in_group:
        result.append(GROUP_END)
    return result


def format_addresses(addresses: list[Address]) -> str:
    """Addresses as people read them: ``Name <addr>, addr, Group: member;`` (names decoded)."""
    out: list[str] = []
    members: list[str] | None = None
    group = ""
    for address in addresses:
        if address.is_group_start:
            group = decode_words(address.mailbox or b"")
            members = []
        elif address.is_group_end:
            if members is not None:
                out.append(f"{group}: {', '.join(members)};")
            members = None
        else:
            spec = decode_8bit(address.addr_spec)
            text = f"{decode_words(address.name)} <{spec}>" if address.name else spec
            (out if members is None else members).append(text)
    if members is not None:
        out.append(f"{group}: {', '.join(members)};")
    return ", ".join(out)
