"""SEARCH over message rows (courrier.imap.search): every key, sequence sets, HEADER on any
field, TEXT/BODY with and without the full-text index, dates around midnight, ESEARCH data."""

from __future__ import annotations

import asyncio
import base64
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.imap.search import (
    READ_BATCH,
    SearchContext,
    Whole,
    candidates,
    column_pieces,
    columns,
    esearch_data,
    index_pieces,
    index_words,
    search,
)
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
    SearchKey,
    SequenceSet,
    SetKey,
    SizeKey,
    TextKey,
)
from courrier.message import parse
from courrier.store.models import Flag, Message

PARIS = ZoneInfo("Europe/Paris")
NO_FLAGS = Flag(0)

# -- building rows as the store does --------------------------------------------------------


def mail(
    subject: str | None = "Hello there",
    *,
    from_: str | None = "Alice Martin <alice@example.org>",
    to: str | None = "Bob <bob@example.net>",
    cc: str | None = None,
    bcc: str | None = None,
    date: str | None = "Mon, 04 Mar 2024 10:00:00 +0000",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: Sequence[str] = (),
    body: str | bytes = "Hello world.\r\n",
) -> bytes:
    """A message's octets (CRLF lines); None leaves a field out."""
    lines: list[str] = []
    for name, value in (
        ("From", from_),
        ("To", to),
        ("Cc", cc),
        ("Bcc", bcc),
        ("Subject", subject),
        ("Date", date),
        ("Message-ID", message_id),
        ("In-Reply-To", in_reply_to),
        ("References", references),
    ):
        if value is not None:
            lines.append(f"{name}: {value}")
    lines.extend(headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + (body.encode() if isinstance(body, str) else body)


def make_message(
    raw: bytes,
    uid: int,
    *,
    flags: Flag = NO_FLAGS,
    keywords: tuple[str, ...] = (),
    internal_date: int = 1_709_546_400,  # 2024-03-04 10:00 UTC
    modseq: int = 1,
    prefix: bytes = b"",
) -> Message:
    """The row the store keeps for ``prefix + raw`` (``raw`` parsed as the blob)."""
    p = parse(raw)
    return Message(
        id=uid,
        mailbox_id=1,
        uid=uid,
        modseq=modseq,
        flags=flags,
        keywords=keywords,
        internal_date=internal_date,
        size=len(prefix) + len(raw),
        blob_id=uid,
        envelope=p.envelope,
        bodystructure=p.bodystructure,
        body=p.body,
        subject=p.subject,
        from_=p.from_,
        to=p.to,
        cc=p.cc,
        bcc=p.bcc,
        sent_date=None if p.sent_date is None else int(p.sent_date.timestamp()),
        message_id=p.message_id,
        in_reply_to=p.in_reply_to,
        references=p.references,
        preview=p.preview,
        sort_subject=p.sort_subject,
        sort_from=p.sort_from,
        sort_to=p.sort_to,
        sort_cc=p.sort_cc,
    )


def ts(y: int, mo: int, d: int, h: int = 0, mi: int = 0, tz: tzinfo = UTC) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=tz).timestamp())


_TOKEN = re.compile(r"[^\W_]+")


def _tokens(text: str) -> list[str]:
    """Like SQLite FTS5 unicode61 remove_diacritics: letter/digit runs, lower case, no accents."""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c)
    )
    return _TOKEN.findall(plain)


@dataclass
class Box:
    """A mailbox: rows, stored octets, and a word-prefix index over the blobs (as the store's
    index: it does not see the per-message prefix)."""

    items: list[tuple[Message, bytes, bytes]] = field(default_factory=list)
    raw_calls: list[int] = field(default_factory=list)
    queries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, raw: bytes, uid: int, *, prefix: bytes = b"", **kwargs: Any) -> Message:
        m = make_message(raw, uid, prefix=prefix, **kwargs)
        self.items.append((m, raw, prefix))
        return m

    @property
    def messages(self) -> list[Message]:
        return [m for m, _, _ in self.items]

    async def read(self, wanted: Sequence[Message]) -> list[bytes]:
        assert 0 < len(wanted) <= READ_BATCH, "reads are batched, never empty"
        self.raw_calls.extend(m.uid for m in wanted)
        stored = {row.uid: prefix + raw for row, raw, prefix in self.items}
        return [stored[m.uid] for m in wanted]

    async def text_candidates(
        self, words: Sequence[str], pieces: Sequence[str], where: Literal["body", "text"]
    ) -> set[int] | None:
        """The embedded store's trigram index when there are pieces (every piece a substring
        of the lower-cased headers and body), else a word-prefix index (PostgreSQL's)."""
        self.queries.append((" ".join(pieces or words), where))
        if not words and not pieces:
            return None
        found: set[int] = set()
        for m, raw, _ in self.items:
            p = parse(raw)
            if pieces:
                document = (p.headers_text + "\n" + p.text).lower()
                if all(piece in document for piece in pieces):
                    found.add(m.uid)
                continue
            tokens = _tokens(p.text + ("\n" + p.headers_text if where == "text" else ""))
            if all(any(t.startswith(w) for t in tokens) for w in words):
                found.add(m.uid)
        return found

    async def column_candidates(self, column: str, pieces: Sequence[str]) -> set[int]:
        """The embedded store's LIKE: every piece in the row value, ASCII letters case aside."""
        self.queries.append((" ".join(pieces), column))
        attr = {"to_": "to"}.get(column, column)
        return {
            m.uid for m in self.messages if all(p in _ascii_lower(getattr(m, attr)) for p in pieces)
        }

    def ctx(self, **kwargs: Any) -> SearchContext:
        return SearchContext(self.messages, self.read, self.text_candidates, **kwargs)

    async def uids(self, key: SearchKey, **kwargs: Any) -> list[int]:
        return [m.uid for m in await search(key, self.ctx(**kwargs))]

    async def narrowed_uids(self, key: SearchKey) -> list[int] | None:
        """As the IMAP session searches: the store's candidates first, then only their rows
        (None: the store could not narrow the search)."""
        allowed = await candidates(key, self.text_candidates, self.column_candidates)
        if allowed is None:
            return None
        everything = self.messages
        seqs = {m.uid: n for n, m in enumerate(everything, 1)}
        whole = Whole(len(everything), everything[-1].uid if everything else 0, seqs.__getitem__)
        chosen = [m for m in everything if m.uid in allowed]
        ctx = SearchContext(chosen, self.read, self.text_candidates, whole=whole)
        return [m.uid for m in await search(key, ctx)]


