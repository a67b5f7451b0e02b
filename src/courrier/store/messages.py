"""Transactions on messages: appends, flags, copies, moves, expunges, blobs and the change log.

Invariants kept here, for both backends:

- UIDs are strictly increasing per mailbox (``mailboxes.uidnext``), never reused while the
  UIDVALIDITY stands (RFC 9051 §2.3.1.1).
- Every change takes a new MODSEQ from the account's counter (``accounts.highestmodseq``), is
  logged in ``changes`` and raises the mailbox's HIGHESTMODSEQ (RFC 7162 §3.1). One operation on
  many messages shares one MODSEQ, as RFC 7162 allows.
- ``accounts.used_bytes`` is the sum of the sizes of the account's messages; an operation that
  would take it over ``quota_bytes`` (0 = unlimited) fails whole with :class:`QuotaExceeded`.
- A blob's ``refs`` counts the messages pointing at it; at zero the row, its full-text entry and
  its file (after commit) go. New blobs are indexed for full-text search (an effect: the
  backend decides when).
"""

from __future__ import annotations

import functools
import json
import re
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from courrier.message import ParsedMessage
from courrier.store.errors import (
    NotFound,
    QuotaExceeded,
    StoreError,
)
from courrier.store.models import (
    Appended,
    Change,
    ChangeKind,
    Flag,
    MailboxView,
    Message,
    MessageState,
)
from courrier.store.schema import DEDUPE_MIN
from courrier.store.tx import Index, Notify, Q, Row, Tx, Unindex, Unlink, many, one, rows, run

_MESSAGE_FIELDS = (
    "mailbox_id, account_id, uid, modseq, flags, keywords, internal_date, size, blob_id, prefix"
)
_INSERT_MESSAGE_HEAD = f"INSERT INTO messages ({_MESSAGE_FIELDS}) VALUES "
_INSERT_MESSAGE = _INSERT_MESSAGE_HEAD + f"({', '.join('?' * len(_MESSAGE_FIELDS.split(',')))})"
_CONTENT_FIELDS = (
    "blob_id, envelope, bodystructure, body, subject, from_, to_, cc, bcc, sent_date, "
    "message_id, in_reply_to, references_, preview, sort_subject, sort_from, sort_to, sort_cc, "
    "header"
)
#: A blob stored again (dedupe) or for a second mailbox keeps its first row.
_INSERT_CONTENT_HEAD = f"INSERT INTO contents ({_CONTENT_FIELDS}) VALUES "
_INSERT_CONTENT_TAIL = " ON CONFLICT (blob_id) DO NOTHING"
#: Rows per multi-row INSERT (at most 18 parameters each: far below both databases' limits).
_ROWS_PER_INSERT = 256

_WORD = re.compile(r"\w+")

INSERT_CHANGE = (
    "INSERT INTO changes (account_id, modseq, mailbox_id, uid, kind) VALUES (?, ?, ?, ?, ?)"
)


#: Hierarchy delimiter of mailbox names (RFC 9051 §6.3.9 LIST returns it).
@dataclass(frozen=True, slots=True)
class NewBlob:
    """Content to store once and reference from messages: inline ``data`` or a written file."""

    hash: str
    size: int
    data: bytes | None
    path: str | None
    #: Full-text fields, indexed when the blob is new.
    headers_text: str
    body_text: str
    #: The header with its empty line, kept apart for FETCH of header fields.
    header: bytes = b""


def bump_modseq(account_id: int) -> Tx[int]:
    row = yield one(
        "UPDATE accounts SET highestmodseq = highestmodseq + 1 WHERE id = ? "
        "RETURNING highestmodseq",
        account_id,
    )
    if row is None:
        raise NotFound("The account no longer exists.")
    return int(row[0])


# -- blobs ---------------------------------------------------------------------------------


def release_blobs(blob_ids: Iterable[int]) -> Tx[None]:
    for blob_id, count in sorted(Counter(blob_ids).items()):
        row = yield one(
            "UPDATE blobs SET refs = refs - ? WHERE id = ? RETURNING refs, path, size",
            count,
            blob_id,
        )
        if row is not None and int(row[0]) <= 0:
            content = yield one("DELETE FROM contents WHERE blob_id = ? RETURNING 1", blob_id)
            if content is not None or int(row[2]) >= DEDUPE_MIN:  # indexed (see store_blobs)
                yield Unindex(blob_id)
            yield run("DELETE FROM blobs WHERE id = ?", blob_id)
            if row[1] is not None:
                yield Unlink(str(row[1]))


