"""Mailboxes, messages, flags, copies, expunges, quotas, blobs and full text, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from courrier.store import ChangeKind, Flag, NotFound, QuotaExceeded, Store, Target
from courrier.store.errors import AlreadyExists, InvalidName
from courrier.store.tx import Tx, run

from .helpers import make_message, new_account, sql


async def test_append_and_read_back_exactly(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    raw = make_message(1, subject="Hello there")
    prefix = b"Return-Path: <alice@example.org>\r\nReceived: from x by y; now\r\n"
    appended = await store.append(
        inbox.id,
        raw,
        flags=Flag.SEEN,
        keywords=["$Forwarded"],
        internal_date=1_700_000_000,
        prefix=prefix,
    )
    assert (appended.uid, appended.uidvalidity) == (1, inbox.uidvalidity)
    assert await store.read_message(appended.message_id) == prefix + raw
    (msg,) = await store.list_messages(inbox.id)
    assert msg.uid == 1 and msg.flags == Flag.SEEN and msg.keywords == ("$Forwarded",)
    assert msg.size == len(prefix) + len(raw)
    assert msg.internal_date == 1_700_000_000
    assert msg.subject == "Hello there"
    assert msg.message_id == "<m1@example.org>"
    assert msg.envelope.startswith(b'("Mon, 23 Nov 2026 10:00:00 +0100" "Hello there" ')
    assert msg.bodystructure.upper().startswith(b'("TEXT" "PLAIN" ("CHARSET" "UTF-8")')
    assert msg.sent_date == 1_795_424_400
    after = await store.mailbox(account.id, "INBOX", counts=True)
    assert (after.uidnext, after.messages, after.unseen) == (2, 1, 0)
    assert after.highestmodseq == appended.modseq
    refreshed = await store.get_account("bob@example.test")
    assert refreshed is not None and refreshed.used_bytes == msg.size


async def test_concurrent_appends_get_increasing_uids_and_modseqs(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    results = await asyncio.gather(*(store.append(inbox.id, make_message(i)) for i in range(200)))
    assert sorted(r.uid for r in results) == list(range(1, 201))
    by_uid = sorted(results, key=lambda r: r.uid)
    modseqs = [r.modseq for r in by_uid]
    assert modseqs == sorted(modseqs) and len(set(modseqs)) == 200
    listed = await store.list_messages(inbox.id)
    assert [m.uid for m in listed] == list(range(1, 201))
    for result in results[:20]:
        content = await store.read_message(result.message_id)
        assert content == make_message(int(content.split(b"number ")[1].split(b".")[0]))


async def test_quota_refuses_whole_message_and_writes_nothing(store: Store) -> None:
    raw = make_message(1)
    account = await new_account(store, quota=len(raw) * 2)
    inbox = await store.mailbox(account.id, "INBOX")
    await store.append(inbox.id, raw)
    await store.append(inbox.id, make_message(2))
    with pytest.raises(QuotaExceeded, match="over its quota"):
        await store.append(inbox.id, make_message(3, size=4000))
    assert [m.uid for m in await store.list_messages(inbox.id)] == [1, 2]
    refreshed = await store.get_account("bob@example.test")
    assert refreshed is not None and refreshed.used_bytes == len(raw) + len(make_message(2))
    assert (await store.mailbox(account.id, "INBOX")).uidnext == 3
    # Copies count against the quota too.
    trash = await store.mailbox(account.id, "Trash")
    with pytest.raises(QuotaExceeded):
        await store.copy(inbox.id, trash.id, [1, 2])
    # Freeing space makes room again.
    await store.expunge(inbox.id, [1], deleted_only=False)
    await store.append(inbox.id, make_message(4))


async def test_one_failing_append_does_not_hurt_its_batch(store: Store) -> None:
    raw = make_message(1, size=3000)
    account = await new_account(store, quota=len(raw) * 5)
    inbox = await store.mailbox(account.id, "INBOX")
    outcomes = await asyncio.gather(
        *(store.append(inbox.id, make_message(i, size=3000)) for i in range(8)),
        return_exceptions=True,
    )
    stored = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert len(stored) == 5 and len(refused) == 3
    assert sorted(o.uid for o in stored) == [1, 2, 3, 4, 5]


async def test_delivery_to_several_mailboxes_stores_content_once(store: Store) -> None:
    bob = await new_account(store)
    carol = await new_account(store, "carol@example.test", quota=100)
    dave = await new_account(store, "dave@example.test")
    raw = make_message(7)
    boxes = [(await store.mailbox(a.id, "INBOX")).id for a in (bob, carol, dave)]
    results = await store.deliver(
        raw,
        [
            Target(boxes[0], b"X-To: bob\r\n"),
            Target(boxes[1]),
            Target(boxes[2], b"X-To: d\r\n", Flag.SEEN),
        ],
    )
    one, refused, two = results
    assert isinstance(refused, QuotaExceeded)  # carol is over quota; the others get it
    assert not isinstance(one, BaseException) and not isinstance(two, BaseException)
    assert await sql(store, "SELECT refs FROM blobs") == [(2,)]
    assert await store.read_message(one.message_id) == b"X-To: bob\r\n" + raw
    assert await store.read_message(two.message_id) == b"X-To: d\r\n" + raw
    flags = {m.id: m.flags for b in (boxes[0], boxes[2]) for m in await store.list_messages(b)}
    assert flags == {one.message_id: 0, two.message_id: Flag.SEEN}
    assert (await store.mailbox(carol.id, "INBOX", counts=True)).messages == 0


async def test_big_content_is_shared_across_deliveries(store: Store) -> None:
    bob = await new_account(store)
    carol = await new_account(store, "carol@example.test")
    raw = make_message(8, size=300_000)  # above DEDUPE_MIN and the inline maximum
    first = await store.append((await store.mailbox(bob.id, "INBOX")).id, raw)
    second = await store.append((await store.mailbox(carol.id, "INBOX")).id, raw)
    assert await sql(store, "SELECT refs FROM blobs") == [(2,)]
    if store.blobs is not None:
        assert len(store.blobs.files()) == 1  # the second writer's spare file is gone
    await store.expunge((await store.mailbox(bob.id, "INBOX")).id, [first.uid], deleted_only=False)
    assert await store.read_message(second.message_id) == raw
    assert await sql(store, "SELECT refs FROM blobs") == [(1,)]


async def test_large_message_lives_in_a_file(
    store_opener: Callable[..., Any], backend: str
) -> None:
    store: Store = (
        await store_opener(inline_blob_max=10_000) if backend == "sqlite" else await store_opener()
    )
    async with store:
        account = await new_account(store)
        inbox = await store.mailbox(account.id, "INBOX")
        raw = make_message(1, size=200_000)
        appended = await store.append(inbox.id, raw)
        assert await store.read_message(appended.message_id) == raw
        if store.blobs is not None:
            assert len(store.blobs.files()) == 1
            (path,) = await sql(store, "SELECT path FROM blobs")
            assert path[0] in store.blobs.files()
        await store.expunge(inbox.id, [appended.uid], deleted_only=False)
        if store.blobs is not None:
            assert store.blobs.files() == set()
        assert await sql(store, "SELECT id FROM blobs") == []


async def test_flags_modes_and_unchanged_since(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    for i in range(3):
        await store.append(inbox.id, make_message(i))
    changed, failed = await store.store_flags(
        inbox.id, [1, 2], "add", Flag.SEEN | Flag.FLAGGED, ["work"]
    )
    assert failed == [] and [c[0] for c in changed] == [1, 2]
    modseq = changed[0][3]
    assert all(
        c[1] == Flag.SEEN | Flag.FLAGGED and c[2] == ("work",) and c[3] == modseq for c in changed
    )
    changed, _ = await store.store_flags(inbox.id, [1, 2, 3], "remove", Flag.FLAGGED, [])
    assert [c[0] for c in changed] == [1, 2]  # 3 had nothing to remove: unchanged
    changed, _ = await store.store_flags(inbox.id, [3], "replace", Flag.DRAFT, ["a", "b"])
    assert changed[0][1:3] == (Flag.DRAFT, ("a", "b"))
    # RFC 7162 §3.1.3: UNCHANGEDSINCE older than a message's MODSEQ fails for that message.
    msgs = {m.uid: m for m in await store.list_messages(inbox.id)}
    changed, failed = await store.store_flags(
        inbox.id, [1, 3], "add", Flag.ANSWERED, unchanged_since=msgs[1].modseq
    )
    assert [c[0] for c in changed] == [1] and failed == [3]
    msgs = {m.uid: m for m in await store.list_messages(inbox.id)}
    assert msgs[1].flags == Flag.SEEN | Flag.ANSWERED and msgs[1].keywords == ("work",)
    assert msgs[3].flags == Flag.DRAFT
    box = await store.mailbox(account.id, "INBOX", counts=True)
    assert box.highestmodseq == max(m.modseq for m in msgs.values())
    assert box.unseen == 1


async def test_expunge_and_change_log(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    start = (await store.get_account("bob@example.test")).highestmodseq  # type: ignore[union-attr]
    for i in range(4):
        await store.append(inbox.id, make_message(i))
    await store.store_flags(inbox.id, [2, 4], "add", Flag.DELETED)
    assert await store.expunge(inbox.id) == [2, 4]
    assert [m.uid for m in await store.list_messages(inbox.id)] == [1, 3]
    changes = await store.changes_since(account.id, start)
    kinds = [(c.kind, c.uid) for c in changes]
    assert kinds == [
        (ChangeKind.APPEND, 1),
        (ChangeKind.APPEND, 2),
        (ChangeKind.APPEND, 3),
        (ChangeKind.APPEND, 4),
        (ChangeKind.FLAGS, 2),
        (ChangeKind.FLAGS, 4),
        (ChangeKind.EXPUNGE, 2),
        (ChangeKind.EXPUNGE, 4),
    ]
    assert [c.modseq for c in changes] == sorted(c.modseq for c in changes)
    latest = changes[-1].modseq
    assert await store.changes_since(account.id, latest) == []
    # UIDs are never reused after an expunge.
    assert (await store.append(inbox.id, make_message(9))).uid == 5
    refreshed = await store.get_account("bob@example.test")
    kept = await store.list_messages(inbox.id)
    assert refreshed is not None and refreshed.used_bytes == sum(m.size for m in kept)


async def test_copy_and_move(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    archive = await store.mailbox(account.id, "Archive")
    for i in range(3):
        await store.append(inbox.id, make_message(i), flags=Flag.SEEN)
    assert await store.copy(inbox.id, archive.id, [1, 3]) == [(1, 1), (3, 2)]
    assert await store.move(inbox.id, archive.id, [2]) == [(2, 3)]
    assert [m.uid for m in await store.list_messages(inbox.id)] == [1, 3]
    copies = await store.list_messages(archive.id)
    assert [m.uid for m in copies] == [1, 2, 3]
    assert all(m.flags == Flag.SEEN for m in copies)
    assert await store.read_message(copies[2].id) == make_message(1)
    assert sorted(r[0] for r in await sql(store, "SELECT refs FROM blobs")) == [1, 2, 2]
    account_now = await store.get_account("bob@example.test")
    all_sizes = sum(m.size for m in copies) + sum(
        m.size for m in await store.list_messages(inbox.id)
    )
    assert account_now is not None and account_now.used_bytes == all_sizes


async def test_mailbox_lifecycle(store: Store) -> None:
    account = await new_account(store)
    created = await store.create_mailbox(account.id, "Projects/2026/Q4")
    names = [m.name for m in await store.list_mailboxes(account.id)]
    assert {"Projects", "Projects/2026", "Projects/2026/Q4"} <= set(names)
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(account.id, "Projects")
    with pytest.raises(InvalidName):
        await store.create_mailbox(account.id, "bad//name")
    await store.append(created.id, make_message(1))
    await store.rename_mailbox(account.id, "Projects", "Work/Old")
    names = [m.name for m in await store.list_mailboxes(account.id)]
    assert {"Work", "Work/Old", "Work/Old/2026", "Work/Old/2026/Q4"} <= set(names)
    assert not any(n.startswith("Projects") for n in names)
    moved = await store.mailbox(account.id, "Work/Old/2026/Q4", counts=True)
    assert moved.id == created.id and moved.messages == 1
    await store.delete_mailbox(account.id, "Work/Old/2026/Q4")
    with pytest.raises(NotFound):
        await store.mailbox(account.id, "Work/Old/2026/Q4")
    again = await store.create_mailbox(account.id, "Work/Old/2026/Q4")
    assert again.uidvalidity != created.uidvalidity
    with pytest.raises(InvalidName):
        await store.delete_mailbox(account.id, "INBOX")
    await store.set_subscribed(account.id, "Work", True)
    assert (await store.mailbox(account.id, "Work")).subscribed


async def test_rename_inbox_moves_its_messages(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    await store.append(inbox.id, make_message(1))
    await store.rename_mailbox(account.id, "INBOX", "Old mail")
    assert (await store.mailbox(account.id, "INBOX", counts=True)).messages == 0
    assert (await store.mailbox(account.id, "Old mail", counts=True)).messages == 1


async def test_rows_by_uid_and_column_search(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    trash = await store.mailbox(account.id, "Trash")
    subjects = ["Quarterly report", "Lunch?", "QUARTERLY numbers", "100% sure_thing", "Café"]
    for n, subject in enumerate(subjects, 1):
        await store.append(inbox.id, make_message(n, subject=subject))
    await store.append(trash.id, make_message(9, subject="quarterly, in the trash"))

    found = await store.messages_with_uids(inbox.id, [5, 1, 3, 42], columns=("subject",))
    assert [(m.uid, m.subject) for m in found] == [
        (1, "Quarterly report"),
        (3, "QUARTERLY numbers"),
        (5, "Café"),
    ]  # in UID order; 42 is not there
    assert found[0].envelope == b""  # only the columns asked for
    listed = await store.list_messages(inbox.id, columns=("subject",))
    assert listed[0].subject == "Quarterly report" and listed[0].bodystructure == b""
    assert await store.messages_with_uids(inbox.id, []) == []

    assert await store.search_columns(inbox.id, "subject", ["quarterl"]) == [1, 3]
    assert await store.search_columns(inbox.id, "subject", ["quarterl", "num"]) == [3]
    assert await store.search_columns(inbox.id, "subject", ["caf"]) == [5]
    # LIKE's wildcards are not pieces: "_" and "%" in a subject match only themselves.
    assert await store.search_columns(inbox.id, "subject", ["100"]) == [4]
    with pytest.raises(ValueError):
        await store.search_columns(inbox.id, "subject", ["100%"])
    with pytest.raises(ValueError):
        await store.search_columns(inbox.id, "envelope", ["x"])


async def test_full_text_search(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    trash = await store.mailbox(account.id, "Trash")
    await store.append(
        inbox.id, make_message(1, subject="Quarterly report", body="Numbers look good.\r\n")
    )
    await store.append(
        inbox.id, make_message(2, subject="Lunch", body="The quarterly report is late.\r\n")
    )
    await store.append(trash.id, make_message(3, subject="quarterly report"))
    await store.append(
        inbox.id, make_message(4, subject="Café crème", body="Rendez-vous à Genève.\r\n")
    )
    both = ["quarterly", "report"]
    assert await store.search_text(inbox.id, both, both) == [1, 2]
    assert await store.search_text(inbox.id, ["gen"], ["gen"]) == [3]
    assert await store.search_text(inbox.id, ["nothing", "like"], ["nothing", "like"]) == []
    assert await store.search_text(inbox.id, [], []) == [1, 2, 3]  # nothing to use: all
    embedded = store.blobs is not None
    # Headers or body only: PostgreSQL's index tells them apart; SQLite's gives a superset.
    assert await store.search_text(inbox.id, both, both, body=False) == (
        [1, 2] if embedded else [1]
    )
    assert (
        await store.search_text(inbox.id, both, both, headers=False) == [1, 2] if embedded else [2]
    )
    # Inside a word: the trigram index finds substrings; the word index cannot narrow.
    assert await store.search_text(inbox.id, [], ["uarterl"]) == ([1, 2] if embedded else [1, 2, 3])
    assert await store.search_text(inbox.id, ["quarter"], []) == ([1, 2, 3] if embedded else [1, 2])
    await store.expunge(inbox.id, [1], deleted_only=False)
    assert await store.search_text(inbox.id, both, both) == [2]


async def test_change_feed_wakes_subscribers(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    with store.subscribe(account.id, account.highestmodseq) as sub:
        waiter = asyncio.create_task(asyncio.wait_for(sub.wait(account.highestmodseq), 10))
        await asyncio.sleep(0)
        appended = await store.append(inbox.id, make_message(1))
        assert await waiter == appended.modseq
        assert await sub.wait(appended.modseq - 1) == appended.modseq  # already seen: no wait
    assert store.feed.subscribers(account.id) == 0


async def test_a_subscription_to_one_mailbox_sleeps_through_the_others(store: Store) -> None:
    """An IMAP session idling on one mailbox is not woken by deliveries, flag changes,
    expunges or copies elsewhere in the account; it is by each of them in its own."""
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    other = await store.mailbox(account.id, "Archive")
    start = account.highestmodseq
    with (
        store.subscribe(account.id, start, mailbox_id=inbox.id) as watching_inbox,
        store.subscribe(account.id, start) as watching_all,
    ):
        elsewhere = await store.append(other.id, make_message(1))
        await store.store_flags(other.id, [elsewhere.uid], "add", Flag.SEEN)
        await store.copy(other.id, other.id, [elsewhere.uid])
        await store.expunge(other.id, [elsewhere.uid], deleted_only=False)
        await asyncio.sleep(0.01)
        assert watching_inbox.modseq == start
        assert watching_all.modseq > start
        waiter = asyncio.create_task(asyncio.wait_for(watching_inbox.wait(start), 10))
        await asyncio.sleep(0)
        here = await store.append(inbox.id, make_message(2))
        assert await waiter == here.modseq
        for change in (
            store.store_flags(inbox.id, [here.uid], "add", Flag.FLAGGED),
            store.copy(other.id, inbox.id, [elsewhere.uid + 1]),
            store.expunge(inbox.id, [here.uid], deleted_only=False),
        ):
            seen = watching_inbox.modseq
            waiter = asyncio.create_task(asyncio.wait_for(watching_inbox.wait(seen), 10))
            await asyncio.sleep(0)
            await change
            assert await waiter > seen


async def test_mailbox_view_for_select(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    empty = await store.mailbox_view(inbox.id)
    assert (list(empty.uids), empty.keywords, empty.first_unseen, empty.highest_modseq) == (
        [],
        frozenset(),
        None,
        0,
    )
    for n in range(1, 6):
        await store.append(inbox.id, make_message(n))
    await store.store_flags(inbox.id, [1, 2, 4], "add", Flag.SEEN)
    await store.store_flags(inbox.id, [2], "add", 0, ["$Work", "$Later"])
    changed, _ = await store.store_flags(inbox.id, [5], "add", 0, ["$Work"])
    await store.expunge(inbox.id, [3], deleted_only=False)
    view = await store.mailbox_view(inbox.id)
    assert list(view.uids) == [1, 2, 4, 5]
    assert view.keywords == {"$Work", "$Later"}
    assert view.first_unseen == 5  # 3, the first unseen, is gone
    assert view.highest_modseq == changed[0][3]  # the expunge moved no message's MODSEQ


async def test_headers_are_read_without_the_body(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    first = await store.append(inbox.id, make_message(1), prefix=b"X-Hop: 1\r\n")
    big = make_message(2, size=300_000)  # a blob file
    second = await store.append(inbox.id, big)
    headless = b"No header here.\r\nSubject: not one\r\n\r\nbody\r\n"
    third = await store.append(inbox.id, headless, prefix=b"X-Hop: 3\r\n")
    raw1 = b"X-Hop: 1\r\n" + make_message(1)
    found = await store.read_headers([first.message_id, second.message_id, third.message_id, 999])
    assert found[first.message_id] == raw1[: raw1.index(b"\r\n\r\n") + 4]
    assert found[second.message_id] == big[: big.index(b"\r\n\r\n") + 4]
    # After a prefix, the first line that is no field does not end the header: the header
    # kept runs to the empty line, as FETCH of the whole message would split it.
    assert found[third.message_id] == b"X-Hop: 3\r\n" + headless[: headless.index(b"body")]
    assert set(found) == {first.message_id, second.message_id, third.message_id}
    # Blobs stored before headers were kept apart: read whole, cut here.
    await store.backend.write(lambda: _forget_headers())
    assert await store.read_headers([first.message_id, third.message_id]) == {
        first.message_id: found[first.message_id],
        third.message_id: found[third.message_id],
    }


def _forget_headers() -> Tx[None]:
    yield run("UPDATE contents SET header = NULL")


async def test_read_messages_in_one_go(store: Store) -> None:
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    big = make_message(2, size=300_000)  # a blob file, not inline
    first = await store.append(inbox.id, make_message(1), prefix=b"X-Hop: 1\r\n")
    second = await store.append(inbox.id, big)
    found = await store.read_messages([first.message_id, second.message_id, 999_999])
    assert found == {first.message_id: b"X-Hop: 1\r\n" + make_message(1), second.message_id: big}
    assert await store.read_messages([]) == {}


async def test_change_reads_are_shared_but_never_miss_a_later_commit(store: Store) -> None:
    """Thousands of IDLE sessions woken by one delivery share one change-log read; a caller
    asking after a newer commit still sees it."""
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    await store.append(inbox.id, make_message(1))
    answers = await asyncio.gather(*(store.changes_since(account.id, 0) for _ in range(50)))
    assert all(a == answers[0] for a in answers)
    assert [c.uid for c in answers[0] if c.kind == ChangeKind.APPEND] == [1]
    before = asyncio.ensure_future(store.changes_since(account.id, 0))
    await store.append(inbox.id, make_message(2))
    after = await store.changes_since(account.id, 0)
    assert [c.uid for c in after if c.kind == ChangeKind.APPEND] == [1, 2]
    assert [c.uid for c in await before if c.kind == ChangeKind.APPEND][:1] == [1]


async def test_recent_is_claimed_once(store: Store) -> None:
    """IMAP4rev1 \\Recent: the first session takes the new messages; a second one, told what
    it cares about, gets none (and needs no write when this node made the claim)."""
    account = await new_account(store)
    inbox = await store.mailbox(account.id, "INBOX")
    await store.append(inbox.id, make_message(1))
    await store.append(inbox.id, make_message(2))
    assert await store.claim_recent(inbox.id, below=3) == (1, 3)
    first, uidnext = await store.claim_recent(inbox.id, below=3)
    assert first >= 3 and uidnext >= first
    await store.append(inbox.id, make_message(3))
    assert await store.claim_recent(inbox.id, below=4) == (3, 4)
