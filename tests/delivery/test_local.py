"""Local delivery into a real store: trace headers, +tag folders, one copy per account, quotas."""

from __future__ import annotations

import re

from courrier.delivery.local import LocalRecipient, Trace, deliver, tag_of
from courrier.store import Account, QuotaExceeded, Store
from tests.store.helpers import make_message

TRACE = Trace(
    helo="client.example.net",
    client_ip="192.0.2.7",
    client_name="client.example.net",
    by="mx.example.org",
    protocol="ESMTPS",
    queue_id="Q1234",
    tls="TLSv1.3 TLS_AES_256_GCM_SHA384",
)


async def _accounts(store: Store) -> tuple[Account, Account, Account]:
    await store.add_domain("example.org")
    bob = await store.add_account("bob@example.org", "h")
    carol = await store.add_account("carol@example.org", "h", quota_bytes=10)
    dan = await store.add_account("dan@example.org", "h")
    await store.create_mailbox(bob.id, "lists")
    return bob, carol, dan


async def test_delivery_to_several_accounts(store: Store) -> None:
    bob, carol, dan = await _accounts(store)
    raw = make_message(1)
    results = await deliver(
        store,
        raw,
        sender="alice@example.net",
        recipients=[
            LocalRecipient("bob+lists@example.org", bob),
            LocalRecipient("team@example.org", bob),  # same account: once
            LocalRecipient("carol@example.org", carol),
            LocalRecipient("dan+nosuchfolder@example.org", dan),
        ],
        trace=TRACE,
        separator="+",
    )
    assert [r.address for r, _ in results] == [
        "bob+lists@example.org",
        "carol@example.org",
        "dan+nosuchfolder@example.org",
    ]
    to_bob, to_carol, to_dan = (outcome for _, outcome in results)
    assert isinstance(to_carol, QuotaExceeded)
    assert not isinstance(to_bob, BaseException) and not isinstance(to_dan, BaseException)
    lists = await store.mailbox(bob.id, "lists")
    assert to_bob.mailbox_id == lists.id
    inbox = await store.mailbox(dan.id, "INBOX")
    assert to_dan.mailbox_id == inbox.id
    stored = await store.read_message(to_bob.message_id)
    head, _, rest = stored.partition(b"Received: ")
    assert head == b"Return-Path: <alice@example.net>\r\n"
    assert rest.endswith(raw)
    received = (b"Received: " + rest[: len(rest) - len(raw)]).decode()
    assert re.fullmatch(
        r"Received: from client\.example\.net \(client\.example\.net \[192\.0\.2\.7\]\)\r\n"
        r"\tby mx\.example\.org \(courrier\) with ESMTPS id Q1234\r\n"
        r"\t\(TLSv1\.3 TLS_AES_256_GCM_SHA384\); [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
        r"\d\d:\d\d:\d\d [+-]\d{4}\r\n",
        received,
    ), received


async def test_single_recipient_trace_names_it(store: Store) -> None:
    bob, _, _ = await _accounts(store)
    ((_, result),) = await deliver(
        store,
        make_message(2),
        sender="",
        recipients=[LocalRecipient("bob@example.org", bob)],
        trace=TRACE,
        separator="+",
    )
    assert not isinstance(result, BaseException)
    stored = await store.read_message(result.message_id)
    assert stored.startswith(b"Return-Path: <>\r\nReceived: ")
    assert b"\r\n\tfor <bob@example.org>; " in stored


def test_tag_of() -> None:
    assert tag_of("bob+lists@example.org", "+") == "lists"
    assert tag_of("bob+a+b@example.org", "+") == "a+b"
    assert tag_of("bob@example.org", "+") is None
    assert tag_of("bob+@example.org", "+") is None
    assert tag_of("bob+x@example.org", "") is None