def blob_location(message_id: int) -> Tx[tuple[bytes, bytes | None, str | None] | None]:
    """A message's delivery-time header prefix, and its blob's inline data or file path."""
    row = yield one(
        "SELECT m.prefix, b.data, b.path FROM messages m JOIN blobs b ON b.id = m.blob_id "
        "WHERE m.id = ?",
        message_id,
    )
    if row is None:
        return None
    return bytes(row[0]), None if row[1] is None else bytes(row[1]), row[2]


def _of_messages(query: str, message_ids: Sequence[int]) -> Tx[list[Row]]:
    """``query`` (ending in ``WHERE`` or ``AND``) for the messages ``m`` with these ids."""
    if not message_ids:
        return []
    marks = ", ".join("?" * len(message_ids))
    found: list[Row] = yield rows(f"{query} m.id IN ({marks})", *message_ids)
    return found


def headers_of(message_ids: Sequence[int]) -> Tx[dict[int, tuple[bytes, bytes | None]]]:
    """Each message's delivery prefix and its blob's header (None where it was not kept:
    blobs stored before schema version 5)."""
    found = yield from _of_messages(
        "SELECT m.id, m.prefix, c.header FROM messages m CROSS JOIN contents c "
        "WHERE c.blob_id = m.blob_id AND",
        message_ids,
    )
    return {int(r[0]): (bytes(r[1]), None if r[2] is None else bytes(r[2])) for r in found}


def blob_locations(
    message_ids: Sequence[int],
) -> Tx[dict[int, tuple[bytes, bytes | None, str | None]]]:
    """:func:`blob_location` of many messages in one statement (IMAP FETCH of many bodies)."""
    found = yield from _of_messages(
        "SELECT m.id, m.prefix, b.data, b.path FROM messages m JOIN blobs b ON b.id = m.blob_id "
        "WHERE",
        message_ids,
    )
    return {int(r[0]): (bytes(r[1]), None if r[2] is None else bytes(r[2]), r[3]) for r in found}


# -- messages ------------------------------------------------------------------------------

#: The columns every message row has, in the order of :class:`Message`'s first fields.
_STATE_COLUMNS = (
    "m.id, m.mailbox_id, m.uid, m.modseq, m.flags, m.keywords, m.internal_date, m.size, m.blob_id"
)

#: The content columns, in the order of :class:`Message`'s other fields, and what a row that
#: does not read one (:func:`list_messages` ``columns``) has in its place.
_CONTENT_COLUMNS: dict[str, object] = {
    "envelope": b"",
    "bodystructure": b"",
    "body": b"",
    "subject": "",
    "from_": "",
    "to_": "",
    "cc": "",
    "bcc": "",
    "sent_date": None,
    "message_id": "",
    "in_reply_to": "",
    "references_": "",
    "preview": "",
    "sort_subject": "",
    "sort_from": "",
    "sort_to": "",
    "sort_cc": "",
}

#: Flag(n) for every n of the system flags: an enum call per row is measurable on 10,000 rows.
_FLAGS = tuple(Flag(n) for n in range(64))


def _flag(value: int) -> Flag:
    return _FLAGS[value] if 0 <= value < 64 else Flag(value)