def _ascii_lower(value: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in value)


def seqset(*ranges: tuple[int | None, int | None]) -> SequenceSet:
    return SequenceSet(ranges=tuple(ranges))


@pytest.fixture
def box() -> Box:
    """Four messages with UIDs 1, 2, 5, 7 (sequence numbers 1 to 4)."""
    b = Box()
    b.add(
        mail(message_id="<one@example.org>", body="Hello world.\r\nSee you.\r\n"),
        1,
        flags=Flag.SEEN,
        keywords=("$Forwarded",),
        modseq=5,
        internal_date=ts(2024, 3, 4, 10),
    )
    encoded_body = base64.encodebytes("Le café est prêt, Zoë.\n".encode()).decode()
    b.add(
        mail(
            "=?UTF-8?Q?R=C3=A9union_d'=C3=A9quipe?=",
            from_="=?UTF-8?B?Wm/Dqw==?= <zoe@example.com>",
            cc="Carol <carol@example.com>, dan@example.com",
            date="Tue, 05 Mar 2024 09:00:00 +0100",
            message_id="<two@example.com>",
            in_reply_to="<one@example.org>",
            references="<one@example.org>",
            headers=[
                "X-Label: =?ISO-8859-1?Q?caf=E9?= important",
                "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: base64",
            ],
            body=encoded_body,
        ),
        2,
        flags=Flag.ANSWERED | Flag.FLAGGED,
        keywords=("Work", "$Label1"),
        modseq=9,
        internal_date=ts(2024, 3, 5, 8),
    )
    b.add(
        mail(
            "Quarterly report",
            from_="reports@example.net",
            to="team@example.org",
            bcc="Dave <dave@example.org>",
            date="Wed, 06 Mar 2024 18:00:00 -0500",
            headers=[
                "X-Mailer: Courrier\r\n Test Suite 1.0",
                "MIME-Version: 1.0",
                "Content-Type: text/html; charset=us-ascii",
            ],
            body="<p>The <b>quarterly</b> figures are in.</p>\r\n",
        ),
        5,
        flags=Flag.DELETED | Flag.DRAFT,
        modseq=2,
        internal_date=ts(2024, 3, 6, 23, 30),
        prefix=b"Received: from mx.example.net by courrier; Wed, 6 Mar 2024\r\n",
    )
    b.add(
        mail(None, to=None, date=None, body="x" * 5000 + "\r\n"),
        7,
        modseq=12,
        internal_date=ts(2024, 3, 10, 12),
    )
    return b


# -- flags, sizes, MODSEQ, ages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (AllKey(), [1, 2, 5, 7]),
        (AllKey(none=True), []),  # RECENT, NEW
        (FlagKey("\\Seen"), [1]),
        (FlagKey("\\Seen", present=False), [2, 5, 7]),
        (FlagKey("\\Answered"), [2]),
        (FlagKey("\\ANSWERED", present=False), [1, 5, 7]),
        (FlagKey("\\Flagged"), [2]),
        (FlagKey("\\Deleted"), [5]),
        (FlagKey("\\Deleted", present=False), [1, 2, 7]),
        (FlagKey("\\Draft"), [5]),
        (FlagKey("\\Recent"), []),
        (FlagKey("\\Recent", present=False), [1, 2, 5, 7]),
        (FlagKey("$forwarded"), [1]),  # keywords ignore case
        (FlagKey("WORK"), [2]),
        (FlagKey("work", present=False), [1, 5, 7]),
        (FlagKey("$Junk"), []),
        (FlagKey("$Junk", present=False), [1, 2, 5, 7]),
        (SizeKey("larger", 5000), [7]),
        (SizeKey("smaller", 300), [1]),
        (SizeKey("smaller", 400), [1, 5]),
        (ModSeqKey(9), [2, 7]),
        (ModSeqKey(1), [1, 2, 5, 7]),
        (ModSeqKey(13), []),
        (AndKey(()), [1, 2, 5, 7]),
    ],
)
async def test_row_keys(box: Box, key: SearchKey, expected: list[int]) -> None:
    assert await box.uids(key) == expected
    assert box.raw_calls == []


async def test_size_boundaries(box: Box) -> None:
    size = box.messages[0].size
    assert 1 not in await box.uids(SizeKey("larger", size))
    assert 1 not in await box.uids(SizeKey("smaller", size))
    assert 1 in await box.uids(SizeKey("larger", size - 1))
    assert 1 in await box.uids(SizeKey("smaller", size + 1))


async def test_older_younger(box: Box) -> None:
    now = float(ts(2024, 3, 10, 12))  # message 7 arrived now
    day = 86400
    assert await box.uids(AgeKey("younger", day), now=now) == [7]
    assert await box.uids(AgeKey("older", day), now=now) == [1, 2, 5]
    # Message 1 is exactly 6 days 2 hours old: OLDER includes the boundary, YOUNGER not.
    assert await box.uids(AgeKey("older", 6 * day + 2 * 3600), now=now) == [1]
    assert await box.uids(AgeKey("younger", 6 * day + 2 * 3600), now=now) == [2, 5, 7]
    assert box.raw_calls == []


