"""Answers kept in wire format: the second query of a kind is answered by copying bytes.

What this module owns: recognising, from the bytes alone and without parsing a message, a
plain query — one question (RFC 1035 §4.1.2, an uncompressed name), no answer or authority
records, at most an OPT record (RFC 6891 §6.1.2) — and the key of the answer it gets, which
depends on nothing else: the question with its name in lower case (names compare without
case, RFC 4343 §3), the RD and CD bits, whether EDNS is used with which version and DO bit,
and the size the answer must fit (UDP payload, or TCP). EDNS options (cookies, client subnet)
do not change our answers and are not part of the key.

A hit is the kept answer with the query's id and question bytes (the asker's own letter
case, RFC 4343 §4.1, which resolvers using 0x20 randomisation check) put back. The answers
are dropped whenever the zones change; their number is capped so that a flood of random
names only costs the usual work.
"""

from __future__ import annotations

from typing import Final

#: Answers kept at most; when full, all are dropped and kept anew.
MAX_KEPT: Final = 50_000
_OPT: Final = 41
_RD_CD: Final = 0x0100 | 0x0010
_OPCODE_QR: Final = 0xF800


def plain_end(wire: bytes) -> int | None:
    """Where the question of ``wire`` ends if it is a plain query, else None."""
    if len(wire) < 17 or wire[4:10] != b"\x00\x01\x00\x00\x00\x00":
        return None
    if int.from_bytes(wire[2:4], "big") & _OPCODE_QR:
        return None  # a response, or an opcode other than QUERY
    end = 12
    while True:
        length = wire[end] if end < len(wire) else 0xFF
        if length > 63:
            return None  # a compression pointer or a cut message: parsed the long way
        end += 1 + length
        if length == 0:
            break
    end += 4
    additional = wire[10:12]
    if additional == b"\x00\x00":
        return end if len(wire) == end else None
    return end if additional == b"\x00\x01" and _opt_fits(wire, end) else None


def question_type(wire: bytes, end: int) -> int:
    """The type asked by the plain query ``wire`` whose question ends at ``end``."""
    return int.from_bytes(wire[end - 4 : end - 2], "big")


def shape(
    wire: bytes, *, tcp: bool, payload: int, end: int | None = None
) -> tuple[bytes, int] | None:
    """The key of ``wire``'s answer and where its question ends, or None when it is not a
    plain query (:func:`plain_end`, unless the caller found the ``end`` already).
    ``payload``: our largest UDP answer with EDNS."""
    if end is None:
        end = plain_end(wire)
    if end is None:
        return None
    if len(wire) == end:
        edns = b"-"
        limit = 65535 if tcp else 512  # RFC 1035 §2.3.4
    else:
        # version (one octet) and the DO bit, RFC 6891 §6.1.3, RFC 3225 §3
        edns = bytes((wire[end + 6], wire[end + 7] & 0x80))
        offered = int.from_bytes(wire[end + 3 : end + 5], "big")
        limit = 65535 if tcp else max(512, min(offered, payload))  # RFC 6891 §6.2.5
    flags = int.from_bytes(wire[2:4], "big")
    question = wire[12:end].lower()
    key = b"%s|%d|%s|%d" % (question, flags & _RD_CD, edns, limit)
    return key, end


def _opt_fits(wire: bytes, end: int) -> bool:
    """An OPT record (root owner, type 41) that ends the message exactly."""
    if len(wire) < end + 11 or wire[end] != 0:
        return False
    if int.from_bytes(wire[end + 1 : end + 3], "big") != _OPT:
        return False
    return end + 11 + int.from_bytes(wire[end + 9 : end + 11], "big") == len(wire)


class Rendered:
    """Answers by key; ``get`` puts the asker's id and question into a copy."""

    def __init__(self) -> None:
        self._kept: dict[bytes, bytes] = {}

    def get(self, key: bytes, wire: bytes, end: int) -> bytes | None:
        kept = self._kept.get(key)
        if kept is None:
            return None
        return wire[:2] + kept[2:12] + wire[12:end] + kept[end:]

    def put(self, key: bytes, answer: bytes) -> None:
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[key] = answer

    def clear(self) -> None:
        self._kept.clear()
