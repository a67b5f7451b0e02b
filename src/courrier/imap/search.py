"""SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4), its ESEARCH results (RFC 4731) and SORT (RFC 5256,
RFC 5957): which messages of the selected mailbox a search key matches, and in what order.
THREAD lives in :mod:`courrier.imap.thread`; its entry points are re-exported here.

This module owns the meaning of every search key and sort criterion. It does no I/O of its own:
it gets the mailbox's message rows, and async callables for what the rows do not hold (a
message's stored octets, the full-text index's candidates). Keys the rows answer are evaluated
first, as plain Python predicates over the rows; the octets of a message are read only for the
keys that need them, and only for the messages the other keys left.

Matching rules chosen here:

- Strings match as case-insensitive substrings: both sides are compared after ``str.casefold``
  (full Unicode case folding, close to the i;unicode-casemap collation of RFC 5051).
- FROM, TO, CC, BCC and SUBJECT match the row's decoded text (``Name <addr>, ...``). HEADER on
  those and on Message-ID, In-Reply-To and References uses the row too (RFC 5322 §3.6 allows
  each field at most once); any other field is looked up in the message's header, unfolded and
  with RFC 2047 words decoded. Every occurrence of the field counts. An empty string matches the
  messages that have the field (RFC 9051 §6.4.4 HEADER).
- TEXT matches the decoded header fields (``Name: value`` lines) and the decoded text of the
  text parts (HTML reduced to text), BODY the latter only: what ``courrier.message.parse``
  gives as ``headers_text`` and ``text``. See ``index_words`` for when the full-text index may
  narrow the messages to read.
- BEFORE/ON/SINCE compare the calendar day of the internal date in the server's time zone;
  SENTBEFORE/SENTON/SENTSINCE the day of the Date field in its own offset, or the internal date
  (in the server's zone) when a message has no readable Date, as Dovecot does.
- OLDER n matches messages at least n seconds old, YOUNGER n those younger: complements of one
  another (RFC 5032 leaves the exact boundary open).
"""

from __future__ import annotations

import datetime
import re
from bisect import bisect_right
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from courrier.imap.thread import ThreadNode, casemap, format_threads, thread
from courrier.imap.types import (
    AgeKey,
    AllKey,
    AndKey,
    DateKey,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    NotKey,
    OrKey,
    RecentKey,
    SearchKey,
    SequenceSet,
    SetKey,
    SizeKey,
    TextKey,
    format_sequence_set,
)
from courrier.message import Headers, decode_words, parse, parse_headers, split_header
from courrier.message.text import decode_8bit
from courrier.store.models import FLAG_NAMES, Message

__all__ = [
    "ColumnCandidates",
    "SearchContext",
    "TextCandidates",
    "ThreadNode",
    "Whole",
    "candidates",
    "column_pieces",
    "columns",
    "display_address",
    "esearch_data",
    "format_threads",
    "index_pieces",
    "index_words",
    "search",
    "sent_time",
    "sort",
    "sort_address",
    "thread",
]

_UTC = datetime.UTC


#: How many stored messages a search reads per store call, and about how many octets.
READ_BATCH = 64
READ_BATCH_OCTETS = 1 << 20


@dataclass
class SearchContext:
    """What a search may look at, for one selected mailbox."""

    #: The mailbox's messages in sequence-number order: sequence number n is ``messages[n - 1]``.
    messages: Sequence[Message]
    #: The stored messages (as FETCH BODY[] returns them), in the order given; only called for
    #: keys the row cannot answer, with at most :data:`READ_BATCH` messages (or about
    #: :data:`READ_BATCH_OCTETS`) at a time, never concurrently.
    read: Callable[[Sequence[Message]], Awaitable[list[bytes]]]
    #: The full-text index's candidates for a TEXT/BODY string, given as its
    #: :func:`index_words` and :func:`index_pieces` ("body": the body text only; "text":
    #: header and body text): a superset of the UIDs that match, or None when the index
    #: cannot narrow it down.
    text_candidates: TextCandidates
    #: The saved search result ``$`` (RFC 5182), as UIDs.
    saved: Sequence[int] = ()
    #: The server's time zone, for the day of internal dates (BEFORE, ON, SINCE).
    tz: datetime.tzinfo = _UTC
    #: Now, in epoch seconds, for OLDER and YOUNGER (RFC 5032).
    now: float = 0.0
    #: When ``messages`` holds only the store's candidates (:func:`candidates`) rather than
    #: the whole mailbox: what sequence sets need to know of the rest.
    whole: Whole | None = None


