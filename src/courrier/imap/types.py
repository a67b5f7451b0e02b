"""The IMAP command vocabulary: what the parser (:mod:`courrier.imap.parser`) produces and the
session (:mod:`courrier.imap.session`), search (:mod:`courrier.imap.search`) and fetch
(:mod:`courrier.imap.fetch`) modules consume. Plain frozen dataclasses, no behaviour beyond
resolving sequence sets.

Grammar references are to RFC 9051 (IMAP4rev2) unless said otherwise; the rev1 spellings of
RFC 3501 parse to the same values.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

# -- sequence sets ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """``sequence-set`` (§9): ranges of numbers where ``None`` stands for ``*``; or ``$``, the
    saved search result (RFC 5182 SEARCHRES)."""

    #: (first, last) pairs as written; either end may be None (``*``); ``3:1`` is kept as is.
    ranges: tuple[tuple[int | None, int | None], ...] = ()
    saved: bool = False

    def resolve(self, largest: int) -> list[int]:
        """The numbers in the set, ascending, without duplicates; ``*`` is ``largest`` (the
        highest sequence number or UID in use; 0 in an empty mailbox, where ``*`` matches
        nothing). Numbers above ``largest`` name nothing and are left out, so ``1:4294967295``
        costs what the mailbox holds, not four billion numbers."""
        wanted: set[int] = set()
        for first, last in self.ranges:
            a = largest if first is None else first
            b = largest if last is None else last
            if a > b:
                a, b = b, a
            wanted.update(range(max(a, 1), min(b, largest) + 1))
        return sorted(wanted)

    def contains(self, n: int, largest: int) -> bool:
        for first, last in self.ranges:
            a = largest if first is None else first
            b = largest if last is None else last
            if min(a, b) <= n <= max(a, b):
                return True
        return False


def format_sequence_set(numbers: Sequence[int]) -> str:
    """``1:3,7,9:10`` for [1, 2, 3, 7, 9, 10] (any order; duplicates dropped); "" if empty."""
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in _runs(sorted(set(numbers))))


def _runs(ordered: Sequence[int]) -> Iterator[tuple[int, int]]:
    start = prev = None
    for n in ordered:
        if start is None:
            start = prev = n
        elif prev is not None and n == prev + 1:
            prev = n
        else:
            assert prev is not None
            yield start, prev
            start = prev = n
    if start is not None and prev is not None:
        yield start, prev


# -- search keys (§6.4.4) ------------------------------------------------------------------


class SearchKey:
    """Base of every search key."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class AllKey(SearchKey):
    """ALL (and rev1's OLD; RECENT/NEW match nothing: courrier keeps no \\Recent)."""

    none: bool = False  # True for RECENT / NEW: matches no message


@dataclass(frozen=True, slots=True)
class RecentKey(SearchKey):
    """RFC 3501 RECENT: messages that are \\Recent in this session (NEW is RECENT UNSEEN,
    OLD is NOT RECENT). The session resolves it, as only it knows its recent messages."""


@dataclass(frozen=True, slots=True)
class FlagKey(SearchKey):
    """ANSWERED/DELETED/DRAFT/FLAGGED/SEEN (``flag`` = ``\\Answered``…), their UN- forms
    (``present`` False), KEYWORD/UNKEYWORD (``flag`` = the keyword as sent)."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class HeaderKey(SearchKey):
    """BCC/CC/FROM/SUBJECT/TO (``field`` lower-cased: "bcc", …) and HEADER field-name string.
    Matching is case-insensitive substring on the decoded field; an empty ``value`` matches
    every message that has the field."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class TextKey(SearchKey):
    """BODY (``where`` "body") or TEXT (``where`` "text": header and body)."""

    value: str
    where: Literal["body", "text"]


