"""The directory cache: delivery lookups served from memory, yet never wrong for long.

Two stores opened on one database stand for two processes (the server and the CLI, or two
nodes on PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from courrier.store import Store, cache
from tests.store.helpers import new_account


async def test_hits_are_served_without_a_database_read(store: Store) -> None:
    bob = await new_account(store, "bob@example.test")
    reads = 0
    real_read = store.backend.read

    async def counting(factory: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real_read(factory)

    store.directory = cache.DirectoryCache(counting)
    for _ in range(5):
        assert await store.directory.account("bob@example.test") == bob
        assert await store.directory.domain("example.test") is not None
        assert await store.directory.mailbox_id(bob.id, "INBOX") is not None
    assert reads == 4  # the serial, then one read per entry


async def test_local_changes_are_seen_at_once(store: Store) -> None:
    bob = await new_account(store, "bob@example.test")
    assert await store.directory.account("bob@example.test") is not None
    await store.create_mailbox(bob.id, "Lists")
    lists = await store.directory.mailbox_id(bob.id, "Lists")
    assert lists is not None
    await store.rename_mailbox(bob.id, "Lists", "News")
    assert await store.directory.mailbox_id(bob.id, "Lists") is None
    assert await store.directory.mailbox_id(bob.id, "News") == lists
    await store.delete_mailbox(bob.id, "News")
    assert await store.directory.mailbox_id(bob.id, "News") is None
    await store.remove_account("bob@example.test")
    assert await store.directory.account("bob@example.test") is None
    assert await store.directory.alias("team@example.test") is None
    await store.add_alias("team@example.test", ["carol@example.net"])
    alias = await store.directory.alias("team@example.test")
    assert alias is not None and alias.targets == ("carol@example.net",)


async def test_another_process_changes_are_seen_within_the_refresh(
    store_opener: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "REFRESH", 0.2)
    server: Store = await store_opener()
    cli: Store = await store_opener()
    try:
        await new_account(cli, "bob@example.test")
        # Only found entries are kept: what the other process creates is seen at once.
        assert await server.directory.account("bob@example.test") is not None
        assert await server.directory.domain("example.test") is not None
        await cli.remove_account("bob@example.test")
        await cli.remove_domain("example.test")
        await asyncio.sleep(0.25)
        assert await server.directory.account("bob@example.test") is None
        assert await server.directory.domain("example.test") is None
    finally:
        await cli.close()
        await server.close()


async def test_special_use_and_invalid_names(store: Store) -> None:
    bob = await new_account(store, "bob@example.test")
    sent = await store.directory.special_mailbox_id(bob.id, "\\Sent")
    assert sent == (await store.mailbox(bob.id, "Sent")).id
    assert await store.directory.mailbox_id(bob.id, "a*b") is None
    assert (
        await store.directory.mailbox_id(bob.id, "inbox")
        == (await store.mailbox(bob.id, "INBOX")).id
    )