@functools.lru_cache(maxsize=64)
def _reader(columns: frozenset[str] | None) -> tuple[str, Callable[[Row], Message]]:
    """The start of a query for message rows with the content ``columns`` (None: all of
    them), up to its ``WHERE`` conditions on ``m`` (``messages``), and the function that makes
    a :class:`Message` of such a row, the other columns left empty.

    Only the wanted columns are selected, and ``contents`` is joined only when one is wanted:
    the database's cost grows with the columns a row returns (a FETCH FLAGS of 10,000 rows
    read 26 columns in 24 ms, 9 in 7 ms). ``messages`` stays the outer loop (CROSS JOIN) with
    or without statistics. The function is compiled once per set of columns, as
    :func:`collections.namedtuple` compiles its constructor, so that filling in the empty
    fields costs nothing per row.
    """
    if columns is not None and not columns <= _CONTENT_COLUMNS.keys():
        unknown = sorted(columns - _CONTENT_COLUMNS.keys())
        raise ValueError(f"not an optional message column: {unknown}")
    wanted = [c for c in _CONTENT_COLUMNS if columns is None or c in columns]
    values = []
    for name, empty in _CONTENT_COLUMNS.items():
        values.append(f"r[{9 + wanted.index(name)}]" if name in wanted else repr(empty))
    # Both drivers give ints, str and bytes already; Message is a tuple, made without its
    # generated __new__.
    source = (
        "lambda r: new(Message, (r[0], r[1], r[2], r[3], flag(r[4]), "
        f"tuple(r[5].split()) if r[5] else (), r[6], r[7], r[8], {', '.join(values)}))"
    )
    make = eval(source, {"new": tuple.__new__, "Message": Message, "flag": _flag})
    select = ", ".join([_STATE_COLUMNS, *(f"c.{c}" for c in wanted)])
    if not wanted:
        return f"SELECT {select} FROM messages m WHERE", make
    return (
        f"SELECT {select} FROM messages m CROSS JOIN contents c WHERE c.blob_id = m.blob_id AND",
        make,
    )


def _charge_quota(mailbox_id: int, size: int) -> Tx[tuple[int, int]]:
    """Take ``size`` bytes of quota and a new MODSEQ; returns (account id, modseq)."""
    row = yield one(
        "UPDATE accounts SET highestmodseq = highestmodseq + 1, used_bytes = used_bytes + ? "
        "WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?) "
        "AND (quota_bytes = 0 OR used_bytes + ? <= quota_bytes) "
        "RETURNING id, highestmodseq",
        size,
        mailbox_id,
        size,
    )
    if row is None:
        exists = yield one("SELECT 1 FROM mailboxes WHERE id = ?", mailbox_id)
        if exists is None:
            raise NotFound("The mailbox no longer exists.")
        raise QuotaExceeded("The mailbox is full: the account is over its quota.")
    return int(row[0]), int(row[1])


@dataclass(frozen=True, slots=True)
class AppendItem:
    """One message to store in one mailbox; its blob file (if any) is already synced.

    ``parsed`` is the blob's IMAP data (``courrier.message.parse``); ``prefix`` holds the header
    lines added at delivery, kept per message and prepended on read.
    """

    mailbox_id: int
    blob: NewBlob
    parsed: ParsedMessage
    prefix: bytes
    flags: int
    keywords: tuple[str, ...]
    internal_date: int

    @property
    def size(self) -> int:
        return len(self.prefix) + self.parsed.size

    def row(self, account_id: int, uid: int, modseq: int, blob_id: int) -> tuple[object, ...]:
        """The values of ``_INSERT_MESSAGE``."""
        return (
            self.mailbox_id,
            account_id,
            uid,
            modseq,
            self.flags,
            " ".join(self.keywords),
            self.internal_date,
            self.size,
            blob_id,
            self.prefix,
        )

    def content(self, blob_id: int) -> tuple[object, ...]:
        """The values of the blob's ``contents`` row."""
        p = self.parsed
        sent = None if p.sent_date is None else int(p.sent_date.timestamp())
        return (
            blob_id,
            p.envelope,
            p.bodystructure,
            p.body,
            p.subject,
            p.from_,
            p.to,
            p.cc,
            p.bcc,
            sent,
            p.message_id,
            p.in_reply_to,
            p.references,
            p.preview,
            p.sort_subject,
            p.sort_from,
            p.sort_to,
            p.sort_cc,
            self.blob.header,
        )


def in_query(
    sql: str,
    column: str,
    values: Sequence[int | str],
    pg_type: str,
    *,
    tail: str = "",
    lock: bool = False,
) -> Q:
    """``sql WHERE column IN (values)`` with one parameter, whatever the number of values.

    ``lock`` adds FOR UPDATE on PostgreSQL, where other nodes write too; SQLite's single writer
    holds the whole database already.
    """
    return Q(
        f"{sql} WHERE {column} IN (SELECT value FROM json_each(?)){tail}",
        (json.dumps(list(values)),),
        "all",
        pg=f"{sql} WHERE {column} = ANY(?::{pg_type}[]){tail}{' FOR UPDATE' if lock else ''}",
        pg_params=(list(values),),
    )