# -- sequence sets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ranges", "uid", "expected"),
    [
        (((1, 1),), False, [1]),
        (((None, None),), False, [7]),  # * is the last message
        (((2, None),), False, [2, 5, 7]),
        (((None, 3),), False, [5, 7]),  # *:3 is 3:*
        (((1, 1), (3, 4)), False, [1, 5, 7]),
        (((4, 2), (1, 1)), False, [1, 2, 5, 7]),
        (((1, 4_294_967_295),), False, [1, 2, 5, 7]),
        (((5, 9),), False, []),  # beyond the last message
        (((2, 5),), True, [2, 5]),
        (((3, 4),), True, []),  # the gap between UIDs 2 and 5
        (((None, None),), True, [7]),  # * is the highest UID
        (((100, None),), True, [7]),  # 100:* includes the highest UID (it is 7:100)
        (((6, None), (1, 1)), True, [1, 7]),
        (((1, 4_294_967_295),), True, [1, 2, 5, 7]),
    ],
)
async def test_sequence_sets(
    box: Box, ranges: tuple[tuple[int | None, int | None], ...], uid: bool, expected: list[int]
) -> None:
    assert await box.uids(SetKey(seqset(*ranges), uid=uid)) == expected


async def test_saved_result(box: Box) -> None:
    saved = SequenceSet(saved=True)
    assert await box.uids(SetKey(saved), saved=[2, 7, 40]) == [2, 7]
    assert await box.uids(SetKey(saved, uid=True), saved=[5]) == [5]
    assert await box.uids(SetKey(saved)) == []
    assert await box.uids(NotKey(SetKey(saved)), saved=[1, 5]) == [2, 7]


async def test_empty_mailbox() -> None:
    empty = Box()
    assert await empty.uids(SetKey(seqset((None, None)))) == []
    assert await empty.uids(SetKey(seqset((1, None)), uid=True)) == []
    assert await empty.uids(TextKey("x", "text")) == []
    assert await empty.uids(HeaderKey("x-anything", "")) == []


# -- header fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (HeaderKey("from", "alice"), [1, 7]),
        (HeaderKey("from", "ALICE MARTIN"), [1, 7]),  # the display name counts
        (HeaderKey("from", "@example."), [1, 2, 5, 7]),
        (HeaderKey("from", "zoë"), [2]),  # RFC 2047 B-encoded name, matched decoded
        (HeaderKey("from", "ZOË <zoe@"), [2]),
        (HeaderKey("to", "bob@example.net"), [1, 2]),
        (HeaderKey("to", "team"), [5]),
        (HeaderKey("cc", "carol"), [2]),
        (HeaderKey("cc", "dan@"), [2]),
        (HeaderKey("bcc", "dave"), [5]),
        (HeaderKey("subject", "réunion"), [2]),  # RFC 2047 Q-encoded
        (HeaderKey("subject", "RÉUNION D'ÉQUIPE"), [2]),
        (HeaderKey("subject", "hello"), [1]),
        (HeaderKey("subject", "quarterly REPORT"), [5]),
        (HeaderKey("message-id", "two@"), [2]),
        (HeaderKey("in-reply-to", "<one@example.org>"), [2]),
        (HeaderKey("references", "one@example"), [2]),
    ],
)
async def test_row_header_keys(box: Box, key: HeaderKey, expected: list[int]) -> None:
    assert await box.uids(key) == expected
    assert box.raw_calls == []


async def test_header_on_any_field(box: Box) -> None:
    # Folded field, matched unfolded.
    assert await box.uids(HeaderKey("x-mailer", "courrier test suite")) == [5]
    # Encoded-words decoded in a field the row does not keep; any case of the name.
    assert await box.uids(HeaderKey("X-LABEL", "CAFÉ IMP")) == [2]
    # Header lines added at delivery (kept apart from the blob) are part of the message.
    assert await box.uids(HeaderKey("received", "mx.example.net")) == [5]
    assert await box.uids(HeaderKey("received", "nowhere")) == []
    assert await box.uids(HeaderKey("mime-version", "1.0")) == [2, 5]


async def test_header_empty_value_means_present(box: Box) -> None:
    assert await box.uids(HeaderKey("x-label", "")) == [2]
    assert await box.uids(HeaderKey("subject", "")) == [1, 2, 5]  # message 7 has none
    assert await box.uids(HeaderKey("to", "")) == [1, 2, 5]
    assert await box.uids(HeaderKey("date", "")) == [1, 2, 5]
    assert await box.uids(HeaderKey("message-id", "")) == [1, 2]
    assert await box.uids(NotKey(HeaderKey("cc", ""))) == [1, 5, 7]
    # Rows that have a value answer without the message: only the others were read.
    box.raw_calls.clear()
    await box.uids(HeaderKey("subject", ""))
    assert box.raw_calls == [7]


async def test_header_empty_field_value() -> None:
    b = Box()
    b.add(mail("", headers=["X-Empty:"]), 1)
    b.add(mail("Something"), 2)
    assert await b.uids(HeaderKey("subject", "")) == [1, 2]
    assert await b.uids(HeaderKey("x-empty", "")) == [1]
    assert await b.uids(HeaderKey("subject", "some")) == [2]


async def test_header_every_occurrence() -> None:
    b = Box()
    b.add(mail(headers=["Comments: first", "Comments: second one"]), 1)
    assert await b.uids(HeaderKey("comments", "second")) == [1]


async def test_headers_read_once_per_message(box: Box) -> None:
    key = AndKey((HeaderKey("x-mailer", "courrier"), HeaderKey("received", "courrier")))
    assert await box.uids(key) == [5]
    assert sorted(box.raw_calls) == [1, 2, 5, 7]


