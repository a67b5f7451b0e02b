"""The POP3 listeners: 110 with STLS (RFC 2595) and 995 over TLS (RFC 8314).

A thin asyncio shell around the sans-IO core (:mod:`courrier.pop3.proto`): it reads when the
core needs bytes, writes what the core queued, and answers the core's questions with the store
and :mod:`courrier.provisioning` (passwords, SASL). It owns what the core leaves out: the
maildrop lock, timeouts (RFC 1939 §3 autologout), the delay after a failed login, and the
connection limits. The maildrop is the INBOX as it was at login; the messages marked with DELE
are removed in one store transaction at QUIT, and ``+OK`` is sent only once that committed
(RFC 1939 §6). A connection that ends any other way removes nothing.

Clients mostly download the maildrop in order (RETR 1, RETR 2, …), so a RETR or TOP of the
message after the previous one also reads the next few messages in the same store statement
(:data:`_AHEAD_MESSAGES`, :data:`_AHEAD_OCTETS`) and the following commands are answered from
them; any other order reads just the message asked for. A message read ahead is still served if
an IMAP session expunges it before the client gets to it: it was in the maildrop at login and
its content never changes (a message already gone when read is answered as gone, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field

from courrier import provisioning
from courrier.config import Settings
from courrier.pop3 import proto
from courrier.security import sasl
from courrier.security.limits import ConnectionLimits, ReadTimeout, is_loopback
from courrier.store import Account, Mailbox, NotFound, Store, StoreError

log = logging.getLogger("courrier.pop3")

_READ = 65536
#: Read-ahead of a session that retrieves messages in order: at most this many messages, and
#: this many octets beyond the one asked for, per store read.
_AHEAD_MESSAGES = 64
_AHEAD_OCTETS = 256 * 1024


class MaildropLocks:
    """The accounts whose maildrop a POP3 session holds (RFC 1939 §8: one session at a time;
    the next gets ``-ERR [IN-USE]``, RFC 2449 §8.1.1). IMAP access is not affected.

    The lock lives in this process: on PostgreSQL with several nodes, a second POP3 session on
    another node is not refused. Each session still sees only its own snapshot and removes only
    what it marked, so the worst case is one message downloaded by both."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    def acquire(self, account_id: int) -> bool:
        if account_id in self._held:
            return False
        self._held.add(account_id)
        return True

    def release(self, account_id: int) -> None:
        self._held.discard(account_id)


@dataclass
class _Session:
    peer: str
    account: Account | None = None
    exchange: sasl.Exchange | None = None
    inbox: Mailbox | None = None
    #: The maildrop's IMAP UIDs by store message id (the core's Entry.key).
    uids: dict[int, int] = field(default_factory=dict)
    #: The message number that would continue the client's RETR/TOP sequence.
    next_number: int = 1
    #: Contents read ahead and not yet sent, by store message id.
    ahead: dict[int, bytes] = field(default_factory=dict)
    retrieved: int = 0
    retrieved_octets: int = 0
    tops: int = 0
    deleted: int | None = None