def _values(head: str, values: Sequence[Sequence[object]], tail: str = "") -> Q:
    """One multi-row ``INSERT … VALUES (…), (…) tail`` returning rows (one round trip)."""
    row = "(" + ", ".join("?" * len(values[0])) + ")"
    return Q(head + ", ".join([row] * len(values)) + tail, [v for r in values for v in r], "all")


def append_batch(items: Sequence[AppendItem]) -> Tx[list[Appended | StoreError]]:
    """Store many messages in one go: the group commit's fast path for deliveries and APPENDs."""
    results, _ = yield from append_and_reference(items, ())
    return results


def append_and_reference(
    items: Sequence[AppendItem], extra: Sequence[NewBlob]
) -> Tx[tuple[list[Appended | StoreError], dict[str, int]]]:
    """Store messages, and take one more reference on each blob of ``extra`` (the outbound
    queue's copy); returns the results and the blob ids by hash.

    A fixed number of statements whatever the number of messages, so a batch of 50 costs little
    more than one. Each message gets its own UID and MODSEQ, in order; one that does not fit
    its account's quota, or whose mailbox is gone, gets an error in its place and the others
    are stored. Rows are locked accounts first, then mailboxes, as everywhere else.
    """
    box_ids = sorted({i.mailbox_id for i in items})
    found = yield in_query(
        "SELECT m.id, m.account_id, m.uidnext, m.uidvalidity, a.quota_bytes, a.used_bytes, "
        "a.highestmodseq FROM mailboxes m JOIN accounts a ON a.id = m.account_id",
        "m.id",
        box_ids,
        "bigint",
        tail=" ORDER BY a.id, m.id",
        lock=True,
    )
    account_of = {int(r[0]): int(r[1]) for r in found}
    quota = {int(r[1]): (int(r[4]), int(r[5]), int(r[6])) for r in found}
    box_state = {int(r[0]): [int(r[2]), int(r[3]), 0] for r in found}  # uidnext, validity, modseq
    results: list[Appended | StoreError] = []
    placed: list[tuple[AppendItem, int, int, int]] = []  # item, account, uid, modseq
    for item in items:
        account_id = account_of.get(item.mailbox_id)
        if account_id is None or account_id not in quota or item.mailbox_id not in box_state:
            results.append(NotFound("The mailbox no longer exists."))
            continue
        limit, used, modseq = quota[account_id]
        if limit and used + item.size > limit:
            results.append(QuotaExceeded("The mailbox is full: the account is over its quota."))
            continue
        modseq += 1
        quota[account_id] = (limit, used + item.size, modseq)
        box = box_state[item.mailbox_id]
        uid = box[0]
        box[0], box[2] = uid + 1, modseq
        placed.append((item, account_id, uid, modseq))
        results.append(Appended(item.mailbox_id, box[1], uid, modseq, 0))
    if not placed:
        return results, (yield from store_blobs(extra, queue_only=True)) if extra else {}
    yield many(
        "UPDATE accounts SET used_bytes = ?, highestmodseq = ? WHERE id = ?",
        [(used, modseq, a) for a, (_, used, modseq) in sorted(quota.items())],
    )
    yield many(
        "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
        [(b[0], b[2], i) for i, b in sorted(box_state.items()) if b[2]],
    )
    blob_ids = yield from store_blobs([p[0].blob for p in placed] + list(extra))
    message_ids: dict[tuple[int, int], int] = {}
    for chunk in range(0, len(placed), _ROWS_PER_INSERT):
        part = placed[chunk : chunk + _ROWS_PER_INSERT]
        inserted = yield _values(
            _INSERT_MESSAGE_HEAD,
            [item.row(a, uid, m, blob_ids[item.blob.hash]) for item, a, uid, m in part],
            " RETURNING mailbox_id, uid, id",
        )
        message_ids.update(((int(r[0]), int(r[1])), int(r[2])) for r in inserted)
    contents = list({blob_ids[p[0].blob.hash]: p[0] for p in placed}.items())
    for chunk in range(0, len(contents), _ROWS_PER_INSERT):
        yield _values(
            _INSERT_CONTENT_HEAD,
            [item.content(blob_id) for blob_id, item in contents[chunk : chunk + _ROWS_PER_INSERT]],
            _INSERT_CONTENT_TAIL,
        )
    yield many(
        INSERT_CHANGE,
        [(a, m, item.mailbox_id, uid, int(ChangeKind.APPEND)) for item, a, uid, m in placed],
    )
    for account_id, (_, _, modseq) in sorted(quota.items()):
        changed = frozenset(item.mailbox_id for item, a, _, _ in placed if a == account_id)
        if changed:
            yield Notify(account_id, modseq, changed)
    return [
        r
        if isinstance(r, StoreError)
        else Appended(
            r.mailbox_id, r.uidvalidity, r.uid, r.modseq, message_ids[(r.mailbox_id, r.uid)]
        )
        for r in results
    ], blob_ids


