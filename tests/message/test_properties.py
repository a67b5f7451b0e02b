"""Properties: parsing never raises and always yields well-formed IMAP data; random MIME trees
come back with their shape and leaf octets; the address shortcut agrees with the full parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.message import decode_words, parse, parse_content_type, parse_mime
from courrier.message.address import parse_address_list, parse_address_list_full
from courrier.message.mime import MimePart

# --- a reader for the IMAP data the parser produces (RFC 9051 §9: nstring, number, list) ---

Sexp = None | int | bytes | list["Sexp"]


def read(data: bytes, i: int = 0) -> tuple[Sexp, int]:
    c = data[i]
    if c == 0x28:  # "("
        items: list[Sexp] = []
        i += 1
        while data[i] != 0x29:
            if data[i] == 0x20 and items:
                i += 1
            item, i = read(data, i)
            items.append(item)
        return items, i + 1
    if data.startswith(b"NIL", i):
        return None, i + 3
    if c == 0x22:
        out = bytearray()
        i += 1
        while data[i] != 0x22:
            if data[i] == 0x5C:
                i += 1
            assert data[i] not in b"\r\n\x00" and data[i] < 0x80
            out.append(data[i])
            i += 1
        return bytes(out), i + 1
    literal = re.compile(rb"\{(\d+)\}\r\n").match(data, i)
    if literal is not None:
        end = literal.end() + int(literal.group(1))
        assert b"\x00" not in data[literal.end() : end]
        return data[literal.end() : end], end
    number = re.compile(rb"\d+").match(data, i)
    assert number is not None, data[i:]
    return int(number.group()), number.end()


def read_all(data: bytes) -> Sexp:
    value, end = read(data)
    assert end == len(data), data[end:]
    return value


def check_body(body: Sexp, extended: bool) -> None:
    """The shape RFC 9051 §9 gives ``body``, recursively."""
    assert isinstance(body, list)
    if isinstance(body[0], list):  # body-type-mpart: 1*body SP media-subtype [ext]
        count = next(i for i, b in enumerate(body) if not isinstance(b, list))
        children, rest = body[:count], body[count:]
        for child in children:
            check_body(child, extended)
        assert isinstance(rest[0], bytes)
        assert len(rest) == (5 if extended else 1)
        return
    kind, subtype, params, _id, _description, encoding, octets = body[:7]
    assert isinstance(kind, bytes) and isinstance(subtype, bytes) and isinstance(encoding, bytes)
    assert params is None or (isinstance(params, list) and len(params) % 2 == 0 and params)
    assert isinstance(octets, int)
    extra = body[7:]
    if kind.lower() == b"message" and subtype.lower() in (b"rfc822", b"global"):
        envelope, inner, lines = extra[:3]
        assert isinstance(envelope, list) and len(envelope) == 10
        check_body(inner, extended)
        assert isinstance(lines, int)
        extra = extra[3:]
    elif kind.lower() == b"text":
        assert isinstance(extra[0], int)
        extra = extra[1:]
    assert len(extra) == (4 if extended else 0)


def check_parse(raw: bytes) -> None:
    parsed = parse(raw)
    assert parsed.size == len(raw)
    envelope = read_all(parsed.envelope)
    assert isinstance(envelope, list) and len(envelope) == 10
    check_body(read_all(parsed.bodystructure), extended=True)
    check_body(read_all(parsed.body), extended=False)
    assert len(parsed.preview) <= 200
    root = parse_mime(raw)
    stack = [root]
    while stack:
        part = stack.pop()
        assert 0 <= part.header_start <= part.header_end <= part.body_start <= part.body_end
        assert part.body_end <= len(raw)
        stack.extend(part.children)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_parse_never_raises_on_bytes(raw: bytes) -> None:
    check_parse(raw)


FRAGMENTS = [
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b'Content-Type: multipart/digest; boundary="y"\n',
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: message/global\r\n",
    b"Content-Type: text/html; charset=utf-16\r\n",
    b"Content-Type: text/plain; charset*=x''%ff; name*0*=a; name*2=b\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%C3; filename*1=x\r\n",
    b"Content-Language: (c) en, , fr\r\n",
    b'From: A <a@b>, (c \\) g: d@e;, <@r:x@y>, "q\r\n',
    b"To: g:;\r\n",
    b"Subject: =?utf-8?B?w6k=?= =?utf-8?q?=C3?=\r\n",
    b"Date: Mon, 1 Jan 2026 00:00:00 +0000\r\n",
    b"--x\r\n",
    b"--x--\r\n",
    b"--y\n",
    b"\r\n",
    b"\n",
    b" folded\r\n",
    b"<p>&amp;<script>",
    b"=?",
    b"aGVsbG8=",
    b"\x00",
    b"\xff\xfe",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=12)), max_size=40))
def test_parse_never_raises_on_mime_like_junk(pieces: list[bytes]) -> None:
    check_parse(b"".join(pieces))


@given(st.binary(max_size=300))
def test_header_helpers_never_raise(value: bytes) -> None:
    decode_words(value)
    parse_content_type(value)
    parse_address_list(value)


ADDRESS_ALPHABET = b'ab.@<>,;:"()\\[] \t=?\xc3\xa9'


@settings(max_examples=500)
@given(st.lists(st.sampled_from(list(ADDRESS_ALPHABET)), max_size=40).map(bytes))
def test_address_shortcut_agrees_with_the_full_parser(value: bytes) -> None:
    assert parse_address_list(value) == parse_address_list_full(value)


WORD = st.text(alphabet="abcXYZ019=?é", min_size=1, max_size=6)


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.lists(WORD, min_size=1, max_size=3), WORD.map(lambda w: [w])),
            st.booleans(),
            WORD,
            WORD,
        ),
        max_size=5,
    )
)
def test_address_shortcut_on_common_shapes(
    items: list[tuple[list[str] | None, bool, str, str]],
) -> None:
    rendered = []
    for name, quoted, local, domain in items:
        spec = f"{local}@{domain}".replace("?", "q").replace("=", "e")
        if name is None:
            rendered.append(spec)
        elif quoted:
            rendered.append(f'"{" ".join(name)}" <{spec}>')
        else:
            rendered.append(f"{' '.join(name)} <{spec}>")
    value = ", ".join(rendered).encode()
    assert parse_address_list(value) == parse_address_list_full(value)
    assert len(parse_address_list(value)) == len(items)


# --- random MIME trees ---


@dataclass
class Leaf:
    content_type: bytes
    body: bytes


@dataclass
class Multi:
    subtype: bytes
    prefix: bytes
    children: list[Node]
    preamble: bytes
    epilogue: bytes


@dataclass
class Message:
    inner: Node


Node = Leaf | Multi | Message


def _clean(text: bytes) -> bytes:
    """Text that contains no line starting with "--" (no delimiter lookalike)."""
    text = text.replace(b"\n--", b"\n-x")
    return b"x" + text if text.startswith(b"--") else text


TEXT = st.binary(max_size=40).map(_clean)
LEAVES = st.builds(
    Leaf,
    st.sampled_from([b"text/plain", b"text/html; charset=utf-8", b"application/octet-stream"]),
    TEXT,
)
PREFIX = st.text(alphabet="abcXYZ0189'()+_,./:? -", max_size=12).map(str.encode)


def _trees(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(
            Multi,
            st.sampled_from([b"mixed", b"alternative", b"related", b"x-custom"]),
            PREFIX,
            st.lists(children, min_size=1, max_size=4),
            TEXT,
            TEXT,
        ),
        st.builds(Message, children),
    )


TREES = st.recursive(LEAVES, _trees, max_leaves=12)


class Renderer:
    def __init__(self, eol: bytes) -> None:
        self.eol = eol
        self.count = 0

    def entity(self, node: Node) -> bytes:
        """Header, empty line and body of ``node`` as a MIME entity."""
        eol = self.eol
        if isinstance(node, Leaf):
            body = node.body.rstrip(b"\r") if eol == b"\n" else node.body  # "\r\n" is ambiguous
            node.body = body
            return b"Content-Type: " + node.content_type + eol + eol + body
        if isinstance(node, Message):
            return (
                b"Content-Type: message/rfc822" + eol + eol + b"Subject: inner" + eol
            ) + self.entity(node.inner)
        self.count += 1
        # "=<n>Z" makes each boundary unique and never a prefix of another.
        boundary = node.prefix + b"=%dZ" % self.count
        out = b'Content-Type: multipart/%s; boundary="%s"' % (node.subtype, boundary) + eol + eol
        if node.preamble:
            out += node.preamble + eol
        for child in node.children:
            out += b"--" + boundary + eol + self.entity(child) + eol
        out += b"--" + boundary + b"--"
        return out + (eol + node.epilogue if node.epilogue else b"")


def same_shape(node: Node, part: MimePart, raw: bytes, body: Sexp) -> None:
    assert isinstance(body, list)
    if isinstance(node, Leaf):
        assert not part.children
        assert raw[part.body_start : part.body_end] == node.body
        assert body[6] == len(node.body)  # BODYSTRUCTURE size
        if node.content_type.startswith(b"text/"):
            assert body[7] == node.body.count(b"\n")
    elif isinstance(node, Message):
        assert part.is_message and len(part.children) == 1
        same_shape(node.inner, part.children[0], raw, body[8])
    else:
        assert part.is_multipart and part.content_type.minor == node.subtype.decode()
        assert len(part.children) == len(node.children)
        for child, child_part, child_body in zip(node.children, part.children, body, strict=False):
            same_shape(child, child_part, raw, child_body)


@settings(max_examples=300, deadline=None)
@given(TREES, st.sampled_from([b"\r\n", b"\n"]))
def test_random_mime_trees_come_back(tree: Node, eol: bytes) -> None:
    raw = b"From: a@example.org" + eol + Renderer(eol).entity(tree)
    root = parse_mime(raw)
    body = read_all(parse(raw).bodystructure)
    same_shape(tree, root, raw, body)
