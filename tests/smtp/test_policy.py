"""MAIL/RCPT decisions against a real store: relay control in every spelling, quotas, senders."""

from __future__ import annotations

import pytest

from courrier.smtp.policy import check_recipient, check_sender
from courrier.store import Account, Store


async def _setup(store: Store) -> Account:
    await store.add_domain("example.org")
    bob = await store.add_account("bob@example.org", "h")
    await store.add_account("full@example.org", "h", quota_bytes=1000)
    await store.add_alias("team@example.org", ["bob@example.org", "x@elsewhere.net"])
    await store.add_alias("sales@example.org", ["bob@example.org"])
    return bob


RELAY_SPELLINGS = [
    "victim@elsewhere.net",
    "victim%elsewhere.net@example.org",
    "elsewhere.net!victim@example.org",
    "@example.org:victim@elsewhere.net",
    '"victim@elsewhere.net"@example.org',
    "victim@elsewhere.net.",
    "victim@[192.0.2.1]",
    "victim@[IPv6:2001:db8::1]",
    "Victim@ELSEWHERE.net",
]


@pytest.mark.parametrize("path", RELAY_SPELLINGS)
async def test_unauthenticated_relay_is_refused_in_every_spelling(store: Store, path: str) -> None:
    await _setup(store)
    decision = await check_recipient(store, path, authenticated=None, size=None, separator="+")
    assert decision.reply[:2] == (554, "5.7.1"), decision.reply
    assert decision.accounts == [] and decision.remote == []


async def test_local_recipients(store: Store) -> None:
    bob = await _setup(store)
    for path in (
        "bob@example.org",
        "BOB@Example.org.",
        "bob+news@example.org",
        "sales@example.org",
    ):
        decision = await check_recipient(store, path, authenticated=None, size=None, separator="+")
        assert decision.reply[0] == 250 and [a.id for a in decision.accounts] == [bob.id], path
    team = await check_recipient(
        store, "team@example.org", authenticated=None, size=None, separator="+"
    )
    assert team.remote == ["x@elsewhere.net"]
    unknown = await check_recipient(
        store, "nobody@example.org", authenticated=None, size=None, separator="+"
    )
    assert unknown.reply[:2] == (550, "5.1.1")


async def test_quota_at_rcpt_time(store: Store) -> None:
    await _setup(store)
    too_big = await check_recipient(
        store, "full@example.org", authenticated=None, size=5000, separator="+"
    )
    assert too_big.reply[:2] == (552, "5.2.2")
    fits = await check_recipient(
        store, "full@example.org", authenticated=None, size=500, separator="+"
    )
    assert fits.reply[0] == 250
    account = await store.get_account("full@example.org")
    assert account is not None
    inbox = await store.mailbox(account.id, "INBOX")
    await store.append(inbox.id, b"Subject: x\r\n\r\n" + b"y" * 900)
    full = await check_recipient(
        store, "full@example.org", authenticated=None, size=200, separator="+"
    )
    assert full.reply[:2] == (452, "4.2.2")


async def test_authenticated_clients_may_send_anywhere(store: Store) -> None:
    bob = await _setup(store)
    decision = await check_recipient(
        store, "victim@elsewhere.net", authenticated=bob, size=None, separator="+"
    )
    assert decision.reply[0] == 250 and decision.remote == ["victim@elsewhere.net"]
    routed = await check_recipient(
        store, "victim%elsewhere.net@example.org", authenticated=bob, size=None, separator="+"
    )
    assert routed.reply[:2] == (554, "5.7.1")


async def test_submission_sender_must_be_owned(store: Store) -> None:
    bob = await _setup(store)
    assert (await check_sender(store, "bob@example.org", authenticated=bob))[0] == 250
    assert (await check_sender(store, "Bob@EXAMPLE.org", authenticated=bob))[0] == 250
    assert (await check_sender(store, "sales@example.org", authenticated=bob))[0] == 250
    for path in ("full@example.org", "ceo@example.org", "someone@elsewhere.net", ""):
        reply = await check_sender(store, path, authenticated=bob)
        assert reply[:2] == (553, "5.7.1"), path
    # Unauthenticated (MX): any well-formed sender, and the null reverse-path, are fine.
    assert (await check_sender(store, "", authenticated=None))[0] == 250
    assert (await check_sender(store, "anyone@elsewhere.net", authenticated=None))[0] == 250
    assert (await check_sender(store, "no-domain", authenticated=None))[0] == 501
