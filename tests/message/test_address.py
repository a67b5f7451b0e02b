"""Address lists as ENVELOPE needs them (RFC 5322 §3.4, §4.4; RFC 9051 §7.5.2)."""

from __future__ import annotations

import pytest

from courrier.message import Address, format_addresses, parse_address_list
from courrier.message.address import GROUP_END, parse_address_list_full

A = Address


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"a@example.org", [A(None, None, b"a", b"example.org")]),
        (b"Alice <a@example.org>", [A(b"Alice", None, b"a", b"example.org")]),
        (b'"Doe, John" <j@x.org>', [A(b"Doe, John", None, b"j", b"x.org")]),
        (b'"say \\"hi\\"" <j@x.org>', [A(b'say "hi"', None, b"j", b"x.org")]),
        (b"John  Q.  Public <j@x.org>", [A(b"John Q. Public", None, b"j", b"x.org")]),
        (b'John "the man" Doe <j@x.org>', [A(b"John the man Doe", None, b"j", b"x.org")]),
        (b"=?utf-8?q?J=C3=B6rg?= <j@x.de>", [A(b"=?utf-8?q?J=C3=B6rg?=", None, b"j", b"x.de")]),
        (b"j@x.org (Joe Bloggs)", [A(b"Joe Bloggs", None, b"j", b"x.org")]),
        (b"Joe (nick (nested)) <j@x.org>", [A(b"Joe", None, b"j", b"x.org")]),
        (
            b"<@a.example,@b.example:u@c.example>",
            [A(None, b"@a.example,@b.example", b"u", b"c.example")],
        ),
        (b'"john doe"@x.org', [A(None, None, b"john doe", b"x.org")]),
        (b"john . doe @ x . org", [A(None, None, b"john.doe", b"x.org")]),
        (b"a@[192.0.2.1]", [A(None, None, b"a", b"[192.0.2.1]")]),
        (b"undisclosed-recipients", [A(None, None, b"undisclosed-recipients", b"")]),
        (b"Name <user>", [A(b"Name", None, b"user", b"")]),
        (b"Bounce <>", [A(b"Bounce", None, b"", b"")]),
        (b"<>", []),
        (b"", []),
        (b" , ,, ", []),
        (b"undisclosed-recipients:;", [A(None, None, b"undisclosed-recipients", None), GROUP_END]),
        (
            b"g: a@x, B <b@y>; c@z",
            [
                A(None, None, b"g", None),
                A(None, None, b"a", b"x"),
                A(b"B", None, b"b", b"y"),
                GROUP_END,
                A(None, None, b"c", b"z"),
            ],
        ),
        (
            b"open group: a@x",
            [A(None, None, b"open group", None), A(None, None, b"a", b"x"), GROUP_END],
        ),
        # Real-world junk: forgotten brackets, commas, closing brackets and quotes.
        (b"John Doe john@x.org", [A(b"John Doe", None, b"john", b"x.org")]),
        (b"<a@x> <b@y>", [A(None, None, b"a", b"x"), A(None, None, b"b", b"y")]),
        (b"A <a@x, B <b@y>", [A(b"A", None, b"a", b"x"), A(b"B", None, b"b", b"y")]),
        (b'"unterminated <a@x>', [A(None, None, b"unterminated <a@x>", b"")]),
        (b"a@x (unterminated", [A(b"unterminated", None, b"a", b"x")]),
        (b"a@b@c", [A(None, None, b"a", b"b@c")]),
        (
            b"a.@x, .b@y, c..d@z",
            [A(None, None, b"a.", b"x"), A(None, None, b".b", b"y"), A(None, None, b"c..d", b"z")],
        ),
        (b"J. R. Doe jr@x", [A(b"J. R. Doe", None, b"jr", b"x")]),
        (
            "Jörg <jörg@bücher.example>".encode(),
            [A("Jörg".encode(), None, "jörg".encode(), "bücher.example".encode())],
        ),
    ],
)
def test_parse_address_list(value: bytes, expected: list[Address]) -> None:
    assert parse_address_list(value) == expected
    assert parse_address_list_full(value) == expected


def test_group_markers() -> None:
    start, end = parse_address_list(b"team:;")
    assert start.is_group_start and not start.is_group_end
    assert end.is_group_end and not end.is_group_start
    assert not A(None, None, b"user", b"").is_group_start  # no domain is not a group


def test_format_addresses() -> None:
    addresses = parse_address_list(
        b"=?utf-8?q?J=C3=B6rg?= <j@x.de>, plain@x.org, team: a@x, b <b@y>;, open: c@z"
    )
    assert format_addresses(addresses) == (
        "Jörg <j@x.de>, plain@x.org, team: a@x, b <b@y>;, open: c@z;"
    )
    assert format_addresses([]) == ""
