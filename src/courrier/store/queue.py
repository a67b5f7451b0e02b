"""Transactions on the outbound queue: what is waiting to leave for other servers.

A queued message keeps a reference to its blob (like a mailbox message) and its own trace
headers; each recipient has a state (``queued``, ``hold``, then ``sent`` or ``failed``), an
attempt count, the time of its next attempt and the last reply. A worker *leases* due
recipients (``lease_owner``, ``lease_until``): while the lease runs no other worker or node
takes them (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite has one writer), and a worker that
dies leaves them to be taken again when it ends. :func:`record` writes each attempt's outcome
and removes messages with no recipient left to try.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from courrier.store.messages import in_query, release_blobs
from courrier.store.models import (
    LeasedMessage,
    LeasedRecipient,
    QueuedMessage,
    QueuedRecipient,
    RecipientResult,
)
from courrier.store.tx import Q, Row, Tx, many, one, rows, run


@dataclass(frozen=True, slots=True)
class OutboundRecipient:
    address: str
    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message to queue for remote recipients (written with the local copies, atomically)."""

    queue_id: str
    sender: str
    recipients: tuple[OutboundRecipient, ...]
    prefix: bytes
    envid: str | None = None
    ret: str | None = None
    body: str | None = None
    smtputf8: bool = False
    requiretls: bool = False
    account_id: int | None = None


def enqueue(outbound: Outbound, blob_id: int, blob_size: int, now: int) -> Tx[int]:
    """Write the queue entry of a message whose blob (``blob_id``) it already references."""
    row = yield one(
        "INSERT INTO queue (queue_id, sender, blob_id, prefix, size, envid, ret, body, smtputf8, "
        "requiretls, account_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        outbound.queue_id,
        outbound.sender,
        blob_id,
        outbound.prefix,
        len(outbound.prefix) + blob_size,
        outbound.envid,
        outbound.ret,
        outbound.body,
        int(outbound.smtputf8),
        int(outbound.requiretls),
        outbound.account_id,
        now,
    )
    message_id = int(row[0])
    yield many(
        "INSERT INTO queue_recipients (message_id, recipient, domain, orcpt, notify, "
        "next_attempt) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (message_id, r.address, r.address.rpartition("@")[2], r.orcpt, r.notify, now)
            for r in outbound.recipients
        ],
    )
    return message_id


def list_queue() -> Tx[list[QueuedMessage]]:
    messages = yield rows(
        "SELECT id, queue_id, sender, size, created_at, envid, ret, body, smtputf8, requiretls "
        "FROM queue ORDER BY created_at, id"
    )
    recipients = yield rows(
        "SELECT message_id, recipient, state, attempts, next_attempt, last_reply, notify, orcpt "
        "FROM queue_recipients ORDER BY id"
    )
    by_message: dict[int, list[QueuedRecipient]] = {}
    for r in recipients:
        by_message.setdefault(int(r[0]), []).append(_recipient(r))
    return [
        QueuedMessage(
            int(m[0]),
            str(m[1]),
            str(m[2]),
            int(m[3]),
            int(m[4]),
            tuple(by_message.get(int(m[0]), ())),
            envid=m[5],
            ret=m[6],
            body=m[7],
            smtputf8=bool(m[8]),
            requiretls=bool(m[9]),
        )
        for m in messages
    ]


def _recipient(r: Row) -> QueuedRecipient:
    return QueuedRecipient(
        recipient=str(r[1]),
        state=str(r[2]),
        attempts=int(r[3]),
        next_attempt=int(r[4]),
        last_reply=str(r[5]),
        notify=None if r[6] is None else str(r[6]),
        orcpt=None if r[7] is None else str(r[7]),
    )


def delete_message(queue_id: str) -> Tx[bool]:
    """Remove a queued message and all its recipients (``courrier queue delete``)."""
    row = yield one("SELECT id, blob_id FROM queue WHERE queue_id = ?", queue_id)
    if row is None:
        return False
    yield run("DELETE FROM queue_recipients WHERE message_id = ?", int(row[0]))
    yield run("DELETE FROM queue WHERE id = ?", int(row[0]))
    yield from release_blobs([int(row[1])])
    return True