# -- TEXT and BODY ----------------------------------------------------------------------------


def test_index_pieces() -> None:
    assert index_pieces("zeppelin") == ["zeppelin"]  # anywhere, even inside a word
    assert index_pieces("ello") == ["ello"]
    assert index_pieces("x.example.net") == ["example"]  # "net": a final t may be half of ﬆ
    assert index_pieces("the zeppelin") == ["zeppelin"]  # "he" is too short
    assert index_pieces("quarterly") == ["quarterl"]  # a final y may be ẙ
    assert index_pieces("classic") == []  # "cla", "ic" around ss (ß); a final a may be ẚ
    assert index_pieces("SICK") == ["ick"]  # a first s may be the second half of ß
    assert index_pieces("caffè latte") == ["atte"]  # "ca", then "l" may end ﬂ
    assert index_pieces("ab") == []


def test_index_words() -> None:
    assert index_words("ello") == []  # may sit inside a word
    assert index_words("hello world") == ["world"]
    assert index_words("Hello World Quick") == ["world", "quick"]
    assert index_words(" quarterly") == ["quarterl"]  # a final y may be ẙ
    assert index_words("x.example.net") == []  # "." need not split words
    assert index_words("a  b") == []  # too short to help
    assert index_words("x mustard") == ["mu"]  # ß folds to "ss": cut before it
    assert index_words("x office") == []  # "o" before ff (ﬃ folds to "ffi"): too short
    assert index_words("x straße") == []  # "strasse" starts with "st" (ﬆ)
    assert index_words("x taxi") == ["tax"]  # a final i may be İ
    assert index_words("x café") == ["caf"]  # the run stops before é
    assert index_words("x caffè latte") == ["ca", "latte"]


async def test_text_substring_inside_word(box: Box) -> None:
    assert await box.uids(TextKey("ello", "body")) == [1]
    assert box.queries == [("ello", "body")]  # the trigram index finds part of a word
    assert box.raw_calls == [1]


async def test_text_the_index_cannot_narrow_reads_every_message(box: Box) -> None:
    assert await box.uids(TextKey("ab", "body")) == []
    assert box.queries == []  # too short for either index
    assert sorted(box.raw_calls) == [1, 2, 5, 7]


async def test_text_over_many_messages_reads_them_in_batches() -> None:
    b = Box()
    for uid in range(1, 2 * READ_BATCH + 20):
        b.add(mail(body=f"Message {uid}, {'naïve' if uid % 7 == 0 else 'plain'} text.\r\n"), uid)
    # No ASCII piece of three letters: the index cannot help, every message is read, in
    # batches of at most READ_BATCH (Box.read checks), each once.
    assert await b.uids(TextKey("ïv", "body")) == list(range(7, 2 * READ_BATCH + 20, 7))
    assert sorted(b.raw_calls) == list(range(1, 2 * READ_BATCH + 20))
    # A header key the rows cannot answer reads the header blocks the same way.
    b.raw_calls.clear()
    assert await b.uids(HeaderKey("content-type", "")) == []
    assert sorted(b.raw_calls) == list(range(1, 2 * READ_BATCH + 20))


async def test_text_with_index(box: Box) -> None:
    assert await box.uids(TextKey("Hello WORLD", "body")) == [1]
    assert box.queries == [("hello world", "body")]
    assert box.raw_calls == [1]  # the only candidate


async def test_index_candidates_are_confirmed() -> None:
    b = Box()
    b.add(mail(body="The quick brown fox.\r\n"), 1)
    b.add(mail(body="Brownies are quick to make.\r\n"), 2)
    b.add(mail(body="Nothing here.\r\n"), 3)
    assert await b.uids(TextKey("quick brown", "body")) == [1]
    assert b.queries == [("quick brown", "body")]
    assert sorted(b.raw_calls) == [1, 2]  # 2 has a word starting "brown", not the string


async def test_text_and_body(box: Box) -> None:
    # Decoded base64 text, in its charset.
    assert await box.uids(TextKey("CAFÉ EST", "body")) == [2]
    # HTML reduced to text: the words, not the tags.
    assert await box.uids(TextKey("the quarterly figures", "body")) == [5]
    assert await box.uids(TextKey("<b>", "body")) == []
    # Header only: TEXT finds it, BODY does not.
    assert await box.uids(TextKey("reports@example.net", "text")) == [5]
    assert await box.uids(TextKey("reports@example.net", "body")) == []
    assert await box.uids(TextKey("x-mailer: courrier", "text")) == [5]
    assert await box.uids(TextKey("xxxxxxxxxx", "text")) == [7]


async def test_text_subject_needs_no_message(box: Box) -> None:
    assert await box.uids(TextKey("réunion", "text")) == [2]
    assert 2 not in box.raw_calls


async def test_text_empty_string_matches_all(box: Box) -> None:
    assert await box.uids(TextKey("", "text")) == [1, 2, 5, 7]
    assert await box.uids(NotKey(TextKey("", "body"))) == []
    assert box.raw_calls == []


async def test_text_case_folding_beyond_the_index() -> None:
    b = Box()
    b.add(mail(body="Wir wohnen in der Hauptstraße 5.\r\n"), 1)
    b.add(mail(body="Die Hauptstrasse ist lang.\r\n"), 2)
    b.add(mail(body="Le \ufb01chier est pr\u00eat.\r\n"), 3)  # "ﬁchier" with the ligature
    b.add(mail(body="Nothing to see.\r\n"), 4)
    assert await b.uids(TextKey("HAUPTSTRASSE", "body")) == [1, 2]
    assert await b.uids(TextKey("hauptstraße", "body")) == [1, 2]
    assert await b.uids(TextKey("le fichier", "body")) == [3]
    assert await b.uids(TextKey("x fichier", "body")) == []