def store_blobs(blobs: Sequence[NewBlob], *, queue_only: bool = False) -> Tx[dict[str, int]]:
    """Add references to blobs, creating the new ones; returns blob id by hash.

    The same content within the batch is stored once; big blobs (``DEDUPE_MIN``) are also
    shared with what is already stored. New blobs are indexed for search, except small ones
    only the outbound queue references (``queue_only``): never shared, no mailbox will ever
    show them, and indexing mail that only passes through cost as much CPU as relaying it.
    """
    added = Counter(b.hash for b in blobs)
    first: dict[str, NewBlob] = {}
    for blob in blobs:
        first.setdefault(blob.hash, blob)
    ids: dict[str, int] = {}
    small = [b for b in first.values() if b.size < DEDUPE_MIN]
    big = [b for b in first.values() if b.size >= DEDUPE_MIN]
    conflict = (
        f" ON CONFLICT (hash) WHERE size >= {DEDUPE_MIN} "
        "DO UPDATE SET refs = blobs.refs + excluded.refs"
    )
    for group, clause in ((small, ""), (big, conflict)):
        if not group:
            continue
        found = yield _values(
            "INSERT INTO blobs (hash, size, refs, data, path) VALUES ",
            [(b.hash, b.size, added[b.hash], b.data, b.path) for b in group],
            clause + " RETURNING id, hash, refs, path",
        )
        for blob_id, digest, refs, path in found:
            blob = first[str(digest)]
            ids[blob.hash] = int(blob_id)
            created = int(refs) == added[blob.hash]  # rows go when refs reach 0
            if created and not (queue_only and blob.size < DEDUPE_MIN):
                yield Index(int(blob_id), blob.headers_text, blob.body_text)
            for copy in blobs:
                if copy.hash == blob.hash and copy.path is not None and copy.path != path:
                    yield Unlink(copy.path)  # the content is stored already; this file is spare
    return ids


def list_messages(
    mailbox_id: int, first_uid: int, last_uid: int | None, columns: Collection[str] | None = None
) -> Tx[list[Message]]:
    """Rows in UID order; ``columns`` (see :data:`_CONTENT_COLUMNS`) limits the content read,
    the others are empty."""
    head, make = _reader(None if columns is None else frozenset(columns))
    found = yield rows(
        f"{head} m.mailbox_id = ? AND m.uid >= ? AND m.uid <= ? ORDER BY m.uid",
        mailbox_id,
        first_uid,
        last_uid if last_uid is not None else 2**62,
    )
    return [make(r) for r in found]


def messages_with_uids(
    mailbox_id: int, uids: Sequence[int], columns: Collection[str] | None = None
) -> Tx[list[Message]]:
    """Rows of ``uids`` (those still there) in UID order, each looked up by its UID: for a few
    UIDs spread over a large mailbox, where :func:`list_messages` would read the whole range."""
    head, make = _reader(None if columns is None else frozenset(columns))
    where = f"{head} m.mailbox_id = ? AND m.uid"
    found = yield Q(
        f"{where} IN (SELECT value FROM json_each(?)) ORDER BY m.uid",
        (mailbox_id, json.dumps(list(uids))),
        "all",
        pg=f"{where} = ANY(?::bigint[]) ORDER BY m.uid",
        pg_params=(mailbox_id, list(uids)),
    )
    return [make(r) for r in found]


