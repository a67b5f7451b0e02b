"""Modified UTF-7 (RFC 3501 §5.1.3): the RFC's example, canonical round trips, and every kind
of malformed input refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courrier.imap import mutf7

# RFC 3501 §5.1.3: "~peter/mail/台北/日本語".
RFC_EXAMPLE = ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語")


def test_rfc_3501_example_decodes() -> None:
    assert mutf7.decode(RFC_EXAMPLE[0]) == RFC_EXAMPLE[1]


def test_rfc_3501_example_encodes() -> None:
    assert mutf7.encode(RFC_EXAMPLE[1]) == RFC_EXAMPLE[0]


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("", ""),
        ("INBOX", "INBOX"),
        ("&", "&-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("&&", "&-&-"),
        ("é", "&AOk-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("é&", "&AOk-&-"),  # a shift followed by "&-" is not two shifts to merge
        ("日本語", "&ZeVnLIqe-"),
        ("\U0001f600", "&2D3eAA-"),  # outside the BMP: a UTF-16 surrogate pair
        ("a\tb", "a&AAk-b"),  # controls are not printable: encoded too
        ("~/-+,", "~/-+,"),  # printable ASCII, base64 alphabet included, stands for itself
        ("\x7f", "&AH8-"),
    ],
)
def test_known_encodings(text: str, encoded: str) -> None:
    assert mutf7.encode(text) == encoded
    assert mutf7.decode(encoded) == text


def test_slash_becomes_comma_in_the_base64() -> None:
    # U+FFFF is "//8" in standard base64: the modified alphabet writes "/" as ",".
    assert mutf7.encode("\uffff") == "&,,8-"
    assert mutf7.decode("&,,8-") == "\uffff"


@pytest.mark.parametrize(
    ("encoded", "why"),
    [
        ("&", "unterminated shift"),
        ("abc&U,BTFw", "unterminated shift"),
        ("&U/BTFw-", "'/' is not in the modified base64 alphabet"),
        ("&U,BTFw=-", "padding is not written"),
        ("&A-", "a single base64 character is no octet"),
        ("&AOk", "unterminated shift"),
        ("&AOl-", "non-zero padding bits"),
        ("&AGE-", "encodes printable ASCII 'a'"),
        ("&ACY-", "encodes '&', which must be '&-'"),
        ("&AOk-&AOk-", "two adjacent shifts must be one"),
        ("&AA-", "one octet: odd UTF-16"),
        ("&AOkA-", "three octets: odd UTF-16"),
        ("&2D0-", "unpaired high surrogate"),
        ("&3gA-", "unpaired low surrogate"),
        ("caf\u00e9", "raw non-ASCII"),
        ("a\tb", "raw control character"),
        ("&Jjo!-", "'!' in the base64"),
    ],
)
def test_malformed_raise_value_error(encoded: str, why: str) -> None:
    with pytest.raises(ValueError):
        mutf7.decode(encoded)


def test_encode_refuses_lone_surrogates() -> None:
    with pytest.raises(ValueError):
        mutf7.encode("\ud800")


# Text UTF-16 can carry: every code point but the surrogates (which UTF-8 cannot carry either).
names = st.text(st.characters(codec="utf-8"), max_size=40)


@given(names)
def test_round_trip(text: str) -> None:
    encoded = mutf7.encode(text)
    assert encoded.isascii() and all(" " <= c <= "~" for c in encoded)
    assert mutf7.decode(encoded) == text


@given(names)
def test_encoding_is_canonical(text: str) -> None:
    # decode accepts only what encode produces: one spelling per name.
    encoded = mutf7.encode(text)
    assert mutf7.encode(mutf7.decode(encoded)) == encoded


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_decode_accepts_only_canonical_forms(candidate: str) -> None:
    try:
        text = mutf7.decode(candidate)
    except ValueError:
        return
    assert mutf7.encode(text) == candidate


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != "&")))
def test_printable_ascii_without_ampersand_is_unchanged(text: str) -> None:
    assert mutf7.encode(text) == text
    assert mutf7.decode(text) == text
