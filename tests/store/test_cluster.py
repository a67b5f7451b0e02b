"""PostgreSQL cluster mode: two nodes on one database share UIDs and wake each other's sessions."""

from __future__ import annotations

import asyncio

import pytest

from courrier.store import Store
from tests.support.pgcluster import PostgresCluster

from .helpers import make_message, new_account


@pytest.fixture
async def two_nodes(pg_cluster: PostgresCluster) -> tuple[Store, Store]:
    url = pg_cluster.create_database()
    first = await Store.open_postgres(url)
    second = await Store.open_postgres(url)
    yield first, second  # type: ignore[misc]
    await first.close()
    await second.close()


async def test_change_on_one_node_wakes_a_session_on_another(
    two_nodes: tuple[Store, Store],
) -> None:
    a, b = two_nodes
    account = await new_account(a)
    inbox = await a.mailbox(account.id, "INBOX")
    with b.subscribe(account.id, account.highestmodseq) as sub:
        waiter = asyncio.create_task(asyncio.wait_for(sub.wait(account.highestmodseq), 10))
        await asyncio.sleep(0.05)
        appended = await a.append(inbox.id, make_message(1))
        assert await waiter == appended.modseq
    changes = await b.changes_since(account.id, account.highestmodseq)
    assert [c.uid for c in changes] == [1]


async def test_another_node_names_the_mailboxes_it_changed(two_nodes: tuple[Store, Store]) -> None:
    a, b = two_nodes
    account = await new_account(a)
    inbox = await a.mailbox(account.id, "INBOX")
    other = await a.mailbox(account.id, "Archive")
    start = account.highestmodseq
    with b.subscribe(account.id, start, mailbox_id=inbox.id) as sub:
        await a.append(other.id, make_message(1))
        waiter = asyncio.create_task(asyncio.wait_for(sub.wait(start), 10))
        await asyncio.sleep(0.2)  # the other node's NOTIFY for Archive has arrived by now
        assert not waiter.done()
        appended = await a.append(inbox.id, make_message(2))
        assert await waiter == appended.modseq


async def test_nodes_appending_together_never_share_a_uid(two_nodes: tuple[Store, Store]) -> None:
    a, b = two_nodes
    account = await new_account(a)
    inbox = await a.mailbox(account.id, "INBOX")
    results = await asyncio.gather(
        *(node.append(inbox.id, make_message(i)) for i in range(100) for node in (a, b))
    )
    assert sorted(r.uid for r in results) == list(range(1, 201))
    assert len({r.modseq for r in results}) == 200