NEEDLES = [
    "hello",
    "ello",
    " world",
    "world.",
    "quick brown",
    "the quick",
    "STRASSE",
    "straße",
    "fichier",
    "le fichier",
    " ﬁchier",
    "café",
    "cafe",
    "ÇA VA",
    "é",
    "a-b",
    "x@example.net",
    "example",
    "net",
    " taxi",
    "un taxi",
    "fox.",
    "a va",
    "ǰ",
]
BODIES = [
    "Hello world.\r\n",
    "Hello worldwide; the quick brown fox.\r\n",
    "Hauptstraße; HAUPTSTRASSE.\r\n",
    "Le ﬁchier. Le fichier.\r\n",
    "Un café ? Ça va.\r\n",
    "a-b mail x@example.net\r\n",
    "Un TAXİ ǰ\r\n",
    "cafe\u0301 decomposed\r\n",
]


async def test_text_agrees_with_a_plain_scan() -> None:
    """Whatever the index says, the result is exactly the substring match of a full scan."""
    b = Box()
    for uid, body in enumerate(BODIES, 1):
        b.add(mail("s", body=body.encode()), uid)
    for needle in NEEDLES:
        folded = needle.casefold()
        expected = [
            uid
            for uid, body in enumerate(BODIES, 1)
            if folded in parse(mail("s", body=body.encode())).text.casefold()
        ]
        assert await b.uids(TextKey(needle, "body")) == expected, needle


def test_column_pieces() -> None:
    assert column_pieces("quarterly") == ["quarterl"]  # a final y may be ẙ
    assert column_pieces("Kelvin") == ["elvin"]  # K may be the Kelvin sign
    assert column_pieces("business") == ["bu", "ine"]  # s may be ſ, ss may be ß
    assert column_pieces("nice") == ["ice"]  # a first n may be the end of ŉ (ʼn)
    assert column_pieces("Re: Q3 figures") == ["gure"]  # fi may be ﬁ, a final s half of ß
    assert column_pieces("ab") == []


#: Subjects where case folding makes ASCII letters out of other characters.
SUBJECTS = [
    "Quarterly figures",
    "QUARTERLY FIGURES",
    "Kelvin and ſpring",  # Kelvin sign, long s
    "Kelvin and spring",
    "Hauptstraße",
    "Le ﬁchier",
    "ŉice one",  # ŉ folds to ʼn
    "nice one",
    "TAXİ",
    "Un café",
    "",
]
SUBJECT_NEEDLES = [
    "quarterly",
    "figures",
    "kelvin",
    "spring",
    "strasse",
    "fichier",
    "nice",
    "taxi",
    "café",
    "cafe",
    "one",
    "x",
]


async def test_narrowing_by_the_store_never_changes_the_result() -> None:
    """Candidates from the row columns (LIKE) and the index, then only their rows: the same
    answer as reading every row, whatever case folding does to the subjects."""
    b = Box()
    for uid, subject in enumerate(SUBJECTS, 1):
        body = f"Body {uid}: {SUBJECTS[-uid]} and zeppelin {uid % 3}.\r\n"
        b.add(mail(subject, body=body), uid * 2)  # UIDs with gaps
    keys: list[SearchKey] = []
    for needle in SUBJECT_NEEDLES:
        keys += [HeaderKey("subject", needle), TextKey(needle, "text"), TextKey(needle, "body")]
        keys.append(AndKey((HeaderKey("subject", needle), SetKey(seqset((3, None))))))
        keys.append(AndKey((TextKey(needle, "body"), SetKey(seqset((None, 4)), uid=True))))
        keys.append(OrKey(HeaderKey("subject", needle), TextKey("zeppelin 1", "body")))
        keys.append(AndKey((HeaderKey("from", "alice"), NotKey(HeaderKey("subject", needle)))))
    narrowed = 0
    for key in keys:
        got = await b.narrowed_uids(key)
        if got is not None:
            narrowed += 1
            assert got == await b.uids(key), key
    assert narrowed >= len(SUBJECT_NEEDLES) * 5  # most of these keys do narrow


async def test_what_narrows_and_what_does_not() -> None:
    b = Box()
    b.add(mail("Quarterly figures", body="A zeppelin.\r\n"), 1)
    b.add(mail("Weekly figures", body="No airship.\r\n"), 2)
    assert await candidates(
        HeaderKey("subject", "QUARTERLY"), b.text_candidates, b.column_candidates
    ) == {1}
    assert b.queries == [("quarterl", "subject")]
    text = await candidates(TextKey("zeppelin", "body"), b.text_candidates, b.column_candidates)
    assert text == {1}
    both = OrKey(HeaderKey("subject", "weekly"), TextKey("zeppelin", "body"))
    assert await candidates(both, b.text_candidates, b.column_candidates) == {1, 2}
    for key in (
        NotKey(HeaderKey("subject", "weekly")),  # NOT never narrows
        OrKey(HeaderKey("subject", "weekly"), FlagKey("\\Seen")),  # one side cannot
        HeaderKey("subject", "ab"),  # too short
        HeaderKey("message-id", "abcdef"),  # kept undecoded in the row
        HeaderKey("x-mailer", "courrier"),  # not a row column
    ):
        assert await candidates(key, b.text_candidates, b.column_candidates) is None, key
    anded = AndKey((FlagKey("\\Seen"), HeaderKey("subject", "weekly")))
    assert await candidates(anded, b.text_candidates, b.column_candidates) == {2}