#: Row columns :func:`search_columns` may look in: the decoded header values IMAP SEARCH
#: compares (RFC 9051 §6.4.4 SUBJECT, FROM, TO, CC, BCC).
_SEARCHABLE_COLUMNS = frozenset(("subject", "from_", "to_", "cc", "bcc"))
_PIECE = re.compile(r"[a-z0-9]+")


def search_columns(mailbox_id: int, column: str, pieces: Sequence[str]) -> Tx[list[int]]:
    """UIDs (ascending) of the messages whose ``column`` holds every one of ``pieces`` (lower-case
    ASCII letters and digits), ASCII case aside: a superset of those an IMAP header search for
    a string with these pieces matches, found without reading the rows into Python."""
    if column not in _SEARCHABLE_COLUMNS:
        raise ValueError(f"not a searchable column: {column}")
    if not pieces or not all(_PIECE.fullmatch(p) for p in pieces):
        raise ValueError(f"pieces must be lower-case ASCII letters and digits: {pieces!r}")
    # LIKE folds ASCII letters only on SQLite; ILIKE may fold more on PostgreSQL, which only
    # adds candidates. Pieces hold no LIKE wildcard (% or _).
    params = (mailbox_id, *(f"%{p}%" for p in pieces))
    where = (
        "SELECT m.uid FROM messages m CROSS JOIN contents c "
        "WHERE c.blob_id = m.blob_id AND m.mailbox_id = ?"
    )
    found = yield Q(
        where + "".join(f" AND c.{column} LIKE ?" for _ in pieces) + " ORDER BY m.uid",
        params,
        "all",
        pg=where + "".join(f" AND c.{column} ILIKE ?" for _ in pieces) + " ORDER BY m.uid",
        pg_params=params,
    )
    return [int(r[0]) for r in found]


def mailbox_view(mailbox_id: int) -> Tx[MailboxView]:
    """The mailbox as SELECT shows it, in four narrow queries of one snapshot."""
    found = yield rows("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", mailbox_id)
    uids = array("I", [r[0] for r in found])
    found = yield rows(
        "SELECT DISTINCT keywords FROM messages WHERE mailbox_id = ? AND keywords <> ''",
        mailbox_id,
    )
    keywords = frozenset(k for r in found for k in str(r[0]).split())
    unseen = yield one(
        "SELECT MIN(uid) FROM messages WHERE mailbox_id = ? AND flags & ? = 0",
        mailbox_id,
        int(Flag.SEEN),
    )
    top = yield one("SELECT MAX(modseq) FROM messages WHERE mailbox_id = ?", mailbox_id)
    first_unseen = None if unseen is None or unseen[0] is None else int(unseen[0])
    highest = 0 if top is None or top[0] is None else int(top[0])
    return MailboxView(uids, keywords, first_unseen, highest)


def list_states(mailbox_id: int, first_uid: int, last_uid: int | None) -> Tx[list[MessageState]]:
    """UID, MODSEQ and flags of each message: what an IMAP session tracks (no content)."""
    found = yield rows(
        "SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = ? AND uid >= ? "
        "AND uid <= ? ORDER BY uid",
        mailbox_id,
        first_uid,
        last_uid if last_uid is not None else 2**62,
    )
    return [
        MessageState(int(r[0]), int(r[1]), _flag(int(r[2])), tuple(str(r[3]).split()))
        for r in found
    ]


def _select_uids(mailbox_id: int, uids: Sequence[int], columns: str) -> Tx[list[Row]]:
    """Rows of ``uids`` in a mailbox, by one range scan filtered here (uid sets are mostly runs)."""
    if not uids:
        return []
    wanted = set(uids)
    found = yield rows(
        f"SELECT uid, {columns} FROM messages WHERE mailbox_id = ? AND uid >= ? AND uid <= ? "
        "ORDER BY uid",
        mailbox_id,
        min(wanted),
        max(wanted),
    )
    return [r for r in found if int(r[0]) in wanted]