@dataclass(frozen=True)
class Whole:
    """The selected mailbox, for a search given only some of its messages."""

    #: Its message count: the sequence number "*" stands for.
    count: int
    #: Its highest UID: the UID "*" stands for (RFC 9051 §6.4.8), 0 when empty.
    highest_uid: int
    #: The sequence number of a message, by UID.
    seq_of: Callable[[int], int]


async def search(key: SearchKey, ctx: SearchContext) -> list[Message]:
    """The messages of ``ctx.messages`` that ``key`` matches, in sequence-number order."""
    messages = ctx.messages
    compiled = _Compiler(ctx).compile(key)
    if isinstance(compiled, _Filter):
        found = await compiled.run(list(range(len(messages))))
        return [messages[i] for i in found]
    return [m for m in messages if compiled(m)]


# -- ESEARCH (RFC 4731 §3.1) ------------------------------------------------------------------


def esearch_data(numbers: Sequence[int], returns: Sequence[str]) -> str:
    """The search-return-data of an ESEARCH response: ``MIN 2 MAX 9 COUNT 4 ALL 2:3,7,9``.

    ``numbers`` are the matching sequence numbers or UIDs (any order); ``returns`` the RETURN
    options, upper-cased (empty means ALL; SAVE alone gives nothing, RFC 5182 §2.4). With no
    match, MIN, MAX and ALL are left out and only ``COUNT 0`` remains if asked for (RFC 4731
    §3.1). Items come in the order MIN, MAX, COUNT, ALL.
    """
    wanted = {r.upper() for r in returns} or {"ALL"}
    items: list[str] = []
    if numbers:
        if "MIN" in wanted:
            items.append(f"MIN {min(numbers)}")
        if "MAX" in wanted:
            items.append(f"MAX {max(numbers)}")
    if "COUNT" in wanted:
        items.append(f"COUNT {len(set(numbers))}")
    if numbers and "ALL" in wanted:
        items.append(f"ALL {format_sequence_set(numbers)}")
    return " ".join(items)


# -- the full-text index: when it may narrow a TEXT/BODY search --------------------------------

#: Runs of characters that every tokeniser of the index (SQLite FTS5 unicode61, PostgreSQL's
#: default parser) and Python's case folding treat alike.
_ASCII_RUN = re.compile(r"[a-z0-9]+")
_ASCII_SPACE = frozenset(" \t\r\n")
#: Pairs that full case folding makes out of one non-ASCII character (ß ẞ → ss; the ligatures
#: ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ): the text's word may hold that character, which the index keeps as it is.
_FOLDED_PAIRS = ("ss", "ff", "fi", "fl", "st")
#: Letters that full case folding puts before a combining mark (İ → i̇, ǰ ẖ ẗ ẘ ẙ ẚ): a run ending
#: with one may match a word that has the precomposed character there.
_FOLDED_LEADS = frozenset("ijhtwya")


def index_words(value: str) -> list[str]:
    """The word prefixes of a TEXT/BODY string that the full-text index can answer for.

    The index finds messages with, for each query word, an indexed word *starting* with it; an
    IMAP string matches anywhere, even inside a word ("ello" in "Hello"). So only a run that is
    sure to start a word of a matching text is used: a run of ASCII letters and digits preceded,
    in the string, by ASCII white space (the text then has white space there too, which splits
    words for every tokeniser, where ``.``, ``@`` or ``/`` may not). The run is cut before any of
    ``_FOLDED_PAIRS`` and loses a last letter in ``_FOLDED_LEADS``, so that case folding cannot
    make the text match where the index's own folding does not; runs left shorter than two
    letters filter too little to be worth a query. An empty list means the index cannot help:
    every message must be read.

    Left out, knowingly: the Kelvin sign and the long s, which fold to a plain "k" and "s";
    and text the index leaves out (PostgreSQL's parser drops tag-like ``<a b=c>`` spans).
    """
    folded = value.casefold()
    words: list[str] = []
    for match in _ASCII_RUN.finditer(folded):
        start = match.start()
        if start == 0 or folded[start - 1] not in _ASCII_SPACE:
            continue
        word = match.group()
        cuts = [p for p in (word.find(pair) for pair in _FOLDED_PAIRS) if p >= 0]
        if cuts:
            word = word[: min(cuts)]
        elif word[-1] in _FOLDED_LEADS:
            word = word[:-1]
        if len(word) >= 2 and word not in words:
            words.append(word)
    return words