async def test_sequence_sets_see_the_whole_mailbox_when_narrowed() -> None:
    b = Box()
    for uid in (3, 5, 9, 12):
        b.add(mail("Quarterly" if uid != 5 else "Weekly"), uid)
    # Sequence numbers 2:* are UIDs 5, 9, 12; "*" is the fourth message, not the third match.
    key = AndKey((HeaderKey("subject", "quarterly"), SetKey(seqset((2, None)))))
    assert await b.narrowed_uids(key) == [9, 12] == await b.uids(key)
    key = AndKey((HeaderKey("subject", "quarterly"), SetKey(seqset((None, None)))))
    assert await b.narrowed_uids(key) == [12]  # "*" alone: the last message of the mailbox
    key = AndKey((HeaderKey("subject", "weekly"), SetKey(seqset((None, None)), uid=True)))
    assert await b.narrowed_uids(key) == []  # UID "*" is 12, not 5


async def test_row_keys_narrow_before_reading(box: Box) -> None:
    key = AndKey((TextKey("o", "body"), FlagKey("\\Seen", present=False), SizeKey("smaller", 4000)))
    assert await box.uids(key) == [2]  # "Zoë"; 5's text has no "o"
    assert sorted(box.raw_calls) == [2, 5]


# -- dates -----------------------------------------------------------------------------------


async def test_internal_date_days_in_server_zone() -> None:
    b = Box()
    # 23:30 UTC on 10 March is 00:30 on 11 March in Paris.
    b.add(mail(), 1, internal_date=ts(2024, 3, 10, 23, 30))
    b.add(mail(), 2, internal_date=ts(2024, 3, 10, 22, 59))  # 23:59 in Paris
    b.add(mail(), 3, internal_date=ts(2024, 3, 11, 0, 0, tz=PARIS))  # the first second
    day = date(2024, 3, 11)
    assert await b.uids(DateKey("on", day), tz=PARIS) == [1, 3]
    assert await b.uids(DateKey("on", day)) == []  # in UTC all three are on the 10th
    assert await b.uids(DateKey("before", day), tz=PARIS) == [2]
    assert await b.uids(DateKey("since", day), tz=PARIS) == [1, 3]
    assert await b.uids(DateKey("on", date(2024, 3, 10)), tz=PARIS) == [2]
    assert await b.uids(DateKey("on", date(2024, 3, 10))) == [1, 2, 3]
    assert b.raw_calls == []


async def test_internal_date_across_dst() -> None:
    b = Box()
    # 31 March 2024: Paris goes from +01:00 to +02:00 at 02:00.
    b.add(mail(), 1, internal_date=ts(2024, 3, 30, 23, 0))  # 31 Mar 01:00 +01:00
    b.add(mail(), 2, internal_date=ts(2024, 3, 31, 21, 59))  # 31 Mar 23:59 +02:00
    b.add(mail(), 3, internal_date=ts(2024, 3, 31, 22, 0))  # 1 Apr 00:00 +02:00
    assert await b.uids(DateKey("on", date(2024, 3, 31)), tz=PARIS) == [1, 2]
    assert await b.uids(DateKey("since", date(2024, 4, 1)), tz=PARIS) == [3]


async def test_sent_dates_in_their_own_offset() -> None:
    b = Box()
    # 00:30 on the 11th in +01:00 is 23:30 on the 10th in UTC: the field's own day counts.
    b.add(mail(date="Mon, 11 Mar 2024 00:30:00 +0100"), 1)
    # 23:30 on the 10th in -10:00 is 09:30 on the 11th in UTC.
    b.add(mail(date="Sun, 10 Mar 2024 23:30:00 -1000"), 2)
    b.add(mail(date="Mon, 11 Mar 2024 12:00:00 +0000"), 3)
    b.add(mail(date="Wed, 01 May 2024 12:00:00 +1400"), 4)
    # No Date: the internal date, in the server's zone (00:30 on the 11th in Paris).
    b.add(mail(date=None), 5, internal_date=ts(2024, 3, 10, 23, 30))
    # An obsolete zone name (RFC 5322 §4.3): EST is -05:00.
    b.add(mail(date="Sun, 10 Mar 2024 22:00:00 EST"), 6)
    day = date(2024, 3, 11)
    assert await b.uids(DateKey("on", day, sent=True), tz=PARIS) == [1, 3, 5]
    assert await b.uids(DateKey("before", day, sent=True), tz=PARIS) == [2, 6]
    assert await b.uids(DateKey("since", day, sent=True), tz=PARIS) == [1, 3, 4, 5]
    assert await b.uids(DateKey("on", day, sent=True)) == [1, 3]  # 5 is on the 10th in UTC
    assert await b.uids(DateKey("since", date(2024, 5, 1), sent=True)) == [4]
    assert await b.uids(DateKey("before", date(2024, 5, 1), sent=True)) == [1, 2, 3, 5, 6]
    assert b.raw_calls == []  # the ENVELOPE keeps the Date field


# -- combinations ----------------------------------------------------------------------------


async def test_not_or_nesting(box: Box) -> None:
    seen_or_flagged = OrKey(FlagKey("\\Seen"), FlagKey("\\Flagged"))
    assert await box.uids(seen_or_flagged) == [1, 2]
    assert await box.uids(NotKey(seen_or_flagged)) == [5, 7]
    assert await box.uids(NotKey(NotKey(seen_or_flagged))) == [1, 2]
    key = OrKey(
        AndKey((FlagKey("\\Deleted"), NotKey(HeaderKey("x-mailer", "nothing")))),
        OrKey(TextKey("hello", "body"), SetKey(seqset((None, None)))),
    )
    assert await box.uids(key) == [1, 5, 7]
    assert await box.uids(NotKey(key)) == [2]
    mixed = AndKey((NotKey(OrKey(TextKey("zoë", "body"), FlagKey("\\Seen"))), ModSeqKey(2)))
    assert await box.uids(mixed) == [5, 7]


