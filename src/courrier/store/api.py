"""The store's one API: every read and write of accounts, mailboxes and mail goes through here.

:class:`Store` wraps a backend (embedded SQLite or PostgreSQL) and the change feed. Writes are
durable when they return; appends compute the message's IMAP data once (``courrier.message``)
before they are queued, so the writer only writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

from courrier.message import ParsedMessage, parse
from courrier.message.headers import header_span, split_header
from courrier.store import (
    directory,
    dkimkeys,
    dmarcresults,
    dnszones,
    mailboxes,
    messages,
    queue,
    reports,
    transport,
)
from courrier.store.blobs import BlobArea
from courrier.store.cache import DirectoryCache
from courrier.store.dmarcresults import DmarcCount, DmarcRow
from courrier.store.dnszones import DnsRecord, DnssecKey
from courrier.store.errors import NotFound, StoreError
from courrier.store.feed import ChangeFeed, Subscription
from courrier.store.messages import AppendItem, NewBlob
from courrier.store.models import (
    Account,
    Alias,
    Appended,
    Change,
    DkimKey,
    Domain,
    Flag,
    LeasedMessage,
    Mailbox,
    MailboxView,
    Message,
    MessageState,
    QueuedMessage,
    RecipientResult,
    Relay,
)
from courrier.store.queue import Outbound
from courrier.store.reports import Report
from courrier.store.transport import CachedPolicy, PolicyDay, TLSSession
from courrier.store.tx import Tx, TxFactory, one, run

T = TypeVar("T")


class Backend(Protocol):
    dialect: str
    batches: int
    batched_jobs: int

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def write(self, factory: TxFactory[T]) -> T: ...
    async def append(self, item: AppendItem) -> Appended: ...
    async def read(self, factory: TxFactory[T]) -> T: ...
    async def flush_index(self) -> None: ...


def _now() -> int:
    return int(time.time())


async def _parse(raw: bytes) -> ParsedMessage:
    """Parse on the event loop, or in a thread for big messages so others are not held up."""
    return await asyncio.to_thread(parse, raw) if len(raw) > 1 << 20 else parse(raw)


class Target(NamedTuple):
    """Where :meth:`Store.deliver` puts one copy: the mailbox, the header lines added in
    front for this copy (``Return-Path``, ``Received``) and the copy's flags."""

    mailbox_id: int
    prefix: bytes = b""
    flags: Flag | int = 0


