"""Transactions on the outbound queue: what is waiting to leave for other servers.

A queued message keeps a reference to its blob (like a mailbox message) and its own trace
headers; each recipient has a state (``queued``, ``hold``, then ``sent`` or ``failed``), an
attempt count, the time of its next attempt and the last reply. Delivery, retries, leases and
bounces come with the outbound issue; this module writes entries and lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from courrier.store.messages import release_blobs
from courrier.store.models import QueuedMessage, QueuedRecipient
from courrier.store.tx import Row, Tx, many, one, rows, run


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