#: Letters that may be the second or first half of a pair that full case folding makes of
#: one character (ß → ss, ﬁ → fi, ﬃ → ffi, ﬆ → st, ŉ → ʼn…): at a run's start or end they may
#: stand for half of a character the index keeps whole.
_PAIR_TAILS = frozenset("sfilnt")
_PAIR_HEADS = frozenset("sf")


def index_pieces(value: str) -> list[str]:
    """The substrings of a TEXT/BODY string that every matching text holds as the trigram
    index sees it (lower case, each character kept whole), at least three letters long.

    Each run of ASCII letters and digits of the case-folded string is cut where full case
    folding could have made the text's characters (``_FOLDED_PAIRS``), loses a first letter
    that may be the second half of such a pair and a last one that may be the first half or
    a letter ``_FOLDED_LEADS`` puts before a combining mark. Unlike :func:`index_words`, a run
    may sit anywhere in a word: the trigram index finds substrings. An empty list means the
    index cannot help. Left out, knowingly, as in :func:`index_words`: the long s.
    """
    folded = value.casefold()
    pieces: list[str] = []
    for match in _ASCII_RUN.finditer(folded):
        run = match.group()
        cut = [False] * len(run)
        for pair in _FOLDED_PAIRS:
            at = run.find(pair)
            while at >= 0:
                cut[at] = cut[at + 1] = True
                at = run.find(pair, at + 1)
        start = 0
        for end in [*(i for i, c in enumerate(cut) if c), len(run)]:
            piece = run[start:end]
            start = end + 1
            if piece and piece[0] in _PAIR_TAILS:
                piece = piece[1:]
            if piece and (piece[-1] in _PAIR_HEADS or piece[-1] in _FOLDED_LEADS):
                piece = piece[:-1]
            if len(piece) >= 3 and piece not in pieces:
                pieces.append(piece)
    return pieces


def column_pieces(value: str) -> list[str]:
    """The substrings of a SUBJECT/FROM/TO/CC/BCC string that every matching row value holds
    when compared character by character, ASCII case aside (SQL LIKE): the
    :func:`index_pieces`, also cut at "k" and "s", which the Kelvin sign and the long s fold
    to. Two letters or more; an empty list means the rows must all be read."""
    found: list[str] = []
    for piece in index_pieces(value):
        for part in _KS.split(piece):
            if len(part) >= 2 and part not in found:
                found.append(part)
    return found


_KS = re.compile("[ks]")

TextCandidates = Callable[
    [Sequence[str], Sequence[str], Literal["body", "text"]], Awaitable[set[int] | None]
]
ColumnCandidates = Callable[[str, Sequence[str]], Awaitable[set[int]]]


async def candidates(
    key: SearchKey, text: TextCandidates, column: ColumnCandidates
) -> set[int] | None:
    """UIDs the store says may match ``key``, found before any row is read (a superset, to be
    checked by :func:`search`), or None when the store cannot narrow the search.

    What the store answers in one query: TEXT and BODY through the full-text index (``text``,
    as :attr:`SearchContext.text_candidates`), SUBJECT, FROM, TO, CC and BCC by the decoded
    value in the row (``column``: the store's column and the :func:`column_pieces`). AND
    narrows to what all of its parts that narrow agree on, OR to the union when both sides
    narrow; NOT, and every other key, does not narrow.
    """
    if isinstance(key, AndKey):
        found: set[int] | None = None
        for part in key.keys:
            narrowed = await candidates(part, text, column)
            if narrowed is not None:
                found = narrowed if found is None else found & narrowed
                if not found:
                    break
        return found
    if isinstance(key, OrKey):
        left = await candidates(key.left, text, column)
        if left is None:
            return None
        right = await candidates(key.right, text, column)
        return None if right is None else left | right
    if isinstance(key, TextKey):
        words, pieces = index_words(key.value), index_pieces(key.value)
        return await text(words, pieces, key.where) if words or pieces else None
    if isinstance(key, HeaderKey):
        row = _ROW_FIELDS.get(key.field.lower())
        if row is None or not row[1]:
            return None  # not a row field, or one kept undecoded
        pieces = column_pieces(key.value)
        return await column(_COLUMN_OF.get(row[0], row[0]), pieces) if pieces else None
    return None


# -- compiling a key -----------------------------------------------------------------------------