@dataclass(frozen=True, slots=True)
class DateKey(SearchKey):
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (``sent``: the Date
    header). Dates compare by day in the server's time zone for internal dates (§6.4.4
    "disregarding time and timezone")."""

    op: Literal["before", "on", "since"]
    date: datetime.date
    sent: bool = False


@dataclass(frozen=True, slots=True)
class AgeKey(SearchKey):
    """RFC 5032 WITHIN: OLDER/YOUNGER n seconds (internal date)."""

    op: Literal["older", "younger"]
    seconds: int


@dataclass(frozen=True, slots=True)
class SizeKey(SearchKey):
    """LARGER n / SMALLER n (RFC822.SIZE)."""

    op: Literal["larger", "smaller"]
    size: int


@dataclass(frozen=True, slots=True)
class SetKey(SearchKey):
    """A bare sequence set (message numbers) or UID set (``uid``)."""

    set: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class ModSeqKey(SearchKey):
    """RFC 7162 MODSEQ [entry-name entry-type] n: messages with MODSEQ ≥ n."""

    modseq: int


@dataclass(frozen=True, slots=True)
class NotKey(SearchKey):
    key: SearchKey


@dataclass(frozen=True, slots=True)
class OrKey(SearchKey):
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class AndKey(SearchKey):
    """A parenthesised list, or the implicit AND of the top-level keys."""

    keys: tuple[SearchKey, ...]


# -- fetch items (§6.4.5) --------------------------------------------------------------------

FetchName = Literal[
    "UID",
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",  # the non-extensible BODYSTRUCTURE
    "MODSEQ",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "PREVIEW",
    "SAVEDATE",
    "EMAILID",
    "THREADID",
]


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """A fetch item without a section. Macros (ALL, FAST, FULL) are expanded by the parser."""

    name: FetchName


@dataclass(frozen=True, slots=True)
class FetchSection:
    """BODY[…], BODY.PEEK[…], BINARY[…], BINARY.PEEK[…] and BINARY.SIZE[…].

    ``part`` is the part path (``1.2`` → (1, 2)); ``text`` the section-text: None for the
    whole (sub)part, or HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME. ``fields`` the
    header names for HEADER.FIELDS[.NOT] (upper-cased). ``partial`` (origin, count) for
    ``<origin.count>``.
    """

    part: tuple[int, ...] = ()
    text: Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"] | None = None
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None
    peek: bool = False
    binary: bool = False
    size_only: bool = False  # BINARY.SIZE


FetchItem = FetchAttr | FetchSection


# -- commands ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """Base: every command has its tag and its name (upper-cased, "UID FETCH" for UID forms)."""

    tag: str
    name: str


@dataclass(frozen=True, slots=True)
class Simple(Command):
    """CAPABILITY, NOOP, LOGOUT, STARTTLS, CHECK, CLOSE, UNSELECT, EXPUNGE, IDLE, NAMESPACE."""


@dataclass(frozen=True, slots=True)
class Login(Command):
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    mechanism: str  # upper-cased
    #: SASL-IR (RFC 4959) initial response, base64 as sent; "=" means empty; None if absent.
    initial: str | None = None


@dataclass(frozen=True, slots=True)
class Enable(Command):
    capabilities: tuple[str, ...]  # upper-cased


@dataclass(frozen=True, slots=True)
class Id(Command):
    """RFC 2971: the client's field/value pairs (None for NIL)."""

    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT / EXAMINE, with RFC 7162 CONDSTORE and QRESYNC parameters."""

    mailbox: str  # decoded (modified UTF-7 for rev1 clients, UTF-8 for rev2/UTF8=ACCEPT)
    condstore: bool = False
    #: QRESYNC (uidvalidity, modseq, known uids, (known seqs, known uids) match data).
    qresync: tuple[int, int, SequenceSet | None, tuple[SequenceSet, SequenceSet] | None] | None = (
        None
    )


@dataclass(frozen=True, slots=True)
class MailboxCommand(Command):
    """CREATE (with RFC 6154 USE), DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT."""

    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rename(Command):
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ListCommand(Command):
    """LIST (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154) and LSUB."""

    reference: str
    patterns: tuple[str, ...]
    #: selection options, upper-cased: SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE
    select: tuple[str, ...] = ()
    #: return options, upper-cased: SUBSCRIBED, CHILDREN, SPECIAL-USE; STATUS items separately
    returns: tuple[str, ...] = ()
    status: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Status(Command):
    mailbox: str
    #: upper-cased: MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN, DELETED, SIZE, RECENT,
    #: HIGHESTMODSEQ, APPENDLIMIT
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    flags: tuple[str, ...]  # as sent, e.g. ("\\Seen", "$Forwarded")
    date: datetime.datetime | None  # with its offset
    data: bytes
    #: True for the literal8 form ``~{n}`` (RFC 3516 BINARY).
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Append(Command):
    """APPEND, with RFC 3502 MULTIAPPEND: one or more messages."""

    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH with RFC 4731 ESEARCH RETURN options and RFC 5182 SAVE."""

    key: SearchKey
    charset: str | None = None
    #: None: no RETURN (classic untagged SEARCH); else upper-cased MIN MAX ALL COUNT SAVE
    #: (an empty tuple, ``RETURN ()``, means ALL).
    returns: tuple[str, ...] | None = None
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """RFC 5256 SORT: criteria upper-cased, each (key, reverse): ARRIVAL CC DATE FROM SIZE
    SUBJECT TO, RFC 5957 DISPLAYFROM DISPLAYTO."""

    criteria: tuple[tuple[str, bool], ...]
    charset: str
    key: SearchKey
    returns: tuple[str, ...] | None = None
    uid: bool = False


@dataclass(frozen=True, slots=True)
class ThreadCommand(Command):
    """RFC 5256 THREAD: algorithm REFERENCES or ORDEREDSUBJECT."""

    algorithm: str
    charset: str
    key: SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    set: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    #: RFC 7162 CHANGEDSINCE modseq, and QRESYNC's VANISHED modifier.
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class StoreFlags(Command):
    set: SequenceSet
    #: "add" (+FLAGS), "remove" (-FLAGS), "replace" (FLAGS)
    mode: Literal["add", "remove", "replace"]
    silent: bool
    flags: tuple[str, ...]
    uid: bool = False
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class CopyMove(Command):
    """COPY / MOVE (RFC 6851) and their UID forms."""

    set: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class UidExpunge(Command):
    """RFC 4315 UID EXPUNGE."""

    set: SequenceSet


@dataclass(frozen=True, slots=True)
class Compress(Command):
    """RFC 4978 COMPRESS DEFLATE."""

    mechanism: str


@dataclass(frozen=True, slots=True)
class Quota(Command):
    """RFC 9208 GETQUOTA root / SETQUOTA (refused: quotas are set by the admin)."""

    root: str


@dataclass(frozen=True, slots=True)
class Invalid(Command):
    """A line that did not parse; ``reason`` goes into the tagged BAD (tag "*" if none)."""

    reason: str = ""
