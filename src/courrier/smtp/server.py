"""The SMTP listeners: MX (25), submission with STARTTLS (587) and over TLS (465, RFC 8314).

A thin asyncio shell around the sans-IO core (:mod:`courrier.smtp.proto`): it reads when the
core needs bytes, writes the replies the core batched, and answers the core's questions with
the policy (:mod:`courrier.smtp.policy`), SASL (:mod:`courrier.security.sasl`) and local
delivery (:mod:`courrier.delivery.local`). A message gets 250 only once every local copy is
durable. Each event is logged on one line with the transaction's queue id, as Postfix does, so
``grep ID`` shows a message's whole path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from courrier import provisioning
from courrier.config import Settings
from courrier.delivery.local import AuthVerdict, LocalRecipient, MailParams, Trace, deliver
from courrier.mailauth.inbound import JUNK, REJECT, InboundAuth
from courrier.mailauth.reportin import ReportInbox
from courrier.mailauth.signing import Sealer, Signer
from courrier.mailauth.spf import SPFResult
from courrier.security import sasl
from courrier.security.limits import ConnectionLimits, ReadTimeout
from courrier.smtp import proto
from courrier.smtp.policy import RcptDecision, check_recipient, check_sender
from courrier.store import Account, StorageFull, Store, StoreError
from courrier.store.queue import OutboundRecipient

log = logging.getLogger("courrier.smtp")

_READ = 65536


@dataclass
class _Session:
    peer: str
    queue_id: str = "NOQUEUE"
    account: Account | None = None
    exchange: sasl.Exchange | None = None
    #: Accepted recipients with what they resolved to.
    recipients: list[tuple[proto.RcptTo, RcptDecision]] = field(default_factory=list)
    mail_size: int | None = None
    #: "TLSv1.3 TLS_AES_256_GCM_SHA384" once encrypted, for the Received header.
    tls: str | None = None
    #: The SPF check of the transaction, running from MAIL FROM on (MX only).
    spf: asyncio.Task[SPFResult] | None = None

    def drop_spf(self) -> None:
        if self.spf is not None:
            self.spf.cancel()
            self.spf = None

    def note_tls(self, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is not None:
            cipher = ssl_object.cipher()
            self.tls = f"{ssl_object.version()} {cipher[0] if cipher else ''}".strip()


class SMTPServer:
    """Connection handler for one kind of SMTP listener."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        tls: ssl.SSLContext,
        *,
        submission: bool,
        implicit_tls: bool = False,
        queued: Callable[[], None] | None = None,
        signer: Signer | None = None,
        auth: InboundAuth | None = None,
        reports: ReportInbox | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.tls = tls
        self.submission = submission
        #: Called after mail for other servers was queued (the queue runner looks at once).
        self.queued = queued
        #: DKIM-signs what authenticated users submit (None on the MX).
        self.signer = signer
        #: Checks SPF, DKIM, DMARC and ARC of what arrives on the MX (None: not checked).
        self.auth = auth
        #: Reads the DMARC and TLS reports that arrive for our domains (None: not read).
        self.reports = reports
        #: ARC-seals what the MX forwards for our aliases (None: not sealed).
        self.sealer = sealer
        self.limits = ConnectionLimits(
            settings.smtp.max_connections_per_ip, settings.smtp.max_connections
        )
        self.config = proto.ServerConfig(
            hostname=settings.server.hostname,
            max_message_size=settings.smtp.max_message_size,
            max_recipients=settings.smtp.max_recipients,
            tls_available=True,
            auth_mechanisms=sasl.MECHANISMS if submission else (),
            require_auth_for_mail=submission,
            implicit_tls=implicit_tls,
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        session = _Session(peer=str(peer[0]) if peer else "unknown")
        if not self.limits.admit(session.peer):
            log.warning("[%s]: too many connections, refused", session.peer)
            # RFC 5321 §3.1: a server may answer 421 instead of the greeting and close.
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                writer.write(
                    b"421 4.7.0 " + self.config.hostname.encode() + b" Too many connections\r\n"
                )
                await writer.drain()
            writer.close()
            return
        try:
            await self._session(session, reader, writer)
        finally:
            # The slot is free once the conversation is over, not when the close completes:
            # a client that reconnects at once must not find its own closing connections.
            self.limits.release(session.peer)
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)
            log.info("disconnect from [%s]", session.peer)

    async def _session(
        self, session: _Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = proto.ServerConnection(self.config)
        session.note_tls(writer)
        log.info("connect from [%s]", session.peer)
        timer = ReadTimeout()
        try:
            await self._converse(conn, session, reader, writer, timer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.info("lost connection from [%s]: %s", session.peer, exc)
        except TimeoutError:
            log.info("timeout from [%s]", session.peer)
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                writer.write(b"421 4.4.2 " + self.config.hostname.encode() + b" Timeout\r\n")
                await writer.drain()
        finally:
            session.drop_spf()
            timer.close()
            writer.close()

    async def _converse(
        self,
        conn: proto.ServerConnection,
        session: _Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timer: ReadTimeout,
    ) -> None:
        timeout = self.settings.smtp.idle_timeout
        while True:
            event = conn.next_event()
            if event is proto.NEED_DATA:
                writer.write(conn.data_to_send())
                await writer.drain()
                data = await timer.read(reader, _READ, timeout)
                if data:
                    conn.receive_data(data)
                else:
                    conn.receive_eof()
            elif isinstance(event, proto.MailFrom):
                reply = await self._mail(session, event)
                conn.reply(*reply)
                if self.auth is not None and session.account is None and reply[0] < 400:
                    session.spf = self.auth.start_spf(
                        client_ip=session.peer,
                        mail_from=event.address,
                        helo=conn.helo_name or "",
                    )
            elif isinstance(event, proto.RcptTo):
                conn.reply(*await self._rcpt(session, event))
            elif isinstance(event, proto.MessageReceived):
                conn.reply(*await self._message(session, event))
            elif isinstance(event, proto.StartTLS):
                writer.write(conn.data_to_send())
                await writer.drain()
                await writer.start_tls(self.tls)
                session.note_tls(writer)
                conn.tls_started()
            elif isinstance(event, proto.AuthStart | proto.AuthResponse):
                await self._auth(conn, session, event)
            elif isinstance(event, proto.AuthAborted):
                session.exchange = None
            elif isinstance(event, proto.Closed):
                writer.write(conn.data_to_send())
                await writer.drain()
                return

    async def _mail(self, session: _Session, event: proto.MailFrom) -> tuple[int, str, str]:
        session.queue_id = secrets.token_hex(5).upper()
        session.recipients = []
        session.drop_spf()
        session.mail_size = event.size
        reply = await check_sender(self.store, event.address, authenticated=session.account)
        if reply[0] >= 400:
            log.info(
                "NOQUEUE: reject: MAIL from [%s]: %d %s %s; from=<%s>",
                session.peer,
                *reply,
                event.address,
            )
        else:
            log.info("%s: client=[%s], from=<%s>", session.queue_id, session.peer, event.address)
        return reply

    async def _rcpt(self, session: _Session, event: proto.RcptTo) -> tuple[int, str, str]:
        decision = await check_recipient(
            self.store,
            event.address,
            authenticated=session.account,
            size=session.mail_size,
            separator=self.settings.accounts.plus_separator,
        )
        if decision.reply[0] >= 400:
            log.info(
                "%s: reject: RCPT from [%s]: %d %s %s; to=<%s>",
                session.queue_id,
                session.peer,
                *decision.reply,
                event.address,
            )
        else:
            session.recipients.append((event, decision))
        return decision.reply

    async def _message(
        self, session: _Session, event: proto.MessageReceived
    ) -> tuple[int, str, str]:
        envelope = event.envelope
        recipients = [
            LocalRecipient(rcpt.address, account)
            for rcpt, decision in session.recipients
            for account in decision.accounts
        ]
        trace = Trace(
            helo=envelope.helo_name,
            client_ip=session.peer,
            client_name=None,
            by=self.config.hostname,
            protocol=_protocol(envelope),
            queue_id=session.queue_id,
            tls=session.tls,
        )
        remote = [
            # RFC 3461 NOTIFY and ORCPT go with each recipient, for the queue's reports.
            OutboundRecipient(target, ",".join(rcpt.notify) if rcpt.notify else None, rcpt.orcpt)
            for rcpt, decision in session.recipients
            for target in decision.remote
        ]
        mail = envelope.mail
        params = MailParams(mail.envid, mail.ret, mail.body, mail.smtputf8, mail.requiretls)
        submitted = self.submission and session.account is not None
        data = event.data
        verdict = None
        sealed = b""
        if session.spf is not None and self.auth is not None:
            try:
                checked = await self.auth.check(
                    data,
                    spf=session.spf,
                    client_ip=session.peer,
                    helo=envelope.helo_name,
                    mail_from=envelope.mail_from,
                    envelope_to=_domain_of(recipients),
                )
            except Exception:
                # As Postfix does when a milter fails (milter_default_action = tempfail): the
                # sender tries again; mail is neither lost nor let through unchecked.
                log.exception("%s: the authentication checks failed", session.queue_id)
                return (451, "4.7.0", "Temporary failure checking the message; try again later")
            finally:
                session.spf = None
            log.info("%s: %s", session.queue_id, checked.summary())
            if checked.action == REJECT:
                # RFC 7489 §10.3 / §6.7: refused during the session, so no bounce is made.
                return (
                    550,
                    "5.7.1",
                    f"Rejected per the DMARC policy of {checked.dmarc.from_domain}",
                )
            data = checked.message
            verdict = AuthVerdict(checked.headers, checked.action == JUNK, checked.report)
            if remote and self.sealer is not None:
                # Forwarded by an alias of ours: sealed in the alias's domain (RFC 8617 §5.1).
                forwarding = next(r for r, d in session.recipients if d.remote)
                sealed = await self.sealer.seal(
                    data,
                    domain=forwarding.address.rpartition("@")[2].lower(),
                    chain=checked.arc,
                    authentication_results=checked.payload,
                )
        try:
            if submitted and self.signer is not None:
                data = await self.signer.sign(data)
            results = await deliver(
                self.store,
                data,
                sender=envelope.mail_from,
                recipients=recipients,
                trace=trace,
                separator=self.settings.accounts.plus_separator,
                remote=remote,
                params=params,
                account_id=session.account.id if session.account else None,
                # A recipient refused here (over quota) still leaves the copy: Thunderbird
                # would file one too, and a retry is rare enough.
                sent_copy=submitted and self.settings.smtp.sent_copy,
                verdict=verdict,
                forward_headers=sealed,
            )
        except StorageFull as exc:
            log.warning("%s: status=deferred (%s)", session.queue_id, exc)
            # RFC 5321 §4.2.2 / RFC 3463 §3.4: 452 insufficient storage, 4.3.1 system full.
            return (452, "4.3.1", "Insufficient system storage; try again later")
        except StoreError as exc:
            log.warning("%s: status=deferred (%s)", session.queue_id, exc)
            return (451, "4.3.0", "Temporary failure storing the message; try again later")
        stored = len(remote)
        for queued in remote:
            log.info("%s: to=<%s>, status=queued (outbound)", session.queue_id, queued.address)
        if remote and self.queued is not None:
            self.queued()
        for recipient, result in results:
            if isinstance(result, StoreError):
                log.warning(
                    "%s: to=<%s>, status=bounced (%s)", session.queue_id, recipient.address, result
                )
            else:
                stored += 1
                log.info(
                    "%s: to=<%s>, status=sent (delivered to mailbox, uid %d)",
                    session.queue_id,
                    recipient.address,
                    result.uid,
                )
        if stored == 0:
            return (452, "4.2.2", "Mailbox full or unavailable; try again later")
        if self.reports is not None and results:
            self.reports.offer(data)
        return (250, "2.0.0", f"Ok: queued as {session.queue_id}")

    async def _auth(
        self,
        conn: proto.ServerConnection,
        session: _Session,
        event: proto.AuthStart | proto.AuthResponse,
    ) -> None:
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
        session.account = account
        if isinstance(result, sasl.Success) and account is not None:
            conn.auth_result(True, account.address)
            log.info("[%s]: sasl_username=%s", session.peer, account.address)
        else:
            conn.auth_result(False)
            log.info("[%s]: SASL authentication failed", session.peer)


def _domain_of(recipients: list[LocalRecipient]) -> str:
    """The envelope recipient domain for the DMARC report (the first one's)."""
    return recipients[0].address.rpartition("@")[2].lower() if recipients else ""


def _protocol(envelope: proto.Envelope) -> str:
    """RFC 3848 / RFC 6531 §4.3 ``with`` keyword."""
    base = "UTF8SMTP" if envelope.mail.smtputf8 else ("ESMTP" if envelope.esmtp else "SMTP")
    if base == "SMTP":
        return base
    return base + ("S" if envelope.tls else "") + ("A" if envelope.authenticated_as else "")