#: A key the rows answer alone.
_Pred = Callable[[Message], bool]


@dataclass
class _Filter:
    """A key that needs more than the row: narrows a list of message positions (indexes into
    ``SearchContext.messages``, ascending) to those it matches, keeping their order."""

    run: Callable[[list[int]], Awaitable[list[int]]]
    #: 1: reads message headers; 2: reads messages the index picked; 3: reads every message.
    cost: int


_Compiled = _Pred | _Filter

#: Row fields for HEADER: (attribute, whether the row value is the decoded field value as is).
#: The address fields hold the parsed form, the ID fields the raw text (which RFC 2047 words
#: would change, so those rows decide only when they have none).
_ROW_FIELDS: dict[str, tuple[str, bool]] = {
    "subject": ("subject", True),
    "from": ("from_", True),
    "to": ("to", True),
    "cc": ("cc", True),
    "bcc": ("bcc", True),
    "message-id": ("message_id", False),
    "in-reply-to": ("in_reply_to", False),
    "references": ("references", False),
}


#: Row attribute → the store's column (where the two names differ).
_COLUMN_OF = {"to": "to_", "references": "references_"}


def columns(key: SearchKey) -> frozenset[str] | None:
    """The content columns of the message rows that matching ``key`` reads (see
    ``Store.list_messages``); None for all of them. Flags, sizes, UIDs and internal dates are
    always in the rows."""
    if isinstance(key, AndKey | OrKey):
        found: set[str] = set()
        for part in key.keys if isinstance(key, AndKey) else (key.left, key.right):
            wanted = columns(part)
            if wanted is None:
                return None
            found |= wanted
        return frozenset(found)
    if isinstance(key, NotKey):
        return columns(key.key)
    if isinstance(key, HeaderKey):
        row = _ROW_FIELDS.get(key.field.lower())
        return frozenset() if row is None else frozenset((_COLUMN_OF.get(row[0], row[0]),))
    if isinstance(key, TextKey):
        return frozenset(("subject",))
    if isinstance(key, DateKey):
        return frozenset(("envelope", "sent_date")) if key.sent else frozenset()
    if isinstance(key, AllKey | RecentKey | FlagKey | SizeKey | ModSeqKey | AgeKey | SetKey):
        return frozenset()
    return None


def _true(m: Message) -> bool:
    return True


def _false(m: Message) -> bool:
    return False


