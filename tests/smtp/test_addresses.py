"""Envelope address parsing: every relay spelling is refused or reduced to its real target."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courrier.smtp.addresses import AddressError, Mailbox, parse_mailbox


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Bob@Example.ORG", Mailbox("bob", "example.org")),
        ("bob@example.org.", Mailbox("bob", "example.org")),
        ("@relay.example,@other.example:bob@example.org", Mailbox("bob", "example.org")),
        ("@ours.example:victim@elsewhere.net", Mailbox("victim", "elsewhere.net")),
        ('"bob smith"@example.org', Mailbox("bob smith", "example.org")),
        ("jösé@exämple.org", Mailbox("jösé", "xn--exmple-cua.org")),
        ("bob+tag@example.org", Mailbox("bob+tag", "example.org")),
        ("postmaster@[192.0.2.1]", Mailbox("postmaster", "[192.0.2.1]", is_literal=True)),
    ],
)
def test_parse(path: str, expected: Mailbox) -> None:
    assert parse_mailbox(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "victim%elsewhere.net@example.org",  # percent hack
        "elsewhere.net!victim@example.org",  # bang path
        '"victim@elsewhere.net"@example.org',  # quoted local part with @
        '"victim%elsewhere.net"@example.org',
        "@example.org:victim%elsewhere.net@example.org",
    ],
)
def test_routing_in_the_local_part_is_relay_denied(path: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_mailbox(path)
    assert (info.value.code, info.value.enhanced) == (554, "5.7.1")


@pytest.mark.parametrize(
    "path",
    [
        "bob",
        "bob@",
        "@example.org",
        "bob@example..org",
        "bob@example.org..",
        "bob@-example.org",
        "bo b@example.org",
        "bob@exa_mple.org",
        "x" * 65 + "@example.org",
        "bob@" + "a" * 250 + ".org",
    ],
)
def test_syntax_errors(path: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_mailbox(path)
    assert info.value.code == 501


@given(st.text(max_size=300))
def test_never_raises_anything_but_address_error(path: str) -> None:
    try:
        parsed = parse_mailbox(path)
    except AddressError:
        return
    assert "@" not in parsed.local and "%" not in parsed.local and "!" not in parsed.local
    assert parsed.domain == parsed.domain.lower()
