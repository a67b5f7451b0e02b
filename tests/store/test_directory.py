"""Domains, accounts and aliases, on both backends."""

from __future__ import annotations

import pytest

from courrier.store import AlreadyExists, InUse, NotFound, Store, Target

from .helpers import make_message, new_account, sql


async def test_domains_add_list_remove(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_domain("example.net")
    assert [d.name for d in await store.list_domains()] == ["example.net", "example.org"]
    with pytest.raises(AlreadyExists, match=r"example\.org already exists"):
        await store.add_domain("example.org")
    await store.remove_domain("example.net")
    assert [d.name for d in await store.list_domains()] == ["example.org"]
    with pytest.raises(NotFound):
        await store.remove_domain("example.net")


async def test_account_gets_special_use_mailboxes(store: Store) -> None:
    account = await new_account(store)
    boxes = {m.name: m.special_use for m in await store.list_mailboxes(account.id)}
    assert boxes == {
        "INBOX": None,
        "Drafts": "\\Drafts",
        "Sent": "\\Sent",
        "Archive": "\\Archive",
        "Junk": "\\Junk",
        "Trash": "\\Trash",
    }
    inbox = await store.mailbox(account.id, "inbox")
    assert inbox.name == "INBOX" and inbox.uidnext == 1 and inbox.uidvalidity > 0
    assert inbox.subscribed


async def test_account_errors_write_nothing(store: Store) -> None:
    with pytest.raises(NotFound, match="not hosted here"):
        await store.add_account("x@nowhere.test", "h")
    await new_account(store)
    with pytest.raises(AlreadyExists):
        await store.add_account("bob@example.test", "h2")
    accounts = await store.list_accounts()
    assert [a.address for a in accounts] == ["bob@example.test"]
    assert accounts[0].password_hash == "hash"
    assert len(await sql(store, "SELECT id FROM mailboxes")) == 6


async def test_password_and_quota_changes(store: Store) -> None:
    await new_account(store)
    await store.set_password("bob@example.test", "newhash", "scram")
    await store.set_quota("bob@example.test", 1000)
    account = await store.get_account("bob@example.test")
    assert account is not None
    assert (account.password_hash, account.scram_sha256, account.quota_bytes) == (
        "newhash",
        "scram",
        1000,
    )
    with pytest.raises(NotFound):
        await store.set_password("nobody@example.test", "x")


async def test_aliases_one_to_many_and_catch_all(store: Store) -> None:
    await new_account(store)
    await store.add_alias("team@example.test", ["bob@example.test", "carol@elsewhere.org"])
    await store.add_alias("team@example.test", ["dave@example.test"])
    await store.add_alias("@example.test", ["bob@example.test"])
    alias = await store.get_alias("team@example.test")
    assert alias is not None
    assert alias.targets == ("bob@example.test", "carol@elsewhere.org", "dave@example.test")
    listed = {a.address: a.targets for a in await store.list_aliases("example.test")}
    assert listed["@example.test"] == ("bob@example.test",)
    with pytest.raises(AlreadyExists):
        await store.add_alias("team@example.test", ["bob@example.test"])
    with pytest.raises(AlreadyExists, match="is an account"):
        await store.add_alias("bob@example.test", ["carol@elsewhere.org"])
    with pytest.raises(AlreadyExists, match="is already an alias"):
        await store.add_account("team@example.test", "h")
    assert await store.remove_alias("team@example.test", "carol@elsewhere.org") == 1
    assert await store.remove_alias("team@example.test") == 2
    assert await store.get_alias("team@example.test") is None
    with pytest.raises(NotFound):
        await store.remove_alias("team@example.test")


async def test_remove_account_releases_everything(store: Store) -> None:
    account = await new_account(store)
    other = await new_account(store, "carol@example.test")
    await store.add_alias("team@example.test", ["bob@example.test", "carol@example.test"])
    inbox = await store.mailbox(account.id, "INBOX")
    other_inbox = await store.mailbox(other.id, "INBOX")
    await store.deliver(make_message(1), [Target(inbox.id), Target(other_inbox.id)])
    await store.append(inbox.id, make_message(2))
    await store.remove_account("bob@example.test")
    assert await store.get_account("bob@example.test") is None
    assert await sql(store, "SELECT id FROM mailboxes WHERE account_id = ?", account.id) == []
    assert await sql(store, "SELECT id FROM messages WHERE account_id = ?", account.id) == []
    # The shared blob stays for carol with one reference; bob's own blob is gone.
    assert await sql(store, "SELECT refs FROM blobs") == [(1,)]
    alias = await store.get_alias("team@example.test")
    assert alias is not None and alias.targets == ("carol@example.test",)


async def test_remove_domain_with_accounts_needs_force(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    await store.append(inbox.id, make_message(1))
    with pytest.raises(InUse, match="1 account"):
        await store.remove_domain("example.test")
    assert await store.get_account("bob@example.test") is not None
    assert await store.remove_domain("example.test", force=True) == 1
    assert await store.list_accounts() == []
    assert await sql(store, "SELECT id FROM blobs") == []