class _Compiler:
    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx
        self.messages = ctx.messages
        self._headers: dict[int, Headers] = {}

    def compile(self, key: SearchKey) -> _Compiled:
        if isinstance(key, AndKey):
            return self._and([self.compile(k) for k in key.keys])
        if isinstance(key, OrKey):
            return self._or(self.compile(key.left), self.compile(key.right))
        if isinstance(key, NotKey):
            return self._not(self.compile(key.key))
        if isinstance(key, AllKey):
            return _false if key.none else _true
        if isinstance(key, FlagKey):
            return _flag(key)
        if isinstance(key, SizeKey):
            size = key.size
            if key.op == "larger":
                return lambda m: m.size > size
            return lambda m: m.size < size
        if isinstance(key, ModSeqKey):
            modseq = key.modseq
            return lambda m: m.modseq >= modseq
        if isinstance(key, AgeKey):
            limit = self.ctx.now - key.seconds
            if key.op == "older":
                return lambda m: m.internal_date <= limit
            return lambda m: m.internal_date > limit
        if isinstance(key, SetKey):
            return self._set(key)
        if isinstance(key, DateKey):
            return _date(key, self.ctx.tz)
        if isinstance(key, HeaderKey):
            return self._header(key)
        if isinstance(key, TextKey):
            return self._text(key)
        raise TypeError(f"unknown search key {key!r}")

    # -- combinations: row predicates first, then filters from the cheapest -------------------

    def _and(self, parts: list[_Compiled]) -> _Compiled:
        preds = [p for p in parts if not isinstance(p, _Filter)]
        filters = sorted((p for p in parts if isinstance(p, _Filter)), key=lambda f: f.cost)
        pred = _all_of(preds)
        if not filters:
            return pred
        messages = self.messages

        async def run(positions: list[int]) -> list[int]:
            if pred is not _true:
                positions = [i for i in positions if pred(messages[i])]
            for f in filters:
                if not positions:
                    break
                positions = await f.run(positions)
            return positions

        return _Filter(run, max(f.cost for f in filters))

    def _or(self, left: _Compiled, right: _Compiled) -> _Compiled:
        if not isinstance(left, _Filter) and not isinstance(right, _Filter):
            return lambda m: left(m) or right(m)
        first, second = self._as_filter(left), self._as_filter(right)
        if second.cost < first.cost:
            first, second = second, first

        async def run(positions: list[int]) -> list[int]:
            matched = await first.run(positions)
            if len(matched) == len(positions):
                return matched
            seen = set(matched)
            rest = await second.run([i for i in positions if i not in seen])
            seen.update(rest)
            return [i for i in positions if i in seen]

        return _Filter(run, max(first.cost, second.cost))

    def _not(self, inner: _Compiled) -> _Compiled:
        if not isinstance(inner, _Filter):
            if inner is _true:
                return _false
            if inner is _false:
                return _true
            return lambda m: not inner(m)

        async def run(positions: list[int]) -> list[int]:
            matched = set(await inner.run(positions))
            return [i for i in positions if i not in matched]

        return _Filter(run, inner.cost)

    def _as_filter(self, part: _Compiled) -> _Filter:
        if isinstance(part, _Filter):
            return part
        messages = self.messages

        async def run(positions: list[int]) -> list[int]:
            return [i for i in positions if part(messages[i])]

        return _Filter(run, 0)

    # -- sequence sets (RFC 9051 §9 sequence-set, RFC 5182 "$") ---------------------------------

    def _set(self, key: SetKey) -> _Pred:
        if key.set.saved:
            saved = frozenset(self.ctx.saved)
            return lambda m: m.uid in saved
        messages = self.messages
        whole = self.ctx.whole
        if key.uid:
            # "*" is the highest UID in use (§6.4.8); 0 in an empty mailbox.
            if whole is not None:
                largest = whole.highest_uid
            else:
                largest = max((m.uid for m in messages), default=0)
            return _interval_pred(key.set, largest, lambda m: m.uid)
        if whole is not None:
            seq_of = whole.seq_of
            return _interval_pred(key.set, whole.count, lambda m: seq_of(m.uid))
        # Sequence numbers: the positions, resolved once ("*" is the last message).
        count = len(messages)
        chosen: set[int] = set()
        for lo, hi in _intervals(key.set, count):
            for i in range(max(lo, 1) - 1, min(hi, count)):
                chosen.add(id(messages[i]))
        return lambda m: id(m) in chosen

    # -- header fields -------------------------------------------------------------------------

    def _header(self, key: HeaderKey) -> _Compiled:
        name = key.field.lower()
        needle = key.value.casefold()
        row = _ROW_FIELDS.get(name)
        if row is not None:
            attr, decoded = row
            if needle and decoded:  # the common case: a pure row predicate
                return lambda m: needle in getattr(m, attr).casefold()

            def decide(m: Message) -> bool | None:
                value: str = getattr(m, attr)
                if not value:
                    # Absent, empty or unreadable: only the header knows if the field is there.
                    return False if needle else None
                if not decoded and "=?" in value:
                    return None
                return needle in value.casefold()

            return self._raw_header_filter(name, needle, decide)
        return self._raw_header_filter(name, needle, None)

    def _raw_header_filter(
        self, name: str, needle: str, decide: Callable[[Message], bool | None] | None
    ) -> _Filter:
        messages = self.messages

        async def run(positions: list[int]) -> list[int]:
            found: list[int] = []
            unsure: list[int] = []
            for i in positions:
                verdict = None if decide is None else decide(messages[i])
                if verdict is None:
                    unsure.append(i)
                elif verdict:
                    found.append(i)
            async for i, headers in self._header_blocks(unsure):
                values = headers.get_all(name)
                if values and (
                    not needle or any(needle in decode_words(v).casefold() for v in values)
                ):
                    found.append(i)
            found.sort()
            return found

        return _Filter(run, 1)

    async def _header_blocks(self, positions: list[int]) -> AsyncIterator[tuple[int, Headers]]:
        """The parsed header block of each message at ``positions`` (kept for later keys)."""
        cache = self._headers
        async for i, raw in self._contents([i for i in positions if i not in cache]):
            header_end, _ = split_header(raw, 0, len(raw))
            cache[i] = parse_headers(raw, 0, header_end)
        for i in positions:
            yield i, cache[i]

    async def _contents(self, positions: list[int]) -> AsyncIterator[tuple[int, bytes]]:
        """The stored messages at ``positions``, in order, read a batch at a time."""
        messages = self.messages
        batch: list[int] = []
        octets = 0
        for n, i in enumerate(positions, 1):
            batch.append(i)
            octets += messages[i].size
            if len(batch) >= READ_BATCH or octets >= READ_BATCH_OCTETS or n == len(positions):
                contents = await self.ctx.read([messages[j] for j in batch])
                for j, raw in zip(batch, contents, strict=True):
                    yield j, raw
                batch, octets = [], 0

    # -- TEXT and BODY -------------------------------------------------------------------------

    def _text(self, key: TextKey) -> _Compiled:
        needle = key.value.casefold()
        if not needle:
            return _true  # the empty string is in every text
        where = key.where
        words = index_words(key.value)
        pieces = index_pieces(key.value)
        messages = self.messages
        ctx = self.ctx

        async def run(positions: list[int]) -> list[int]:
            found: list[int] = []
            unsure: list[int] = []
            for i in positions:
                # TEXT: the decoded Subject is one of the header lines TEXT looks at.
                if where == "text" and needle in messages[i].subject.casefold():
                    found.append(i)
                else:
                    unsure.append(i)
            if unsure and (words or pieces):
                allowed = await ctx.text_candidates(words, pieces, where)
                if allowed is not None:
                    unsure = [i for i in unsure if messages[i].uid in allowed]
            async for i, raw in self._contents(unsure):
                parsed = parse(raw)
                if needle in parsed.text.casefold() or (
                    where == "text" and needle in parsed.headers_text.casefold()
                ):
                    found.append(i)
            found.sort()
            return found

        return _Filter(run, 2 if words or pieces else 3)


