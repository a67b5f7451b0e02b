"""The outbound queue in the store: written with local copies atomically, listed, deleted."""

from __future__ import annotations

from courrier.store import Store, Target
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