class Store:
    def __init__(
        self, backend: Backend, feed: ChangeFeed, blobs: BlobArea | None, inline_blob_max: int
    ) -> None:
        self.backend = backend
        self.feed = feed
        self.blobs = blobs
        self.inline_blob_max = inline_blob_max
        #: Cached lookups for the delivery path (see :mod:`courrier.store.cache`).
        self.directory = DirectoryCache(backend.read)
        #: Change-log reads under way, shared by the sessions that ask the same question.
        self._change_reads: dict[tuple[int, int, int], asyncio.Future[list[Change]]] = {}
        #: Per mailbox: every UID below this one was claimed \\Recent through this store.
        self._claimed: dict[int, int] = {}

    @classmethod
    async def open_sqlite(
        cls,
        data_dir: Path,
        *,
        inline_blob_max: int = 256 * 1024,
        max_batch: int = 512,
        readers: int = 4,
    ) -> Store:
        from courrier.store.sqlite import SQLiteBackend

        feed, blobs = ChangeFeed(), BlobArea(data_dir / "blobs")
        backend = SQLiteBackend(
            data_dir / "courrier.db",
            max_batch=max_batch,
            readers=readers,
            notify=feed.publish,
            blobs=blobs,
        )
        await backend.open()
        return cls(backend, feed, blobs, inline_blob_max)

    @classmethod
    async def open_postgres(cls, url: str, *, max_batch: int = 512, readers: int = 4) -> Store:
        from courrier.store.postgres import PostgresBackend

        feed = ChangeFeed()
        backend = PostgresBackend(url, max_batch=max_batch, readers=readers, notify=feed.publish)
        await backend.open()
        # PostgreSQL keeps every blob in the database so that every node sees it.
        return cls(backend, feed, None, 2**62)

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _directory_write(self, factory: TxFactory[T]) -> T:
        """Run a change of domains, accounts, aliases or mailboxes: it bumps the directory
        serial so that other processes' caches see it, and clears this process's cache."""

        def tx() -> Tx[T]:
            value = yield from factory()
            yield run("UPDATE directory_serial SET value = value + 1 WHERE id = 1")
            return value

        try:
            return await self.backend.write(tx)
        finally:
            self.directory.clear()

    # -- domains ---------------------------------------------------------------------------

    async def add_domain(self, name: str) -> Domain:
        return await self._directory_write(lambda: directory.add_domain(name, _now()))

    async def get_domain(self, name: str) -> Domain | None:
        return await self.backend.read(lambda: directory.get_domain(name))

    async def list_domains(self) -> list[Domain]:
        return await self.backend.read(directory.list_domains)

    async def remove_domain(self, name: str, *, force: bool = False) -> int:
        return await self._directory_write(lambda: directory.remove_domain(name, force=force))

    async def set_domain_relay(self, name: str, relay: Relay | None) -> None:
        await self.backend.write(lambda: directory.set_relay(name, relay))

    async def list_domain_relays(self) -> dict[str, Relay]:
        return await self.backend.read(directory.list_relays)

    # -- DKIM keys -------------------------------------------------------------------------

    async def add_dkim_keys(self, domain: str, keys: Sequence[DkimKey]) -> None:
        await self.backend.write(lambda: dkimkeys.add_keys(domain, keys, _now()))

    async def list_dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        return await self.backend.read(lambda: dkimkeys.list_keys(domain))

    async def remove_dkim_key(self, domain: str, selector: str) -> None:
        await self.backend.write(lambda: dkimkeys.remove_key(domain, selector))

    # -- accounts --------------------------------------------------------------------------

    async def add_account(
        self,
        address: str,
        password_hash: str,
        scram_sha256: str = "",
        *,
        quota_bytes: int = 0,
        role: str = "user",
    ) -> Account:
        return await self._directory_write(
            lambda: directory.add_account(
                address, password_hash, scram_sha256, quota_bytes=quota_bytes, role=role, now=_now()
            )
        )

    async def get_account(self, address: str) -> Account | None:
        return await self.backend.read(lambda: directory.get_account(address))

    async def get_account_by_id(self, account_id: int) -> Account | None:
        return await self.backend.read(lambda: directory.get_account_by_id(account_id))

    async def used_bytes(self, account_id: int) -> int:
        """The account's usage now (cached :class:`Account` records may be older)."""
        return await self.backend.read(lambda: _used_bytes(account_id))

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        return await self.backend.read(lambda: directory.list_accounts(domain))

    async def set_password(self, address: str, password_hash: str, scram_sha256: str = "") -> None:
        await self._directory_write(
            lambda: directory.set_password(address, password_hash, scram_sha256)
        )

    async def set_quota(self, address: str, quota_bytes: int) -> None:
        await self._directory_write(lambda: directory.set_quota(address, quota_bytes))

    async def remove_account(self, address: str) -> None:
        await self._directory_write(lambda: directory.remove_account(address))

    # -- aliases ---------------------------------------------------------------------------

    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias:
        return await self._directory_write(lambda: directory.add_alias(address, targets, _now()))

    async def get_alias(self, address: str) -> Alias | None:
        return await self.backend.read(lambda: directory.get_alias(address))

    async def list_aliases(self, domain: str | None = None) -> list[Alias]:
        return await self.backend.read(lambda: directory.list_aliases(domain))

    async def remove_alias(self, address: str, target: str | None = None) -> int:
        return await self._directory_write(lambda: directory.remove_alias(address, target))

    # -- mailboxes -------------------------------------------------------------------------

    async def list_mailboxes(self, account_id: int, *, counts: bool = False) -> list[Mailbox]:
        return await self.backend.read(lambda: mailboxes.list_mailboxes(account_id, counts=counts))

    async def get_mailbox(
        self, account_id: int, name: str, *, counts: bool = False
    ) -> Mailbox | None:
        """A mailbox by name; ``counts`` adds messages/unseen/size (costs a scan)."""
        name = mailboxes.check_mailbox_name(name)
        return await self.backend.read(
            lambda: mailboxes.get_mailbox(account_id, name, counts=counts)
        )

    async def mailbox(self, account_id: int, name: str, *, counts: bool = False) -> Mailbox:
        """Like :meth:`get_mailbox`, but a missing mailbox is an error."""
        found = await self.get_mailbox(account_id, name, counts=counts)
        if found is None:
            raise NotFound(f"The mailbox {name} does not exist.")
        return found

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        return await self._directory_write(
            lambda: mailboxes.create_mailbox(account_id, name, special_use, _now())
        )

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        await self._directory_write(lambda: mailboxes.rename_mailbox(account_id, old, new, _now()))

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        await self._directory_write(lambda: mailboxes.delete_mailbox(account_id, name))

    async def claim_recent(self, mailbox_id: int, *, below: int = 0) -> tuple[int, int]:
        """IMAP4rev1 \\Recent: (first recent UID, UIDNEXT) before this session took them.

        ``below``: the caller only cares for UIDs under it; when a session of this node already
        took all of those, the answer needs no write (claims only ever move forward).
        """
        claimed = self._claimed.get(mailbox_id, 0)
        if below and claimed >= below:
            return claimed, claimed
        first, uidnext = await self.backend.write(lambda: mailboxes.claim_recent(mailbox_id))
        self._claimed[mailbox_id] = max(uidnext, self._claimed.get(mailbox_id, 0))
        return first, uidnext

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        await self.backend.write(lambda: mailboxes.set_subscribed(account_id, name, subscribed))

    async def list_subscriptions(self, account_id: int) -> list[str]:
        """Subscribed names, including those of mailboxes that no longer exist."""
        return await self.backend.read(lambda: mailboxes.list_subscriptions(account_id))

    # -- messages --------------------------------------------------------------------------

    async def append(
        self,
        mailbox_id: int,
        raw: bytes,
        *,
        flags: Flag | int = 0,
        keywords: Sequence[str] = (),
        internal_date: int | None = None,
        prefix: bytes = b"",
        parsed: ParsedMessage | None = None,
    ) -> Appended:
        """Store a message durably; ``prefix`` holds header lines added at delivery.

        The blob (``raw``) is shared by every message with the same content; ``prefix`` is kept
        per message, so one blob serves many recipients with different trace headers.
        """
        if parsed is None:
            # Trace headers in ``prefix`` change neither ENVELOPE nor BODYSTRUCTURE.
            parsed = await _parse(raw)
        blob = await self._prepare_blob(raw, parsed)
        date = _now() if internal_date is None else internal_date
        item = AppendItem(mailbox_id, blob, parsed, prefix, int(flags), tuple(keywords), date)
        return await self.backend.append(item)

    async def deliver(
        self,
        raw: bytes,
        targets: Sequence[Target],
        *,
        internal_date: int | None = None,
        outbound: Outbound | None = None,
        dmarc: DmarcRow | None = None,
    ) -> list[Appended | StoreError]:
        """One message to several mailboxes (a :class:`Target` each), in one transaction, and
        to the outbound queue for remote recipients (``outbound``) in the same one, with its
        DMARC result counted for the aggregate report (``dmarc``).

        The content is stored once for all of them. A mailbox whose account is over quota (or
        that is gone) gets its error in the result; the others get the message.
        """
        parsed = await _parse(raw)
        blob = await self._prepare_blob(raw, parsed)
        date = _now() if internal_date is None else internal_date
        items = [
            AppendItem(target.mailbox_id, blob, parsed, target.prefix, int(target.flags), (), date)
            for target in targets
        ]
        if outbound is None and dmarc is None:
            return await self.backend.write(lambda: messages.append_batch(items))
        now = _now()

        def accept() -> Tx[list[Appended | StoreError]]:
            if outbound is None:
                results = yield from messages.append_batch(items)
            else:
                results, blob_ids = yield from messages.append_and_reference(items, [blob])
                yield from queue.enqueue(outbound, blob_ids[blob.hash], blob.size, now)
            if dmarc is not None:
                yield from dmarcresults.record(dmarc)
            return results

        return await self.backend.write(accept)

    async def list_queue(self) -> list[QueuedMessage]:
        return await self.backend.read(queue.list_queue)

    async def lease_queue(
        self, owner: str, now: int, until: int, limit: int
    ) -> list[LeasedMessage]:
        """Take due outbound recipients until ``until`` (see :func:`queue.lease`)."""
        return await self.backend.write(lambda: queue.lease(owner, now, until, limit))

    async def record_queue(self, results: list[RecipientResult]) -> list[str]:
        """Write delivery outcomes; returns the queue ids of the messages now finished."""
        return await self.backend.write(lambda: queue.record(results))

    async def read_queued(self, message_id: int) -> bytes:
        """A queued message as it is to be sent: its trace prefix, then the blob."""
        found = await self.backend.read(lambda: queue.content_location(message_id))
        return await self._joined(found, "The queued message does not exist.")

    async def requeue(self, queue_id: str | None, states: tuple[str, ...], state: str) -> int:
        """Hold (``("queued",)`` → "hold"), release (``("hold",)`` → "queued") or flush
        (``("queued",)`` → "queued", due now) one queued message's recipients, or all."""
        now = int(time.time())
        return await self.backend.write(lambda: queue.change_state(queue_id, states, state, now))

    async def read_queued_by_id(self, queue_id: str) -> bytes | None:
        """A queued message's content by its queue id (``courrier queue show``)."""
        found = await self.backend.read(lambda: queue.queued_message(queue_id))
        return None if found is None else await self.read_queued(found)

    async def delete_queued(self, queue_id: str) -> bool:
        return await self.backend.write(lambda: queue.delete_message(queue_id))

    # -- transport security (MTA-STS cache, TLS-RPT results) -------------------------------

    async def cached_sts_policy(self, domain: str) -> CachedPolicy | None:
        """The MTA-STS policy last fetched for ``domain`` (expired or not)."""
        return await self.backend.read(lambda: transport.get_policy(domain))

    async def cache_sts_policy(self, policy: CachedPolicy) -> None:
        await self.backend.write(lambda: transport.put_policy(policy))

    async def record_tls_sessions(self, sessions: Sequence[TLSSession]) -> None:
        """Count outbound sessions' TLS outcomes for TLS-RPT (RFC 8460)."""
        if sessions:
            await self.backend.write(lambda: transport.record_sessions(sessions))

    async def tls_report(self, day: str) -> list[PolicyDay]:
        """A UTC day's (``YYYY-MM-DD``) TLS-RPT aggregates, per policy domain and policy."""
        return await self.backend.read(lambda: transport.report_day(day))

    # -- DNS zones -------------------------------------------------------------------------

    async def add_dns_record(self, domain: str, name: str, type_: str, value: str, ttl: int) -> int:
        """Add a record (already validated) to ``domain``'s zone; its id."""
        return await self.backend.write(
            lambda: dnszones.add_record(domain, name, type_, value, ttl, _now())
        )

    async def list_dns_records(self, domain: str | None = None) -> list[DnsRecord]:
        return await self.backend.read(lambda: dnszones.list_records(domain))

    async def remove_dns_record(self, domain: str, record_id: int) -> None:
        await self.backend.write(lambda: dnszones.remove_record(domain, record_id))

    async def zone_serial(self, domain: str, digest: str, now: int) -> int:
        """The serial numbering ``domain``'s zone content of ``digest`` (moved when it changed)."""
        return await self.backend.write(lambda: dnszones.zone_serial(domain, digest, now))

    async def dnssec_key(self, domain: str, algorithm: int) -> DnssecKey | None:
        return await self.backend.read(lambda: dnszones.signing_key(domain, algorithm))

    async def add_dnssec_key(self, domain: str, algorithm: int, private_key: str) -> DnssecKey:
        """Keep a zone's new signing key, or the one another node kept first."""
        return await self.backend.write(
            lambda: dnszones.add_signing_key(domain, algorithm, private_key, _now())
        )

    # -- DMARC results (aggregate reports) -------------------------------------------------

    async def dmarc_day(self, day: str) -> list[DmarcCount]:
        """A UTC day's (``YYYY-MM-DD``) counted DMARC results, by policy domain."""
        return await self.backend.read(lambda: dmarcresults.report_day(day))

    async def forget_dmarc_before(self, day: str) -> int:
        return await self.backend.write(lambda: dmarcresults.forget_before(day))

    # -- reports sent and received ---------------------------------------------------------

    async def add_report(self, report: Report) -> int | None:
        """Keep a report; its id, or None when it is already kept (by this node or another:
        the node that adds a report to be sent is the one that sends it)."""
        return await self.backend.write(lambda: reports.add(report))

    async def list_reports(
        self, kind: str | None = None, direction: str | None = None
    ) -> list[Report]:
        return await self.backend.read(lambda: reports.list_reports(kind, direction))

    async def get_report(self, report_id: int) -> Report | None:
        return await self.backend.read(lambda: reports.get(report_id))

    async def _prepare_blob(self, raw: bytes, parsed: ParsedMessage) -> NewBlob:
        digest = hashlib.sha256(raw).hexdigest()
        path = None
        data: bytes | None = raw
        if self.blobs is not None and len(raw) > self.inline_blob_max:
            path = await asyncio.to_thread(self.blobs.write, digest, raw)
            data = None
        header = raw[: header_span(raw)]
        return NewBlob(digest, len(raw), data, path, parsed.headers_text, parsed.text, header)

    async def read_message(self, message_id: int) -> bytes:
        """The message exactly as stored: delivery prefix followed by the blob."""
        found = await self.backend.read(lambda: messages.blob_location(message_id))
        return await self._joined(found, "The message does not exist.")

    async def _joined(
        self, found: tuple[bytes, bytes | None, str | None] | None, missing: str
    ) -> bytes:
        """A prefix and its blob (inline data, or read from its file) as one message."""
        if found is None:
            raise NotFound(missing)
        prefix, data, path = found
        if data is None:
            assert self.blobs is not None and path is not None
            data = await asyncio.to_thread(self.blobs.read, path)
        return prefix + data

    async def read_messages(self, message_ids: Sequence[int]) -> dict[int, bytes]:
        """Several messages as stored, in one read; ids that are gone are left out."""
        found = await self.backend.read(lambda: messages.blob_locations(message_ids))
        out: dict[int, bytes] = {}
        for message_id, (prefix, data, path) in found.items():
            if data is None:
                assert self.blobs is not None and path is not None
                data = await asyncio.to_thread(self.blobs.read, path)
            out[message_id] = prefix + data
        return out

    async def read_headers(self, message_ids: Sequence[int]) -> dict[int, bytes]:
        """The header of each message as stored (delivery prefix, then the blob's header with
        its empty line: what BODY[HEADER] returns), without reading bodies where the header
        was kept apart; ids that are gone are left out."""
        found = await self.backend.read(lambda: messages.headers_of(message_ids))
        out = {i: prefix + header for i, (prefix, header) in found.items() if header is not None}
        missing = [i for i, (_, header) in found.items() if header is None]
        if missing:
            for message_id, raw in (await self.read_messages(missing)).items():
                _, body_start = split_header(raw, 0, len(raw))
                out[message_id] = raw[:body_start]
        return out

    async def list_messages(
        self,
        mailbox_id: int,
        first_uid: int = 1,
        last_uid: int | None = None,
        *,
        columns: Collection[str] | None = None,
    ) -> list[Message]:
        """Message rows in UID order. ``columns`` names the content columns wanted (``envelope``,
        ``subject``, ``preview``…; None: all); the others come back empty."""
        return await self.backend.read(
            lambda: messages.list_messages(mailbox_id, first_uid, last_uid, columns)
        )

    async def messages_with_uids(
        self, mailbox_id: int, uids: Sequence[int], *, columns: Collection[str] | None = None
    ) -> list[Message]:
        """Rows of ``uids`` (those still there) in UID order, each looked up by UID: for a few
        UIDs spread over a large mailbox. ``columns`` as for :meth:`list_messages`."""
        if not uids:
            return []
        return await self.backend.read(
            lambda: messages.messages_with_uids(mailbox_id, uids, columns)
        )

    async def search_columns(
        self, mailbox_id: int, column: str, pieces: Sequence[str]
    ) -> list[int]:
        """UIDs (ascending) whose decoded ``column`` (``subject``, ``from_``, ``to_``, ``cc``,
        ``bcc``) holds every piece, ASCII case aside: candidates for an IMAP header search,
        to be checked. See :func:`courrier.store.messages.search_columns`."""
        return await self.backend.read(lambda: messages.search_columns(mailbox_id, column, pieces))

    async def mailbox_view(self, mailbox_id: int) -> MailboxView:
        """UIDs, keywords, first unseen UID and highest MODSEQ: what SELECT shows."""
        return await self.backend.read(lambda: messages.mailbox_view(mailbox_id))

    async def list_states(
        self, mailbox_id: int, first_uid: int = 1, last_uid: int | None = None
    ) -> list[MessageState]:
        """UID, MODSEQ and flags of the mailbox's messages (cheap: no content columns)."""
        return await self.backend.read(
            lambda: messages.list_states(mailbox_id, first_uid, last_uid)
        )

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: str,
        flags: Flag | int = 0,
        keywords: Sequence[str] = (),
        *,
        unchanged_since: int | None = None,
    ) -> tuple[list[tuple[int, int, tuple[str, ...], int]], list[int]]:
        if mode not in ("add", "remove", "replace"):
            raise ValueError(f"unknown flag mode {mode!r}")
        return await self.backend.write(
            lambda: messages.store_flags(
                mailbox_id, uids, mode, int(flags), keywords, unchanged_since
            )
        )

    async def expunge(
        self, mailbox_id: int, uids: Sequence[int] | None = None, *, deleted_only: bool = True
    ) -> list[int]:
        return await self.backend.write(
            lambda: messages.expunge(mailbox_id, uids, deleted_only=deleted_only)
        )

    async def copy(
        self, source_id: int, target_id: int, uids: Sequence[int]
    ) -> list[tuple[int, int]]:
        return await self.backend.write(lambda: messages.copy_messages(source_id, target_id, uids))

    async def move(
        self, source_id: int, target_id: int, uids: Sequence[int]
    ) -> list[tuple[int, int]]:
        return await self.backend.write(lambda: messages.move_messages(source_id, target_id, uids))

    async def changes_since(self, account_id: int, modseq: int) -> list[Change]:
        """The account's changes above ``modseq``, in MODSEQ order (shared: do not modify).

        When a delivery wakes thousands of IDLE sessions they all ask this with the same
        ``modseq``: one read answers them all. A caller joins a read under way only if it was
        started after every change the feed had announced when the caller asked, so nothing
        it could see by reading itself is missed.
        """
        key = (account_id, modseq, self.feed.latest(account_id))
        reading = self._change_reads.get(key)
        if reading is None:
            reading = asyncio.ensure_future(
                self.backend.read(lambda: messages.changes_since(account_id, modseq))
            )
            self._change_reads[key] = reading
            reading.add_done_callback(lambda _: self._change_reads.pop(key, None))
        return await asyncio.shield(reading)

    async def search_text(
        self,
        mailbox_id: int,
        words: Sequence[str],
        pieces: Sequence[str] = (),
        *,
        headers: bool = True,
        body: bool = True,
    ) -> list[int]:
        """UIDs (ascending) that the full-text index cannot rule out for a string whose index
        words (word prefixes) and pieces (substrings) are given: a superset, to be checked.
        See :func:`courrier.store.messages.search_text`."""
        await self.backend.flush_index()
        return await self.backend.read(
            lambda: messages.search_text(mailbox_id, words, pieces, headers=headers, body=body)
        )

    def subscribe(
        self, account_id: int, modseq: int = 0, *, mailbox_id: int | None = None
    ) -> Subscription:
        """Wake-ups after every committed change to the account (IDLE, POP3, webmail), or
        only to ``mailbox_id`` (and changes that name no mailbox)."""
        return self.feed.subscribe(account_id, modseq, mailbox_id)


def _used_bytes(account_id: int) -> Tx[int]:
    row = yield one("SELECT used_bytes FROM accounts WHERE id = ?", account_id)
    return int(row[0]) if row else 0