def _account_of(mailbox_id: int) -> Tx[int]:
    row = yield one("SELECT account_id FROM mailboxes WHERE id = ?", mailbox_id)
    if row is None:
        raise NotFound("The mailbox no longer exists.")
    return int(row[0])


def store_flags(
    mailbox_id: int,
    uids: Sequence[int],
    mode: str,
    flags: int,
    keywords: Sequence[str],
    unchanged_since: int | None,
) -> Tx[tuple[list[tuple[int, int, tuple[str, ...], int]], list[int]]]:
    """Change flags (RFC 9051 §6.4.6; ``mode`` is "add", "remove" or "replace").

    Returns (uid, flags, keywords, modseq) of the changed messages, and the uids that failed
    the UNCHANGEDSINCE test (RFC 7162 §3.1.3).
    """
    account_id = yield from _account_of(mailbox_id)
    found = yield from _select_uids(mailbox_id, uids, "id, flags, keywords, modseq")
    updates: list[tuple[int, str, int, int]] = []
    changed: list[tuple[int, int, tuple[str, ...], int]] = []
    failed: list[int] = []
    kw_set = dict.fromkeys(keywords)
    for uid, msg_id, old_flags, old_kw, old_modseq in found:
        if unchanged_since is not None and int(old_modseq) > unchanged_since:
            failed.append(int(uid))
            continue
        current = dict.fromkeys(str(old_kw).split())
        if mode == "add":
            new_flags, new_kw = int(old_flags) | flags, {**current, **kw_set}
        elif mode == "remove":
            new_flags = int(old_flags) & ~flags
            new_kw = {k: None for k in current if k not in kw_set}
        else:
            new_flags, new_kw = flags, dict(kw_set)
        if new_flags != int(old_flags) or list(new_kw) != list(current):
            updates.append((new_flags, " ".join(new_kw), int(msg_id), int(uid)))
    if updates:
        modseq = yield from bump_modseq(account_id)
        yield many(
            "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE id = ?",
            [(f, k, modseq, i) for f, k, i, _ in updates],
        )
        yield many(
            INSERT_CHANGE,
            [(account_id, modseq, mailbox_id, u, int(ChangeKind.FLAGS)) for *_, u in updates],
        )
        yield run("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", modseq, mailbox_id)
        yield Notify(account_id, modseq, frozenset((mailbox_id,)))
        changed = [(u, f, tuple(k.split()), modseq) for f, k, _, u in updates]
    return changed, failed


def expunge(mailbox_id: int, uids: Sequence[int] | None, *, deleted_only: bool) -> Tx[list[int]]:
    """Remove messages (those flagged \\Deleted when ``deleted_only``); returns their uids."""
    account_id = yield from _account_of(mailbox_id)
    if uids is None:
        found = yield rows(
            "SELECT uid, id, flags, blob_id, size FROM messages WHERE mailbox_id = ? ORDER BY uid",
            mailbox_id,
        )
    else:
        found = yield from _select_uids(mailbox_id, uids, "id, flags, blob_id, size")
    doomed = [r for r in found if not deleted_only or int(r[2]) & Flag.DELETED]
    if not doomed:
        return []
    modseq = yield from bump_modseq(account_id)
    yield many("DELETE FROM messages WHERE id = ?", [(int(r[1]),) for r in doomed])
    yield from release_blobs(int(r[3]) for r in doomed)
    yield run(
        "UPDATE accounts SET used_bytes = used_bytes - ? WHERE id = ?",
        sum(int(r[4]) for r in doomed),
        account_id,
    )
    yield many(
        INSERT_CHANGE,
        [(account_id, modseq, mailbox_id, int(r[0]), int(ChangeKind.EXPUNGE)) for r in doomed],
    )
    yield run("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", modseq, mailbox_id)
    yield Notify(account_id, modseq, frozenset((mailbox_id,)))
    return [int(r[0]) for r in doomed]


