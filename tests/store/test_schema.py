"""Schema versions and migrations: upgrades keep mail, failures roll back, newer schemas refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from courrier.message import parse
from courrier.store import SchemaTooNew, Store, schema
from courrier.store.schema import Migration
from courrier.store.tx import Tx, one, run

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


async def test_v5_moves_imap_content_out_of_the_message_rows(
    store_opener: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version-4 database (content in every message row, twice for a copy) upgrades to one
    ``contents`` row per blob; every message reads as before, ids are not reused."""
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
    monkeypatch.setattr(schema, "LATEST", 4)
    old: Store = await store_opener()
    async with old:
        account = await new_account(old)
        inbox = await old.mailbox(account.id, "INBOX")
        archive = await old.mailbox(account.id, "Archive")
        raw = make_message(1, subject="Before the upgrade")
        p = parse(raw)
        content = (
            p.envelope, p.bodystructure, p.body, p.subject, p.from_, p.to, p.cc, p.bcc,
            int(p.sent_date.timestamp()) if p.sent_date else None, p.message_id,
            p.in_reply_to, p.references, p.preview, p.sort_subject, p.sort_from, p.sort_to,
            p.sort_cc,
        )  # fmt: skip
        columns = (
            "mailbox_id, account_id, uid, modseq, flags, keywords, internal_date, size, blob_id, "
            "prefix, envelope, bodystructure, body, subject, from_, to_, cc, bcc, sent_date, "
            "message_id, in_reply_to, references_, preview, sort_subject, sort_from, sort_to, "
            "sort_cc"
        )

        def v4_rows() -> Tx[None]:
            blob = yield one(
                "INSERT INTO blobs (hash, size, refs, data) VALUES (?, ?, 2, ?) RETURNING id",
                "h1",
                len(raw),
                raw,
            )
            marks = ", ".join("?" * 27)
            for n, box in enumerate((inbox, archive, inbox), 1):
                yield run(
                    f"INSERT INTO messages ({columns}) VALUES ({marks})",
                    box.id, account.id, n, n, 1, "$Work", 1_700_000_000, len(raw), int(blob[0]),
                    b"", *content,
                )  # fmt: skip
            yield run("UPDATE mailboxes SET uidnext = 4 WHERE account_id = ?", account.id)
            yield run("DELETE FROM messages WHERE uid = 3")  # the highest id, gone

        await old.backend.write(v4_rows)
        old_ids = await sql(old, "SELECT id FROM messages ORDER BY id")
    monkeypatch.undo()
    new: Store = await store_opener()
    async with new:
        assert await sql(new, "SELECT MAX(version) FROM schema_version") == [(schema.LATEST,)]
        assert await sql(new, "SELECT id FROM messages ORDER BY id") == old_ids
        assert await sql(new, "SELECT COUNT(*) FROM contents") == [(1,)]  # one blob
        for box in (inbox, archive):
            (message,) = await new.list_messages(box.id)
            assert message.subject == "Before the upgrade" and message.envelope == p.envelope
            assert message.keywords == ("$Work",) and message.flags == 1
            assert await new.read_message(message.id) == raw
        appended = await new.append(inbox.id, make_message(2))
        assert appended.message_id > max(i for (i,) in old_ids) + 1  # 3's id is not reused
        columns_now = (
            await sql(new, "SELECT name FROM pragma_table_info('messages')")
            if new.backend.dialect == "sqlite"
            else await sql(
                new,
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'messages'",
            )
        )
        assert "envelope" not in {c for (c,) in columns_now}


async def test_contents_rows_are_shared_by_copies_and_go_with_the_blob(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    archive = await store.mailbox(account.id, "Archive")
    appended = await store.append(inbox.id, make_message(1, subject="Shared"))
    await store.copy(inbox.id, archive.id, [appended.uid])
    assert await sql(store, "SELECT COUNT(*) FROM contents") == [(1,)]
    (copy,) = await store.list_messages(archive.id)
    assert copy.subject == "Shared"
    await store.expunge(inbox.id, [appended.uid], deleted_only=False)
    assert await sql(store, "SELECT COUNT(*) FROM contents") == [(1,)]  # the copy holds it
    await store.expunge(archive.id, [copy.uid], deleted_only=False)
    assert await sql(store, "SELECT COUNT(*) FROM contents") == [(0,)]
