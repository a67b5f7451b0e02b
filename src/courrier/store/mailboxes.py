"""Transactions on mailboxes: names, hierarchy, SPECIAL-USE roles, subscriptions.

Mailbox changes take a MODSEQ and are logged like message changes (kind MAILBOX), so sessions
watching the account see creations, renames and deletions.
"""

from __future__ import annotations

from courrier.store import messages
from courrier.store.errors import AlreadyExists, InvalidName, NotFound
from courrier.store.models import ChangeKind, Mailbox
from courrier.store.tx import Notify, Q, Row, Tx, one, rows, run

DELIMITER = "/"

# -- mailboxes -----------------------------------------------------------------------------

_MAILBOX_COLUMNS = (
    "id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq, "
    "EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = mailboxes.account_id "
    "AND s.name = mailboxes.name), first_recent_uid"
)
_SUBSCRIBE = "INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING"


def _mailbox(r: Row, counts: Row | None = None) -> Mailbox:
    return Mailbox(
        id=int(r[0]),
        account_id=int(r[1]),
        name=str(r[2]),
        special_use=None if r[3] is None else str(r[3]),
        uidvalidity=int(r[4]),
        uidnext=int(r[5]),
        highestmodseq=int(r[6]),
        subscribed=bool(r[7]),
        first_recent_uid=int(r[8]),
        messages=int(counts[0]) if counts else 0,
        unseen=int(counts[1] or 0) if counts else 0,
        size=int(counts[2] or 0) if counts else 0,
    )


def check_mailbox_name(name: str) -> str:
    """Validate a mailbox name (RFC 9051 §5.1); ``INBOX`` is case-insensitive and canonical."""
    if not name or len(name) > 512:
        raise InvalidName("A mailbox name must have 1 to 512 characters.")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name) or "*" in name or "%" in name:
        raise InvalidName("A mailbox name cannot contain control characters, '*' or '%'.")
    parts = name.split(DELIMITER)
    if any(p == "" for p in parts):
        raise InvalidName(f"A mailbox name cannot have an empty level or end with {DELIMITER!r}.")
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    return DELIMITER.join(parts)


def insert_mailbox(
    account_id: int, name: str, special_use: str | None, now: int, *, subscribed: bool
) -> Tx[int]:
    row = yield one(
        "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, created_at) "
        "VALUES (?, ?, ?, 0, ?) RETURNING id",
        account_id,
        name,
        special_use,
        now,
    )
    mailbox_id = int(row[0])
    if subscribed:
        yield run(_SUBSCRIBE, account_id, name)
    # Ids are never reused and the clock only moves on, so a re-created name gets a new
    # UIDVALIDITY, and so does a database built anew (RFC 9051 §2.3.1.1).
    yield run(
        "UPDATE mailboxes SET uidvalidity = ? WHERE id = ?",
        (now + mailbox_id) % 0xFFFFFFFF or 1,
        mailbox_id,
    )
    return mailbox_id


def list_mailboxes(account_id: int, *, counts: bool) -> Tx[list[Mailbox]]:
    found = yield rows(
        f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY name", account_id
    )
    if not counts:
        return [_mailbox(r) for r in found]
    stats = yield rows(
        "SELECT mailbox_id, COUNT(*), SUM(CASE WHEN flags % 2 = 0 THEN 1 ELSE 0 END), SUM(size) "
        "FROM messages WHERE account_id = ? GROUP BY mailbox_id",
        account_id,
    )
    by_box = {int(s[0]): s[1:] for s in stats}
    return [_mailbox(r, by_box.get(int(r[0]), (0, 0, 0))) for r in found]


def get_mailbox(account_id: int, name: str, *, counts: bool = False) -> Tx[Mailbox | None]:
    """A mailbox; with ``counts``, its message count, unseen count and size too (a scan of its
    messages: for STATUS/SELECT, not for every delivery)."""
    row = yield one(
        f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? AND name = ?",
        account_id,
        name,
    )
    if row is None or not counts:
        return None if row is None else _mailbox(row)
    stats = yield one(
        "SELECT COUNT(*), SUM(CASE WHEN flags % 2 = 0 THEN 1 ELSE 0 END), SUM(size) "
        "FROM messages WHERE mailbox_id = ?",
        int(row[0]),
    )
    return _mailbox(row, stats)


def _log_mailbox_change(account_id: int, mailbox_id: int) -> Tx[int]:
    modseq = yield from messages.bump_modseq(account_id)
    yield run(
        "INSERT INTO changes (account_id, modseq, mailbox_id, uid, kind) VALUES (?, ?, ?, 0, ?)",
        account_id,
        modseq,
        mailbox_id,
        int(ChangeKind.MAILBOX),
    )
    yield Notify(account_id, modseq, frozenset((mailbox_id,)))
    return modseq