def copy_messages(source_id: int, target_id: int, uids: Sequence[int]) -> Tx[list[tuple[int, int]]]:
    """Copy messages (RFC 9051 §6.4.7); returns (source uid, new uid) pairs for COPYUID."""
    # The copies share the blob and its contents row: only the narrow message rows are new.
    found = yield from _select_uids(
        source_id, uids, "flags, keywords, internal_date, size, blob_id, prefix"
    )
    if not found:
        return []
    account_id, modseq = yield from _charge_quota(target_id, sum(int(r[4]) for r in found))
    box = yield one(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = ? WHERE id = ? "
        "RETURNING uidnext - ?",
        len(found),
        modseq,
        target_id,
        len(found),
    )
    first = int(box[0])
    pairs = [(int(r[0]), first + i) for i, r in enumerate(found)]
    yield many(
        _INSERT_MESSAGE,
        [
            (target_id, account_id, new, modseq, *r[1:])
            for r, (_, new) in zip(found, pairs, strict=True)
        ],
    )
    yield many(
        "UPDATE blobs SET refs = refs + ? WHERE id = ?",
        sorted((n, b) for b, n in Counter(int(r[5]) for r in found).items()),
    )
    yield many(
        INSERT_CHANGE,
        [(account_id, modseq, target_id, new, int(ChangeKind.APPEND)) for _, new in pairs],
    )
    yield Notify(account_id, modseq, frozenset((target_id,)))
    return pairs


def move_messages(source_id: int, target_id: int, uids: Sequence[int]) -> Tx[list[tuple[int, int]]]:
    """Move messages atomically (RFC 6851): copy, then expunge from the source."""
    pairs = yield from copy_messages(source_id, target_id, uids)
    yield from expunge(source_id, [old for old, _ in pairs], deleted_only=False)
    return pairs


def changes_since(account_id: int, modseq: int) -> Tx[list[Change]]:
    found = yield rows(
        "SELECT modseq, mailbox_id, uid, kind FROM changes WHERE account_id = ? AND modseq > ? "
        "ORDER BY modseq, mailbox_id, uid",
        account_id,
        modseq,
    )
    return [Change(int(r[0]), int(r[1]), int(r[2]), ChangeKind(int(r[3]))) for r in found]


def search_text(
    mailbox_id: int, words: Sequence[str], pieces: Sequence[str], *, headers: bool, body: bool
) -> Tx[list[int]]:
    """UIDs of the messages the full-text index cannot rule out (RFC 9051 §6.4.4 TEXT, BODY).

    The embedded index (SQLite FTS5, trigram tokeniser) finds substrings: a message is a
    candidate when its text holds every trigram of every piece (``pieces``: lower-case ASCII,
    three letters or more); it does not tell headers from body. PostgreSQL's index knows words
    and word prefixes (as Dovecot's FTS does): a candidate has, for every word of ``words``, a
    word starting with it, in the headers and/or body as asked. Either way a superset: exact
    IMAP substring semantics are the caller's. With nothing the index can use, every message
    of the mailbox is a candidate.
    """
    grams = dict.fromkeys(p[i : i + 3] for p in pieces for i in range(len(p) - 2))
    words = _WORD.findall(" ".join(words).lower())  # only word characters reach to_tsquery
    every = "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid"
    if grams:
        # CROSS JOIN keeps the index as the outer loop (SQLite never reorders it): without
        # statistics (a young database, before PRAGMA optimize) the planner would otherwise
        # walk the mailbox's messages and run the MATCH once per message, 25 times slower.
        sql = (
            "SELECT m.uid FROM ix.fts CROSS JOIN messages m ON m.blob_id = fts.rowid "
            "WHERE fts MATCH ? AND m.mailbox_id = ? ORDER BY m.uid"
        )
        params: tuple[object, ...] = (" AND ".join(f'"{g}"' for g in grams), mailbox_id)
    else:
        sql, params = every, (mailbox_id,)
    if words and (headers or body):
        pg_doc = " || ".join(f"fts.{c}" for c, on in (("headers", headers), ("body", body)) if on)
        pg = (
            "SELECT m.uid FROM fts JOIN messages m ON m.blob_id = fts.blob_id "
            f"WHERE ({pg_doc}) @@ to_tsquery('simple', ?) AND m.mailbox_id = ? ORDER BY m.uid"
        )
        pg_params: tuple[object, ...] = (" & ".join(f"'{w}':*" for w in words), mailbox_id)
    else:
        pg, pg_params = every, (mailbox_id,)
    found = yield Q(sql, params, "all", pg=pg, pg_params=pg_params)
    return [int(r[0]) for r in found]