async def test_row_only_search_is_fast() -> None:
    base = make_message(mail(cc="Carol <carol@example.com>"), 1)
    rows = [
        base._replace(
            id=n,
            uid=n * 2,
            flags=Flag(n % 32),
            size=1000 + n,
            modseq=n,
            keywords=("$Work",) if n % 3 == 0 else (),
            internal_date=1_700_000_000 + n * 600,
        )
        for n in range(1, 10_001)
    ]

    async def no_raw(wanted: Sequence[Message]) -> list[bytes]:
        raise AssertionError("row-only keys must not read messages")

    async def no_index(text: str, where: Literal["body", "text"]) -> set[int]:
        raise AssertionError("row-only keys must not ask the index")

    ctx = SearchContext(rows, no_raw, no_index, tz=PARIS, now=1_706_000_000.0)
    key = AndKey(
        (
            NotKey(FlagKey("\\Seen")),
            OrKey(FlagKey("$work"), SizeKey("larger", 9000)),
            DateKey("since", date(2023, 11, 20)),
            DateKey("since", date(2024, 1, 1), sent=True),
            HeaderKey("cc", "carol"),
            SetKey(seqset((2, None), (1, 1))),
            AgeKey("older", 3600),
        )
    )
    started = time.perf_counter()
    found = await search(key, ctx)
    elapsed = time.perf_counter() - started
    assert found == [
        m
        for m in rows
        if not m.flags & Flag.SEEN
        and ("$Work" in m.keywords or m.size > 9000)
        and datetime.fromtimestamp(m.internal_date, PARIS).date() >= date(2023, 11, 20)
        and m.internal_date <= 1_706_000_000 - 3600
    ]
    assert elapsed < 0.2, elapsed  # about 10 ms on a laptop


# -- ESEARCH (RFC 4731) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numbers", "returns", "expected"),
    [
        ([2, 3, 9, 7], ("MIN", "MAX", "COUNT", "ALL"), "MIN 2 MAX 9 COUNT 4 ALL 2:3,7,9"),
        ([2, 3, 9, 7], (), "ALL 2:3,7,9"),
        ([5, 4, 3], ("ALL",), "ALL 3:5"),
        ([5, 4, 3], ("COUNT", "MIN"), "MIN 3 COUNT 3"),
        ([8], ("MAX",), "MAX 8"),
        ([], ("MIN", "MAX", "COUNT", "ALL"), "COUNT 0"),
        ([], ("COUNT",), "COUNT 0"),
        ([], ("ALL",), ""),
        ([], (), ""),
        ([1, 2], ("SAVE",), ""),
        ([1, 2], ("SAVE", "COUNT"), "COUNT 2"),
        ([1, 2], ("min",), "MIN 1"),
    ],
)
def test_esearch_data(numbers: list[int], returns: tuple[str, ...], expected: str) -> None:
    assert esearch_data(numbers, returns) == expected


# -- algebra: NOT is the complement, OR the union, AND the intersection ----------------------


def _algebra_box() -> Box:
    b = Box()
    specs = [
        ("Hello there", "Alice <alice@example.org>", "Hello world.\r\n", Flag.SEEN, ()),
        ("Re: Hello", "Bob <bob@example.net>", "Quick brown fox.\r\n", Flag.ANSWERED, ("$W",)),
        ("Report", "carol@example.com", "Figures.\r\n", Flag.FLAGGED | Flag.SEEN, ("$w", "x")),
        ("Réunion", "Zoë <zoe@example.com>", "Le café.\r\n", Flag.DELETED, ()),
        ("", "dan@example.net", "hello again\r\n", Flag(0), ("x",)),
        ("Lunch?", "Alice <alice@example.org>", "Brownies!\r\n", Flag.DRAFT | Flag.SEEN, ()),
    ]
    for n, (subject, from_, body, flags, keywords) in enumerate(specs):
        headers = [f"X-Tag: t{n % 3}"] if n % 2 else []
        b.add(
            mail(
                subject,
                from_=from_,
                date=f"Mon, {4 + n:02d} Mar 2024 {5 * n:02d}:30:00 {'+' if n % 2 else '-'}0700",
                headers=headers,
                body=body,
            ),
            n * 3 + 1,
            flags=flags,
            keywords=keywords,
            modseq=n * 2 + 1,
            internal_date=ts(2024, 3, 4 + n, 4 * n + 3),  # the last: 00:00 in Paris
        )
    return b


ALGEBRA = _algebra_box()
_DAYS = st.dates(min_value=date(2024, 3, 2), max_value=date(2024, 3, 12))
_NUMBER = st.one_of(st.none(), st.integers(min_value=1, max_value=20))

_leaves = st.one_of(
    st.builds(AllKey, st.booleans()),
    st.builds(
        FlagKey,
        st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$w", "X"]),
        st.booleans(),
    ),
    st.builds(SizeKey, st.sampled_from(["larger", "smaller"]), st.integers(110, 150)),
    st.builds(ModSeqKey, st.integers(0, 12)),
    st.builds(AgeKey, st.sampled_from(["older", "younger"]), st.integers(0, 10 * 86400)),
    st.builds(DateKey, st.sampled_from(["before", "on", "since"]), _DAYS, st.booleans()),
    st.builds(
        SetKey,
        st.builds(
            lambda r: SequenceSet(ranges=tuple(r)),
            st.lists(st.tuples(_NUMBER, _NUMBER), min_size=1, max_size=3),
        ),
        st.booleans(),
    ),
    st.builds(
        HeaderKey,
        st.sampled_from(["from", "subject", "to"]),
        st.sampled_from(["alice", "Hello", "ré", "example.net", "bob"]),
    ),
)