def lease(owner: str, now: int, until: int, limit: int) -> Tx[list[LeasedMessage]]:
    """Take up to ``limit`` due recipients (queued, next attempt reached, no running lease)
    for ``owner`` until ``until``, with their messages."""
    due = (
        "SELECT id FROM queue_recipients WHERE state = 'queued' AND next_attempt <= ? "
        "AND lease_until <= ? ORDER BY next_attempt, id LIMIT ?"
    )
    found = yield Q(due, (now, now, limit), "all", pg=due + " FOR UPDATE SKIP LOCKED")
    ids = [int(r[0]) for r in found]
    if not ids:
        return []
    take = "UPDATE queue_recipients SET lease_owner = ?, lease_until = ? WHERE id"
    yield Q(
        f"{take} IN (SELECT value FROM json_each(?))",
        (owner, until, json.dumps(ids)),
        "none",
        pg=f"{take} = ANY(?::bigint[])",
        pg_params=(owner, until, ids),
    )
    recipients = yield in_query(
        "SELECT id, message_id, recipient, domain, attempts, notify, orcpt, warned "
        "FROM queue_recipients",
        "id",
        ids,
        "bigint",
        tail=" ORDER BY id",
    )
    by_message: dict[int, list[LeasedRecipient]] = {}
    for r in recipients:
        by_message.setdefault(int(r[1]), []).append(
            LeasedRecipient(int(r[0]), str(r[2]), str(r[3]), int(r[4]), r[5], r[6], bool(r[7]))
        )
    messages = yield in_query(
        "SELECT id, queue_id, sender, blob_id, created_at, envid, ret, body, smtputf8, "
        "requiretls FROM queue",
        "id",
        sorted(by_message),
        "bigint",
        tail=" ORDER BY id",
    )
    return [
        LeasedMessage(
            int(m[0]),
            str(m[1]),
            str(m[2]),
            int(m[3]),
            int(m[4]),
            tuple(by_message[int(m[0])]),
            envid=m[5],
            ret=m[6],
            body=m[7],
            smtputf8=bool(m[8]),
            requiretls=bool(m[9]),
        )
        for m in messages
    ]


def record(results: list[RecipientResult]) -> Tx[list[str]]:
    """Write each recipient's outcome and end its lease; remove the messages with no recipient
    left queued or held. Returns the queue ids removed."""
    if not results:
        return []
    yield many(
        "UPDATE queue_recipients SET state = ?, attempts = attempts + 1, next_attempt = ?, "
        "last_reply = ?, warned = CASE WHEN ? = 1 THEN 1 ELSE warned END, lease_owner = '', "
        "lease_until = 0 WHERE id = ?",
        [(r.state, r.next_attempt, r.reply[:1000], int(r.warned), r.recipient_id) for r in results],
    )
    touched = yield in_query(
        "SELECT DISTINCT message_id FROM queue_recipients",
        "id",
        [r.recipient_id for r in results],
        "bigint",
    )
    message_ids = sorted(int(r[0]) for r in touched)
    open_ = yield from _still_open(message_ids)
    done = [m for m in message_ids if m not in open_]
    if not done:
        return []
    gone = yield in_query("SELECT queue_id, blob_id FROM queue", "id", done, "bigint")
    yield in_query("DELETE FROM queue_recipients", "message_id", done, "bigint")
    yield in_query("DELETE FROM queue", "id", done, "bigint")
    yield from release_blobs(int(r[1]) for r in gone)
    return [str(r[0]) for r in gone]


def _still_open(message_ids: list[int]) -> Tx[set[int]]:
    found = yield in_query(
        "SELECT DISTINCT message_id FROM queue_recipients",
        "message_id",
        message_ids,
        "bigint",
        tail=" AND state IN ('queued', 'hold')",
    )
    return {int(r[0]) for r in found}


def content_location(message_id: int) -> Tx[tuple[bytes, bytes | None, str | None] | None]:
    """A queued message's trace prefix, and its blob's inline data or file path."""
    row = yield one(
        "SELECT q.prefix, b.data, b.path FROM queue q JOIN blobs b ON b.id = q.blob_id "
        "WHERE q.id = ?",
        message_id,
    )
    if row is None:
        return None
    return bytes(row[0]), None if row[1] is None else bytes(row[1]), row[2]


def change_state(queue_id: str | None, states: tuple[str, ...], state: str, now: int) -> Tx[int]:
    """Move the recipients of one queued message (None: of all) that are in one of ``states``
    to ``state``, due at once; returns how many moved (hold, release, flush)."""
    marks = ", ".join("?" * len(states))
    sql = f"UPDATE queue_recipients SET state = ?, next_attempt = ? WHERE state IN ({marks})"
    params: list[object] = [state, now, *states]
    if queue_id is not None:
        sql += " AND message_id = (SELECT id FROM queue WHERE queue_id = ?)"
        params.append(queue_id)
    changed = yield run(sql, *params)
    return int(changed)


def queued_message(queue_id: str) -> Tx[int | None]:
    row = yield one("SELECT id FROM queue WHERE queue_id = ?", queue_id)
    return None if row is None else int(row[0])
