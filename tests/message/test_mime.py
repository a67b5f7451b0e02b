"""The MIME tree: multipart splitting (RFC 2046 §5.1.1), defaults, limits."""

from __future__ import annotations

from courrier.message import parse, parse_mime
from courrier.message.mime import MAX_DEPTH, MAX_PARTS, MimePart


def _bodies(raw: bytes, part: MimePart) -> list[bytes]:
    return [raw[c.body_start : c.body_end] for c in part.children]


def test_delimiters_preamble_epilogue_and_line_breaks() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"preamble\r\n--x\r\n\r\none\r\n"
        b"--x  \t\r\n\r\n\r\ntwo with a blank line first\r\n\r\n"
        b"--x\r\n\r\n"  # an empty part: this CRLF belongs to the next delimiter
        b"--x\r\n"
        b"three\r\n--x--  \r\nepilogue\r\n--x\r\nnot a part\r\n"
    )
    root = parse_mime(raw)
    assert _bodies(raw, root) == [
        b"one",
        b"\r\ntwo with a blank line first\r\n",  # the last CRLF belongs to the delimiter
        b"",
        b"three",
    ]
    # "three" is no header field, so that part has neither header nor empty line
    assert [c.header_start == c.body_start for c in root.children] == [False, False, True, True]


def test_delimiter_at_the_very_start_and_bare_lf() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=x\n\n--x\n\none\n--x\n\ntwo\n--x--\n"
    assert _bodies(raw, parse_mime(raw)) == [b"one", b"two"]


def test_part_without_header_starting_with_text() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nno header here\r\n--x--"
    root = parse_mime(raw)
    (child,) = root.children
    assert raw[child.body_start : child.body_end] == b"no header here"
    assert child.content_type.minor == "plain"


def test_digest_default_and_explicit_types() -> None:
    raw = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: inner\r\n\r\nbody\r\n"
        b"--d\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
        b"--d\r\nContent-Type: invalid\r\n\r\nSubject: also a message\r\n\r\nx\r\n--d--"
    )
    root = parse_mime(raw)
    kinds = [(c.content_type.maintype, c.content_type.minor) for c in root.children]
    # RFC 2046 §5.1.5: message/rfc822 by default, also for an invalid Content-Type.
    assert kinds == [("message", "rfc822"), ("text", "plain"), ("message", "rfc822")]
    assert root.children[0].children[0].headers.get("subject") == b"inner"


def test_message_rfc822_is_parsed_whatever_its_encoding() -> None:
    raw = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdA=="
    root = parse_mime(raw)
    (inner,) = root.children
    # Base64 text is no header: the encapsulated message is all body.
    assert (inner.header_start, inner.body_start) == (root.body_start, root.body_start)
    assert parse(raw).bodystructure.startswith(
        b'("message" "rfc822" NIL NIL NIL "base64" 12 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) '
    )


def test_nesting_deeper_than_the_limit_becomes_a_leaf() -> None:
    levels = MAX_DEPTH + 50
    head = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(levels)
    )
    raw = (
        b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + head + b"--b%d\r\n\r\nleaf" % levels
    )
    root = parse_mime(raw)
    depth = 0
    part = root
    while part.children:
        part = part.children[0]
        depth += 1
    assert depth == MAX_DEPTH
    assert part.content_type.maintype == "text"  # the multipart at the limit is a leaf
    parsed = parse(raw)
    assert parsed.bodystructure.count(b'"mixed"') == MAX_DEPTH

    messages = (
        b"Content-Type: message/rfc822\r\n\r\n" * (MAX_DEPTH + 10) + b"Subject: deep\r\n\r\nx"
    )
    assert parse(messages).bodystructure.count(b'"rfc822"') == MAX_DEPTH


def test_part_count_is_limited() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"--x\r\n\r\np\r\n" * (
        MAX_PARTS + 100
    )
    root = parse_mime(raw)
    assert len(root.children) == MAX_PARTS - 1  # the root counts too
    assert parse(raw).size == len(raw)


def test_multipart_with_close_delimiter_only() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n"
    root = parse_mime(raw)
    assert root.children == [] and root.content_type.minor == "plain"


def test_same_boundary_nested_is_taken_by_the_outer() -> None:
    # RFC 2046 §5.1.1 forbids reusing a boundary inside; the outer parts win.
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\ninner\r\n--x--\r\n"
    )
    root = parse_mime(raw)
    assert len(root.children) == 2
    assert root.children[0].content_type.minor == "plain"  # nothing left to split
