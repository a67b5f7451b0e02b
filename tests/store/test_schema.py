"""Schema versions and migrations: upgrades keep mail, failures roll back, newer schemas refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from courrier.store import SchemaTooNew, Store, schema
from courrier.store.schema import Migration

from .helpers import make_message, new_account, sql


async def test_reopening_keeps_data_and_applies_nothing_twice(
    store_opener: Callable[..., Any],
) -> None:
    first: Store = await store_opener()
    async with first:
        account = await new_account(first)
        inbox = await first.mailbox(account.id, "INBOX")
        appended = await first.append(inbox.id, make_message(1))
    second: Store = await store_opener()
    async with second:
        versions = await sql(second, "SELECT version FROM schema_version ORDER BY version")
        assert [v[0] for v in versions] == [m.version for m in schema.MIGRATIONS]
        assert await second.read_message(appended.message_id) == make_message(1)


async def test_upgrade_from_previous_version_keeps_mail(
    store_opener: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """A database at the current version gets the next migration; its mail is untouched."""
    first: Store = await store_opener()
    async with first:
        account = await new_account(first)
        inbox = await first.mailbox(account.id, "INBOX")
        appended = await first.append(inbox.id, make_message(1))
    column = "ALTER TABLE accounts ADD COLUMN display_name TEXT NOT NULL DEFAULT ''"
    upgrade = Migration(schema.LATEST + 1, "test: display names", (column,), (column,))
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, upgrade))
    monkeypatch.setattr(schema, "LATEST", upgrade.version)
    upgraded: Store = await store_opener()
    async with upgraded:
        assert await sql(upgraded, "SELECT MAX(version) FROM schema_version") == [
            (upgrade.version,)
        ]
        assert await sql(upgraded, "SELECT display_name FROM accounts") == [("",)]
        assert await upgraded.read_message(appended.message_id) == make_message(1)
        assert [m.uid for m in await upgraded.list_messages(inbox.id)] == [1]


async def test_failed_migration_rolls_back_whole(
    store_opener: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first: Store = await store_opener()
    async with first:
        await new_account(first)
    broken = Migration(
        schema.LATEST + 1,
        "test: fails half way",
        ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL"),
        ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL"),
    )
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "LATEST", broken.version)
    with pytest.raises(Exception, match=r"(?i)syntax"):
        await store_opener()
    monkeypatch.undo()
    again: Store = await store_opener()
    async with again:
        assert await sql(again, "SELECT MAX(version) FROM schema_version") == [(schema.LATEST,)]
        assert await again.get_account("bob@example.test") is not None
        tables = (
            await sql(
                again,
                "SELECT name FROM sqlite_master WHERE name = 'half'",
            )
            if again.backend.dialect == "sqlite"
            else await sql(again, "SELECT tablename FROM pg_tables WHERE tablename = 'half'")
        )
        assert tables == []


async def test_newer_schema_is_refused(
    store_opener: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first: Store = await store_opener()
    await first.close()
    monkeypatch.setattr(schema, "LATEST", schema.LATEST - 1)
    with pytest.raises(SchemaTooNew, match="newer than this courrier"):
        await store_opener()