class POP3Server:
    """Connection handler for one POP3 listener."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        tls: ssl.SSLContext,
        *,
        implicit_tls: bool = False,
        locks: MaildropLocks | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.tls = tls
        #: Shared by the 110 and 995 listeners (listeners() passes the same one to both).
        self.locks = locks if locks is not None else MaildropLocks()
        self.limits = ConnectionLimits(
            settings.pop3.max_connections_per_ip, settings.pop3.max_connections
        )
        self.config = proto.ServerConfig(tls_available=True, implicit_tls=implicit_tls)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = str(peer_info[0]) if peer_info else "unknown"
        if not self.limits.admit(peer):
            log.warning("[%s]: too many connections, refused", peer)
            # RFC 3206 §4: SYS/TEMP, a temporary condition; said instead of the greeting.
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                writer.write(b"-ERR [SYS/TEMP] Too many connections, try again later\r\n")
                await writer.drain()
            writer.close()
            return
        session = _Session(peer)
        try:
            await self._session(session, reader, writer)
        finally:
            if session.account is not None:
                self.locks.release(session.account.id)
            self.limits.release(peer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)
            log.info("[%s]: disconnect%s", peer, _summary(session))

    async def _session(
        self, session: _Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = proto.ServerConnection(self.config, plaintext_allowed=self._plaintext_ok(session))
        log.info("[%s]: connect", session.peer)
        timer = ReadTimeout()
        try:
            await self._converse(conn, session, reader, writer, timer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.info("[%s]: connection lost: %s", session.peer, exc)
        except TimeoutError:
            # RFC 1939 §3: the autologout timer closes the connection without a response and
            # without entering the UPDATE state.
            log.info("[%s]: timeout", session.peer)
        finally:
            timer.close()
            if conn.deleted and session.deleted is None:
                # RFC 1939 §6: no QUIT, no UPDATE state; the marks are forgotten.
                log.info(
                    "[%s]: %d messages marked for deletion kept (no QUIT)",
                    session.peer,
                    len(conn.deleted),
                )

    def _plaintext_ok(self, session: _Session) -> bool:
        return self.settings.pop3.plaintext_on_loopback and is_loopback(session.peer)

    async def _converse(
        self,
        conn: proto.ServerConnection,
        session: _Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timer: ReadTimeout,
    ) -> None:
        pop3 = self.settings.pop3
        loop = asyncio.get_running_loop()
        # The time to log in counts from the connection, not from each command.
        login_deadline = loop.time() + pop3.login_timeout
        while True:
            event = conn.next_event()
            if event is proto.NEED_DATA:
                await _write(conn, writer)
                if session.account is None:
                    timeout = max(0.0, login_deadline - loop.time())
                else:
                    timeout = pop3.idle_timeout
                data = await timer.read(reader, _READ, timeout)
                if data:
                    conn.receive_data(data)
                else:
                    conn.receive_eof()
            elif isinstance(event, proto.Flush):
                await _write(conn, writer)
            elif isinstance(event, proto.Login | proto.AuthStart | proto.AuthResponse):
                try:
                    await self._authenticate(conn, session, event)
                except StoreError as exc:
                    log.warning("[%s]: login: %s", session.peer, exc)
                    session.exchange = None
                    conn.refuse_login("SYS/TEMP")
            elif isinstance(event, proto.AuthAborted):
                session.exchange = None
            elif isinstance(event, proto.StartTLS):
                await _write(conn, writer)
                await writer.start_tls(self.tls)
                conn.tls_started()
            elif isinstance(event, proto.Retrieve):
                await self._retrieve(conn, session, event)
            elif isinstance(event, proto.Update):
                await self._update(conn, session, event)
            elif isinstance(event, proto.Closed):
                await _write(conn, writer)
                return

    async def _authenticate(
        self,
        conn: proto.ServerConnection,
        session: _Session,
        event: proto.Login | proto.AuthStart | proto.AuthResponse,
    ) -> None:
        if isinstance(event, proto.Login):
            account = await provisioning.authenticate(self.store, event.username, event.password)
            await self._login(conn, session, account, event.username)
            return
        if isinstance(event, proto.AuthStart):
            exchange = session.exchange = sasl.Exchange(event.mechanism)
            step = exchange.start(event.initial)
        else:
            assert session.exchange is not None
            exchange = session.exchange
            step = exchange.step(event.data)
        result, account = await provisioning.sasl_advance(self.store, exchange, step)
        if isinstance(result, sasl.Challenge):
            conn.auth_challenge(result.data)
            return
        session.exchange = None
        ok = isinstance(result, sasl.Success)
        await self._login(conn, session, account if ok else None, "(sasl)")

    async def _login(
        self,
        conn: proto.ServerConnection,
        session: _Session,
        account: Account | None,
        username: str,
    ) -> None:
        if account is None:
            log.info("[%s]: login failed for %s", session.peer, username)
            # Slow down guessing, more after each failure; the core hangs up after the third.
            await asyncio.sleep(min(2.0, 0.5 * (conn.auth_failures + 1)))
            conn.refuse_login("AUTH")
            return
        if not self.locks.acquire(account.id):
            log.info("[%s]: login %s refused: maildrop in use", session.peer, account.address)
            conn.refuse_login("IN-USE")
            return
        session.account = account  # from here on, the lock goes when the connection does
        try:
            inbox = await self.store.mailbox(account.id, "INBOX")
            # Only id, UID and size: no content columns (RFC 1939 §5 needs nothing else).
            messages = await self.store.list_messages(inbox.id, columns=())
        except StoreError as exc:
            self.locks.release(account.id)
            session.account = None
            log.warning("[%s]: login %s: cannot open INBOX: %s", session.peer, account.address, exc)
            conn.refuse_login("SYS/TEMP")
            return
        session.inbox = inbox
        session.uids = {m.id: m.uid for m in messages}
        # RFC 1939 §7: UIDL's unique-id must never be reused for another message of the
        # maildrop; UIDVALIDITY.UID is that, in every session, as IMAP's own identity is.
        conn.accept_login(
            [proto.Entry(m.id, m.size, f"{inbox.uidvalidity}.{m.uid}") for m in messages]
        )
        log.info(
            "[%s]: login %s (%d messages, %d octets)",
            session.peer,
            account.address,
            len(messages),
            sum(m.size for m in messages),
        )

    async def _retrieve(
        self, conn: proto.ServerConnection, session: _Session, event: proto.Retrieve
    ) -> None:
        in_order = event.number == session.next_number
        session.next_number = event.number + 1
        data = session.ahead.pop(event.entry.key, None) if in_order else None
        try:
            if data is None:
                data = await self._read(conn, session, event, in_order)
        except NotFound:
            # Expunged by an IMAP session since login.
            conn.message_gone()
            return
        except StoreError as exc:
            log.warning("[%s]: cannot read message %d: %s", session.peer, event.number, exc)
            conn.retrieve_failed()
            return
        conn.send_message(data)
        if event.lines is None:
            session.retrieved += 1
            session.retrieved_octets += len(data)
        else:
            session.tops += 1

    async def _read(
        self,
        conn: proto.ServerConnection,
        session: _Session,
        event: proto.Retrieve,
        in_order: bool,
    ) -> bytes:
        """The message's content; in order, with the next ones read ahead into the session."""
        session.ahead = {}
        if not in_order:
            return await self.store.read_message(event.entry.key)
        deleted = conn.deleted
        keys, octets = [event.entry.key], 0
        for number in range(event.number + 1, len(conn.maildrop) + 1):
            entry = conn.maildrop[number - 1]
            if len(keys) > _AHEAD_MESSAGES or octets + entry.size > _AHEAD_OCTETS:
                break
            if number not in deleted:
                keys.append(entry.key)
                octets += entry.size
        found = await self.store.read_messages(keys)
        data = found.pop(event.entry.key, None)
        if data is None:
            raise NotFound("The message does not exist.")
        session.ahead = found
        return data

    async def _update(
        self, conn: proto.ServerConnection, session: _Session, event: proto.Update
    ) -> None:
        assert session.account is not None and session.inbox is not None
        uids = [session.uids[entry.key] for entry in event.deleted]
        try:
            # One transaction: all marked messages go, or none (RFC 1939 §6). Messages an
            # IMAP session expunged meanwhile are simply not there any more.
            removed = await self.store.expunge(session.inbox.id, uids, deleted_only=False)
        except StoreError as exc:
            log.warning("[%s]: %s: deletion failed: %s", session.peer, session.account.address, exc)
            conn.update_done(False)
            return
        session.deleted = len(removed)
        log.info(
            "[%s]: %s: deleted %d of %d messages",
            session.peer,
            session.account.address,
            len(removed),
            len(session.uids),
        )
        conn.update_done(True)


async def _write(conn: proto.ServerConnection, writer: asyncio.StreamWriter) -> None:
    chunks = conn.chunks_to_send()
    if chunks:
        writer.writelines(chunks)
        await writer.drain()


def _summary(session: _Session) -> str:
    if session.account is None:
        return ""
    return (
        f" ({session.account.address}: retr={session.retrieved}/{session.retrieved_octets}"
        f" octets, top={session.tops}, deleted={session.deleted or 0})"
    )