def _keys(rows_only: bool) -> st.SearchStrategy[SearchKey]:
    leaves = _leaves
    if not rows_only:
        leaves = st.one_of(
            _leaves,
            st.builds(
                TextKey,
                st.sampled_from(["hello", "ello", " brown", "café"]),
                st.sampled_from(["body", "text"]),
            ),
            st.builds(HeaderKey, st.just("x-tag"), st.sampled_from(["", "t1", "T2"])),
        )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(NotKey, inner),
            st.builds(OrKey, inner, inner),
            st.builds(lambda ks: AndKey(tuple(ks)), st.lists(inner, max_size=3)),
        ),
        max_leaves=8,
    )


def _run(key: SearchKey) -> set[int]:
    ctx = ALGEBRA.ctx(tz=PARIS, now=_NOW)
    return {m.uid for m in asyncio.run(search(key, ctx))}


_ALL = {m.uid for m in ALGEBRA.messages}


_NOW = float(ts(2024, 3, 12))


def _oracle(key: SearchKey) -> set[int]:
    """A plain reading of RFC 9051 §6.4.4 for the row keys, message by message."""
    messages = ALGEBRA.messages
    found: set[int] = set()
    for seq, (m, raw, _) in enumerate(ALGEBRA.items, 1):
        if _matches(key, m, raw, seq, messages):
            found.add(m.uid)
    return found


def _matches(key: SearchKey, m: Message, raw: bytes, seq: int, messages: list[Message]) -> bool:
    if isinstance(key, NotKey):
        return not _matches(key.key, m, raw, seq, messages)
    if isinstance(key, OrKey):
        return _matches(key.left, m, raw, seq, messages) or _matches(
            key.right, m, raw, seq, messages
        )
    if isinstance(key, AndKey):
        return all(_matches(k, m, raw, seq, messages) for k in key.keys)
    if isinstance(key, AllKey):
        return not key.none
    if isinstance(key, FlagKey):
        names = {"\\seen": Flag.SEEN, "\\answered": Flag.ANSWERED, "\\flagged": Flag.FLAGGED}
        names |= {"\\deleted": Flag.DELETED, "\\draft": Flag.DRAFT}
        flag = names.get(key.flag.lower())
        has = bool(m.flags & flag) if flag else key.flag.lower() in map(str.lower, m.keywords)
        return has == key.present
    if isinstance(key, SizeKey):
        return m.size > key.size if key.op == "larger" else m.size < key.size
    if isinstance(key, ModSeqKey):
        return m.modseq >= key.modseq
    if isinstance(key, AgeKey):
        age = _NOW - m.internal_date
        return age >= key.seconds if key.op == "older" else age < key.seconds
    if isinstance(key, DateKey):
        sent = parse(raw).sent_date
        if key.sent and sent is not None:
            day = sent.date()
        else:
            day = datetime.fromtimestamp(m.internal_date, PARIS).date()
        if key.op == "before":
            return day < key.date
        return day == key.date if key.op == "on" else day >= key.date
    if isinstance(key, SetKey):
        if key.uid:
            return m.uid in key.set.resolve(max(x.uid for x in messages))
        return seq in key.set.resolve(len(messages))
    if isinstance(key, HeaderKey):
        value = {"from": m.from_, "to": m.to, "subject": m.subject}[key.field]
        return key.value.casefold() in value.casefold()
    raise AssertionError(key)


@settings(max_examples=400)
@given(_leaves)
def test_row_keys_match_a_plain_reading(key: SearchKey) -> None:
    assert _run(key) == _oracle(key)


@given(_keys(rows_only=True), _keys(rows_only=True))
def test_algebra_of_row_keys(a: SearchKey, b: SearchKey) -> None:
    found_a, found_b = _run(a), _run(b)
    assert found_a == _oracle(a)
    assert _run(NotKey(a)) == _ALL - found_a
    assert _run(OrKey(a, b)) == found_a | found_b
    assert _run(AndKey((a, b))) == found_a & found_b


@given(_keys(rows_only=False), _keys(rows_only=False))
def test_algebra_with_message_keys(a: SearchKey, b: SearchKey) -> None:
    found_a, found_b = _run(a), _run(b)
    assert _run(NotKey(a)) == _ALL - found_a
    assert _run(OrKey(a, b)) == found_a | found_b
    assert _run(AndKey((b, a))) == found_a & found_b


_BLANK = {"sent_date": None, "envelope": b"", "bodystructure": b"", "body": b""}
_ATTR = {"to_": "to", "references_": "references"}


@pytest.mark.parametrize(
    "key",
    [
        HeaderKey("subject", "union"),
        HeaderKey("from", "example"),
        HeaderKey("to", "bob"),
        HeaderKey("message-id", "one@"),
        TextKey("world", "text"),
        DateKey("since", date(2024, 3, 5), sent=True),
        OrKey(HeaderKey("cc", "carol"), NotKey(FlagKey("\\Seen"))),
        AndKey((SizeKey("larger", 10), DateKey("before", date(2030, 1, 1)))),
    ],
)
async def test_rows_holding_only_the_columns_a_key_names_give_the_same_result(
    box: Box, key: SearchKey
) -> None:
    """SEARCH reads only ``columns(key)`` of each row: blanking the others changes nothing."""
    wanted = columns(key)
    assert wanted is not None
    full = await box.uids(key)
    optional = [
        "envelope",
        "bodystructure",
        "body",
        "subject",
        "from_",
        "to",
        "cc",
        "bcc",
        "sent_date",
        "message_id",
        "in_reply_to",
        "references",
        "preview",
        "sort_subject",
        "sort_from",
        "sort_to",
        "sort_cc",
    ]
    kept = {_ATTR.get(c, c) for c in wanted}
    for i, (m, raw, prefix) in enumerate(box.items):
        blanks = {a: _BLANK.get(a, "") for a in optional if a not in kept}
        box.items[i] = (m._replace(**blanks), raw, prefix)
    assert await box.uids(key) == full