def create_mailbox(account_id: int, name: str, special_use: str | None, now: int) -> Tx[Mailbox]:
    """Create a mailbox and any missing parents (RFC 9051 §6.3.4)."""
    name = check_mailbox_name(name)
    if (yield from get_mailbox(account_id, name)) is not None:
        raise AlreadyExists(f"The mailbox {name} already exists.")
    parts = name.split(DELIMITER)
    for depth in range(1, len(parts) + 1):
        partial = DELIMITER.join(parts[:depth])
        exists = yield one(
            "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?", account_id, partial
        )
        if exists is None:
            role = special_use if depth == len(parts) else None
            mailbox_id = yield from insert_mailbox(account_id, partial, role, now, subscribed=False)
            yield from _log_mailbox_change(account_id, mailbox_id)
    created = yield from get_mailbox(account_id, name)
    assert created is not None
    return created


def rename_mailbox(account_id: int, old: str, new: str, now: int) -> Tx[None]:
    """Rename a mailbox with its children (RFC 9051 §6.3.6).

    Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty.
    """
    old, new = check_mailbox_name(old), check_mailbox_name(new)
    source = yield from get_mailbox(account_id, old)
    if source is None:
        raise NotFound(f"The mailbox {old} does not exist.")
    if (yield from get_mailbox(account_id, new)) is not None:
        raise AlreadyExists(f"The mailbox {new} already exists.")
    if new.startswith(old + DELIMITER):
        raise InvalidName("A mailbox cannot be moved inside itself.")
    if old == "INBOX":
        target = yield from create_mailbox(account_id, new, None, now)
        uids = yield rows("SELECT uid FROM messages WHERE mailbox_id = ?", source.id)
        yield from messages.move_messages(source.id, target.id, [int(u[0]) for u in uids])
        return
    children = yield rows("SELECT id, name FROM mailboxes WHERE account_id = ?", account_id)
    for mailbox_id, name in children:
        if str(name) != old and not str(name).startswith(old + DELIMITER):
            continue
        renamed = new + str(name)[len(old) :]
        yield run("UPDATE mailboxes SET name = ? WHERE id = ?", renamed, int(mailbox_id))
        # Subscriptions follow the mailbox, as Dovecot's do.
        yield run(
            "UPDATE subscriptions SET name = ? WHERE account_id = ? AND name = ?",
            renamed,
            account_id,
            str(name),
        )
        yield from _log_mailbox_change(account_id, int(mailbox_id))
    # Parents of the new name are created as CREATE would (RFC 9051 §6.3.6).
    parent = new.rpartition(DELIMITER)[0]
    if parent and (yield from get_mailbox(account_id, parent)) is None:
        yield from create_mailbox(account_id, parent, None, now)


def delete_mailbox(account_id: int, name: str) -> Tx[None]:
    """Delete a mailbox and its messages; INBOX cannot be deleted (RFC 9051 §6.3.5)."""
    name = check_mailbox_name(name)
    if name == "INBOX":
        raise InvalidName("INBOX cannot be deleted.")
    mailbox = yield from get_mailbox(account_id, name)
    if mailbox is None:
        raise NotFound(f"The mailbox {name} does not exist.")
    yield from drop_mailbox_contents(mailbox.id)
    yield run("DELETE FROM mailboxes WHERE id = ?", mailbox.id)
    yield from _log_mailbox_change(account_id, mailbox.id)


def set_subscribed(account_id: int, name: str, subscribed: bool) -> Tx[None]:
    """SUBSCRIBE / UNSUBSCRIBE a name, whether or not such a mailbox exists (RFC 9051 §6.3.7)."""
    name = check_mailbox_name(name)
    if subscribed:
        yield run(_SUBSCRIBE, account_id, name)
    else:
        yield run("DELETE FROM subscriptions WHERE account_id = ? AND name = ?", account_id, name)


def list_subscriptions(account_id: int) -> Tx[list[str]]:
    found = yield rows(
        "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name", account_id
    )
    return [str(r[0]) for r in found]


def drop_mailbox_contents(mailbox_id: int) -> Tx[None]:
    """Delete every message of a mailbox, releasing blobs and quota (no change log)."""
    found = yield rows(
        "SELECT blob_id, size, account_id FROM messages WHERE mailbox_id = ?", mailbox_id
    )
    if not found:
        return
    yield run("DELETE FROM messages WHERE mailbox_id = ?", mailbox_id)
    yield from messages.release_blobs(int(r[0]) for r in found)
    yield run(
        "UPDATE accounts SET used_bytes = used_bytes - ? WHERE id = ?",
        sum(int(r[1]) for r in found),
        int(found[0][2]),
    )


def claim_recent(mailbox_id: int) -> Tx[tuple[int, int]]:
    """Take the mailbox's \\Recent messages for one session (RFC 3501 §2.3.2: a message is
    recent in exactly one session): returns (first recent UID, UIDNEXT) as they were; the
    messages in between are this session's recent ones, and no other session's."""
    select = "SELECT first_recent_uid, uidnext FROM mailboxes WHERE id = ?"
    # Two nodes claiming at once must not both get the same messages (SQLite's writer is one).
    row = yield Q(select, (mailbox_id,), "one", pg=select + " FOR UPDATE")
    if row is None:
        raise NotFound("The mailbox no longer exists.")
    first, uidnext = int(row[0]), int(row[1])
    if uidnext > first:
        yield run("UPDATE mailboxes SET first_recent_uid = ? WHERE id = ?", uidnext, mailbox_id)
    return first, uidnext