def _all_of(preds: list[_Pred]) -> _Pred:
    preds = [p for p in preds if p is not _true]
    if any(p is _false for p in preds):
        return _false
    if not preds:
        return _true
    combined = preds[0]
    for nxt in preds[1:]:
        combined = _and2(combined, nxt)
    return combined


def _and2(a: _Pred, b: _Pred) -> _Pred:
    return lambda m: a(m) and b(m)


def _flag(key: FlagKey) -> _Pred:
    name = key.flag.lower()
    present = key.present
    system = FLAG_NAMES.get(name)
    if system is not None:
        bit = system
        if present:
            return lambda m: bool(m.flags & bit)
        return lambda m: not m.flags & bit
    if name == "\\recent":  # courrier keeps no \Recent (RFC 9051 drops it)
        return _false if present else _true
    # Keywords are atoms compared without regard to case (RFC 9051 §2.3.2).
    if present:
        return lambda m: any(k.lower() == name for k in m.keywords)
    return lambda m: all(k.lower() != name for k in m.keywords)


def _intervals(seqset: SequenceSet, largest: int) -> list[tuple[int, int]]:
    """The set's ranges as merged, ascending (lo, hi) pairs; ``*`` is ``largest``."""
    pairs = sorted(
        (min(a, b), max(a, b))
        for a, b in (
            (largest if first is None else first, largest if last is None else last)
            for first, last in seqset.ranges
        )
    )
    merged: list[tuple[int, int]] = []
    for lo, hi in pairs:
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _interval_pred(seqset: SequenceSet, largest: int, number: Callable[[Message], int]) -> _Pred:
    merged = _intervals(seqset, largest)
    if not merged:
        return _false
    if len(merged) == 1:
        lo, hi = merged[0]
        return lambda m: lo <= number(m) <= hi
    starts = [lo for lo, _ in merged]
    ends = [hi for _, hi in merged]

    def contains(m: Message) -> bool:
        n = number(m)
        at = bisect_right(starts, n) - 1
        return at >= 0 and n <= ends[at]

    return contains


# -- dates (RFC 9051 §6.4.4: "disregarding time and timezone") ---------------------------------

_EPOCH = datetime.date(1970, 1, 1)


