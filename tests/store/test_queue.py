"""The outbound queue in the store: written with local copies atomically, listed, deleted."""

from __future__ import annotations

import time

from courrier.store import RecipientResult, Store, Target
from courrier.store.queue import Outbound, OutboundRecipient

from .helpers import make_message, new_account, sql


async def test_local_copies_and_queue_entry_share_one_blob(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    raw = make_message(1)
    outbound = Outbound(
        queue_id="ABC123",
        sender="bob@example.test",
        recipients=(
            OutboundRecipient("x@elsewhere.net", "FAILURE", "rfc822;x@elsewhere.net"),
            OutboundRecipient("y@other.example"),
        ),
        prefix=b"Received: from somewhere\r\n",
        account_id=account.id,
    )
    (local,) = await store.deliver(raw, [Target(inbox.id)], outbound=outbound)
    assert not isinstance(local, BaseException)
    (queued,) = await store.list_queue()
    assert (queued.queue_id, queued.sender, queued.size) == (
        "ABC123",
        "bob@example.test",
        len(b"Received: from somewhere\r\n") + len(raw),
    )
    assert [(r.recipient, r.state, r.attempts, r.notify, r.orcpt) for r in queued.recipients] == [
        ("x@elsewhere.net", "queued", 0, "FAILURE", "rfc822;x@elsewhere.net"),
        ("y@other.example", "queued", 0, None, None),
    ]
    assert await sql(store, "SELECT refs FROM blobs") == [(2,)]
    assert await store.delete_queued("ABC123")
    assert not await store.delete_queued("ABC123")
    assert await store.list_queue() == []
    assert await sql(store, "SELECT refs FROM blobs") == [(1,)]
    assert await store.read_message(local.message_id) == raw


async def test_queue_only_delivery(store: Store) -> None:
    outbound = Outbound("Q2", "", (OutboundRecipient("x@elsewhere.net"),), b"")
    assert await store.deliver(make_message(2), [], outbound=outbound) == []
    (queued,) = await store.list_queue()
    assert queued.queue_id == "Q2" and queued.sender == ""
    assert await store.delete_queued("Q2")
    assert await sql(store, "SELECT id FROM blobs") == []


async def test_leases_keep_recipients_from_other_workers_and_outcomes_finish_messages(
    store: Store,
) -> None:
    recipients = tuple(OutboundRecipient(f"r{n}@elsewhere.net") for n in range(3))
    outbound = Outbound("Q3", "bob@example.test", recipients, b"Received: x\r\n", envid="E1")
    await store.deliver(make_message(3), [], outbound=outbound)
    now = int(time.time()) + 5
    (message,) = await store.lease_queue("node-a:1", now, now + 900, 10)
    assert message.queue_id == "Q3" and message.envid == "E1"
    assert [r.address for r in message.recipients] == [r.address for r in recipients]
    assert await store.read_queued(message.id) == b"Received: x\r\n" + make_message(3)
    # Leased: nobody else gets them until the lease ends.
    assert await store.lease_queue("node-b:1", now + 10, now + 910, 10) == []
    first, second, third = message.recipients
    finished = await store.record_queue(
        [
            RecipientResult(first.id, "sent", "250 2.0.0 ok"),
            RecipientResult(second.id, "failed", "550 5.1.1 no such user"),
            RecipientResult(third.id, "queued", "451 4.7.1 try later", next_attempt=now + 300),
        ]
    )
    assert finished == []  # the third is still to be tried
    (listed,) = await store.list_queue()
    assert [(r.state, r.attempts, r.last_reply) for r in listed.recipients] == [
        ("sent", 1, "250 2.0.0 ok"),
        ("failed", 1, "550 5.1.1 no such user"),
        ("queued", 1, "451 4.7.1 try later"),
    ]
    assert await store.lease_queue("node-b:1", now + 299, now + 1000, 10) == []  # not yet due
    (again,) = await store.lease_queue("node-b:1", now + 300, now + 1200, 10)
    assert [r.address for r in again.recipients] == ["r2@elsewhere.net"]
    assert again.recipients[0].attempts == 1
    assert await store.record_queue([RecipientResult(third.id, "sent", "250 ok")]) == ["Q3"]
    assert await store.list_queue() == []
    assert await sql(store, "SELECT id FROM blobs") == []


async def test_an_expired_lease_is_taken_again(store: Store) -> None:
    outbound = Outbound("Q4", "", (OutboundRecipient("x@elsewhere.net"),), b"")
    await store.deliver(make_message(4), [], outbound=outbound)
    now = int(time.time()) + 5
    assert len(await store.lease_queue("dead-node:1", now, now + 60, 10)) == 1
    assert await store.lease_queue("other:1", now + 59, now + 120, 10) == []
    assert len(await store.lease_queue("other:1", now + 60, now + 120, 10)) == 1


async def test_mail_only_passing_through_is_not_indexed(store: Store) -> None:
    """A message only for other servers is never searched: not indexed (it cost as much CPU
    as relaying it); one that also has a local copy is, and stays searchable after the
    queue lets go of it."""
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    passing = Outbound("OUT1", "bob@example.test", (OutboundRecipient("x@elsewhere.net"),), b"")
    await store.deliver(make_message(1, subject="zanzibar"), [], outbound=passing)
    both = Outbound("OUT2", "bob@example.test", (OutboundRecipient("x@elsewhere.net"),), b"")
    await store.deliver(make_message(2, subject="zanzibar"), [Target(inbox.id)], outbound=both)
    await store.backend.flush_index()
    assert len(await sql(store, "SELECT 1 FROM fts")) == 1
    assert await store.search_text(inbox.id, ["zanzibar"], ["zanzibar"]) == [1]
    assert await store.delete_queued("OUT1") and await store.delete_queued("OUT2")
    await store.backend.flush_index()
    assert await store.search_text(inbox.id, ["zanzibar"], ["zanzibar"]) == [1]
    assert len(await sql(store, "SELECT 1 FROM fts")) == 1