def _local_day(seconds: float, tz: datetime.tzinfo) -> datetime.date:
    try:
        return datetime.datetime.fromtimestamp(seconds, tz).date()
    except (OverflowError, OSError, ValueError):
        return _EPOCH + datetime.timedelta(days=int(seconds // 86400))


def _date(key: DateKey, tz: datetime.tzinfo) -> _Pred:
    day = key.date
    op = key.op

    def test(found: datetime.date) -> bool:
        if op == "before":
            return found < day
        if op == "on":
            return found == day
        return found >= day

    if not key.sent:
        return lambda m: test(_local_day(m.internal_date, tz))
    ordinal = (day - _EPOCH).days

    def sent(m: Message) -> bool:
        t = m.sent_date
        if t is None:
            return test(_local_day(m.internal_date, tz))
        # The Date field's offset is under a day (``parse`` refuses others), so its own day is
        # one of those the instant has somewhere within a day either side. Only when that
        # range reaches the asked day is the field itself read (from the ENVELOPE).
        if (t + 86399) // 86400 < ordinal or (t - 86399) // 86400 > ordinal:
            return test(_EPOCH + datetime.timedelta(days=t // 86400))
        return test(_sent_day(m.envelope, t))

    return sent


def sent_time(m: Message) -> int:
    """The sent date for SORT and THREAD: the Date field, else the internal date (RFC 5256
    §2.2 and §3)."""
    return m.internal_date if m.sent_date is None else m.sent_date


# -- ENVELOPE: the row's copy of Date and of the address lists ---------------------------------

_Item = bytes | None | list["_Item"]
_QUOTED_PAIR = re.compile(rb"\\(.)", re.S)


# One token of the IMAP list syntax (RFC 9051 §4): a parenthesis, NIL, a quoted string or a
# literal's announcement (its octets follow).
_TOKEN = re.compile(rb' *(?:(\()|(\))|(NIL)|"((?:[^"\\]|\\.)*)"|\{(\d+)\}\r\n)', re.S)


def _parse_envelope(data: bytes, items: int = 10) -> list[_Item] | None:
    """Read the IMAP list syntax of an ENVELOPE (RFC 9051 §7.5.2): lists, NIL, quoted strings
    and literals; stop once the first ``items`` top-level items are read. None when
    malformed."""
    stack: list[list[_Item]] = []
    pos = 0
    while True:
        token = _TOKEN.match(data, pos)
        if token is None:
            return None
        pos = token.end()
        opening, closing, nil, quoted, literal = token.groups()
        if opening is not None:
            new: list[_Item] = []
            if stack:
                stack[-1].append(new)
            stack.append(new)
            continue
        if not stack:
            return None
        if closing is not None:
            done = stack.pop()
            if not stack:
                return done
        elif nil is not None:
            stack[-1].append(None)
        elif quoted is not None:
            stack[-1].append(_QUOTED_PAIR.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
        else:
            end = pos + int(literal)
            if end > len(data):
                return None
            stack[-1].append(data[pos:end])
            pos = end
        if len(stack) == 1 and len(stack[0]) >= items:
            return stack[0]


_FIRST_QUOTED = re.compile(rb'\("((?:[^"\\]|\\.)*)"', re.S)
_FIRST_LITERAL = re.compile(rb"\(\{(\d+)\}\r\n")


def _envelope_date_field(envelope: bytes) -> bytes | None:
    """The first item of an ENVELOPE: the Date field as written; None for NIL or junk."""
    quoted = _FIRST_QUOTED.match(envelope)
    if quoted is not None:
        value = quoted.group(1)
        return _QUOTED_PAIR.sub(rb"\1", value) if b"\\" in value else value
    literal = _FIRST_LITERAL.match(envelope)
    if literal is not None:
        start = literal.end()
        return envelope[start : start + int(literal.group(1))]
    return None


# RFC 5322 §3.3: the zone after the time of day, as ``courrier.message.parse`` reads it.
_ZONE = re.compile(rb"\d\d?:\d\d(?::\d\d)?\s+([+-])(\d\d)(\d\d)(?![0-9])")


def _sent_day(envelope: bytes, sent: int) -> datetime.date:
    """The day of the Date field in its own offset, for a message sent at ``sent`` (epoch)."""
    value = _envelope_date_field(envelope)
    if value is not None:
        zone = _ZONE.search(value)
        if zone is not None:  # the usual numeric zone: no need to parse the date again
            minutes = int(zone.group(2)) * 60 + int(zone.group(3))
            if minutes < 1440:
                offset = -minutes if zone.group(1) == b"-" else minutes
                return _EPOCH + datetime.timedelta(days=(sent + offset * 60) // 86400)
        # Obsolete zone names (RFC 5322 §4.3): the same reading as the row's sent_date.
        own = parse(b"Date: " + value + b"\r\n\r\n").sent_date
        if own is not None:
            return own.date()
    return _EPOCH + datetime.timedelta(days=sent // 86400)


#: The address fields SORT looks at: their place in the ENVELOPE (RFC 9051 §7.5.2), the row's
#: decoded text of the field and the row's stored RFC 5256 sort key.
_ADDRESS_FIELDS: dict[str, tuple[int, str, str]] = {
    "from": (2, "from_", "sort_from"),
    "to": (5, "to", "sort_to"),
    "cc": (6, "cc", "sort_cc"),
}


def _first_address(envelope: bytes, index: int) -> list[_Item] | None:
    """The first address of the ENVELOPE's address list at ``index``, as its four items
    ``[name, adl, mailbox, host]``: a mailbox, or the start of a group (host NIL, the group's
    name as mailbox); None when the list is NIL or holds no such entry."""
    fields = _parse_envelope(envelope, index + 1)
    addresses = fields[index] if fields is not None and len(fields) > index else None
    if not isinstance(addresses, list):
        return None
    for address in addresses:
        if isinstance(address, list) and len(address) >= 4 and address[2] is not None:
            return address
    return None


def sort_address(m: Message, which: Literal["from", "to", "cc"]) -> str:
    """RFC 5256 §3 FROM/TO/CC key: the addr-mailbox of the first address of the field, as the
    ENVELOPE has it; for a group (``To: team: a@x, b@y;``) that is the group's start, whose
    mailbox is the group's name (RFC 9051 §7.5.2), as in Dovecot. "" without an address.

    The row's stored key (``Message.sort_from`` ...) is the first mailbox *outside* groups:
    the same whenever the field starts with no group, which its decoded text tells (a group is
    written ``name: members;``, so a text without ``:`` has none); the ENVELOPE is read only
    for the others.
    """
    index, text_attr, key_attr = _ADDRESS_FIELDS[which]
    if ":" not in getattr(m, text_attr):
        return str(getattr(m, key_attr))
    address = _first_address(m.envelope, index)
    if address is None:
        return ""
    mailbox, host = address[2], address[3]
    if not isinstance(mailbox, bytes):
        return ""
    return decode_8bit(mailbox) if isinstance(host, bytes) else decode_words(mailbox)


def display_address(envelope: bytes, which: Literal["from", "to"]) -> str:
    """RFC 5957 §2 DISPLAYFROM/DISPLAYTO key: the display name of the first address of From
    (or To) when it has a non-empty one, else its addr-spec; a group's name when the field
    starts with a group (as Dovecot sorts); "" without an address."""
    address = _first_address(envelope, _ADDRESS_FIELDS[which][0])
    if address is None:
        return ""
    name, _, mailbox, host = address[:4]
    if not isinstance(host, bytes):  # the start of a group: its name
        return decode_words(mailbox).strip() if isinstance(mailbox, bytes) else ""
    if isinstance(name, bytes):
        display = decode_words(name).strip()
        if display:
            return display
    local = decode_8bit(mailbox) if isinstance(mailbox, bytes) else ""
    return f"{local}@{decode_8bit(host)}" if host else local


# -- SORT (RFC 5256 §3, RFC 5957) ---------------------------------------------------------------


_SORT_KEYS: dict[str, Callable[[Message], int | str]] = {
    "ARRIVAL": lambda m: m.internal_date,
    "DATE": sent_time,
    "SIZE": lambda m: m.size,
    # Text compares by i;unicode-casemap (RFC 5051), approximated by ``casemap``.
    "SUBJECT": lambda m: casemap(m.sort_subject),
    "FROM": lambda m: casemap(sort_address(m, "from")),
    "TO": lambda m: casemap(sort_address(m, "to")),
    "CC": lambda m: casemap(sort_address(m, "cc")),
    "DISPLAYFROM": lambda m: casemap(display_address(m.envelope, "from")),
    "DISPLAYTO": lambda m: casemap(display_address(m.envelope, "to")),
}


def sort(messages: Sequence[Message], criteria: Sequence[tuple[str, bool]]) -> list[Message]:
    """``messages`` (in sequence-number order) ordered by the SORT criteria, each a (name,
    reverse) pair; messages equal on every criterion keep their sequence order (RFC 5256 §3),
    whatever REVERSE says. Unknown names raise ValueError."""
    ordered = list(messages)
    for name, reverse in reversed(criteria):  # stable sorts: the first criterion last
        keyfunc = _SORT_KEYS.get(name.upper())
        if keyfunc is None:
            raise ValueError(f"unknown sort criterion {name!r}")
        keys = {id(m): keyfunc(m) for m in ordered}
        ordered.sort(key=lambda m: keys[id(m)], reverse=reverse)
    return ordered
