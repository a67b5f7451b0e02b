"""`courrier serve`: open the store, prepare TLS, bind every listener, run until told to stop.

Protocol packages contribute listeners through :func:`listeners`, each a connection handler for a
named port of the operator contract (DESIGN.md §6). On SIGTERM or SIGINT the listeners close, the
running sessions get ``shutdown_grace`` seconds to finish, and the store closes last, so that
every acknowledged write is already on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from courrier import provisioning
from courrier.config import Settings, parse_secondary, parse_tsig_key
from courrier.dns.records import Record
from courrier.dns.server import DNSServer
from courrier.dns.signing import ALGORITHMS
from courrier.dns.zonedata import ZoneBuilder
from courrier.imap.server import IMAPServer
from courrier.mailauth.inbound import InboundAuth
from courrier.mailauth.reportin import ReportInbox
from courrier.mailauth.reporting import ReportScheduler
from courrier.mailauth.signing import Sealer, Signer
from courrier.pop3.server import MaildropLocks, POP3Server
from courrier.queue.runner import QueueRunner
from courrier.security.certificates import (
    describe,
    ensure_certificate,
    server_context,
)
from courrier.smtp.server import SMTPServer
from courrier.store import Store, open_store

log = logging.getLogger("courrier")

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True)
class Services:
    """What listeners are built from."""

    settings: Settings
    store: Store
    tls: ssl.SSLContext
    queue: QueueRunner
    #: Where DMARC and TLS reports arriving for our domains are read.
    reports: ReportInbox


@dataclass(frozen=True)
class Listener:
    #: A key of ``settings.listeners`` (smtp, submission, imaps, …).
    name: str
    handler: ConnectionHandler
    #: Implicit TLS from the first byte (RFC 8314), as on 465, 993 and 995.
    implicit_tls: bool = False


def listeners(services: Services) -> list[Listener]:
    """The listeners the protocol packages provide."""
    settings, store, tls = services.settings, services.store, services.tls
    queued = services.queue.wake
    auth = InboundAuth(settings) if settings.mailauth.enabled else None
    sealer = Sealer(store, auth.authserv_id) if auth is not None else None
    mx = SMTPServer(
        settings,
        store,
        tls,
        submission=False,
        queued=queued,
        auth=auth,
        reports=services.reports,
        sealer=sealer,
    )
    signer = Signer(store)
    submission = SMTPServer(settings, store, tls, submission=True, queued=queued, signer=signer)
    submissions = SMTPServer(
        settings, store, tls, submission=True, implicit_tls=True, queued=queued, signer=signer
    )
    imap = IMAPServer(settings, store, tls)
    imaps = IMAPServer(settings, store, tls)
    locks = MaildropLocks()  # one POP3 session per maildrop, whichever port it came in on
    pop3 = POP3Server(settings, store, tls, locks=locks)
    pop3s = POP3Server(settings, store, tls, implicit_tls=True, locks=locks)
    return [
        Listener("smtp", mx.handle),
        Listener("submission", submission.handle),
        Listener("submissions", submissions.handle, implicit_tls=True),
        Listener("imap", imap.handle),
        Listener("imaps", imaps.handle, implicit_tls=True),
        Listener("pop3", pop3.handle),
        Listener("pop3s", pop3s.handle, implicit_tls=True),
    ]


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self._servers: list[asyncio.Server] = []
        #: The queue runner and the report scheduler, cancelled at close.
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.bound: list[tuple[str, str, int]] = []
        self.reports: ReportInbox | None = None
        self.dns: DNSServer | None = None
        self._transports: list[asyncio.BaseTransport] = []

    async def start(self) -> None:
        settings = self.settings
        cert, key, generated = ensure_certificate(settings)
        if generated:
            log.info("generated a self-signed certificate: %s", describe(cert))
        tls = server_context(cert, key)
        self.store = await open_store(settings)
        log.info(
            "store: %s (%s)",
            settings.store.backend,
            settings.data_path if settings.store.backend == "sqlite" else "PostgreSQL",
        )
        for domain in await provisioning.ensure_dkim_keys(self.store):
            log.info("generated DKIM keys for %s: publish them (courrier domain dns)", domain)
        runner = QueueRunner(settings, self.store)
        self.reports = ReportInbox(self.store)
        services = Services(settings, self.store, tls, runner, self.reports)
        for listener in listeners(services):
            spec = getattr(settings.listeners, listener.name)
            if not spec.enabled:
                continue
            port = settings.port(listener.name)
            for address in settings.addresses(listener.name):
                server = await asyncio.start_server(
                    listener.handler,
                    address,
                    port,
                    ssl=tls if listener.implicit_tls else None,
                    reuse_address=True,
                    limit=1 << 16,
                )
                self._servers.append(server)
                self.bound.append((listener.name, address, port))
                log.info("listening: %s on %s port %d", listener.name, address, port)

        if settings.listeners.dns.enabled:
            await self._serve_dns()
        if settings.queue.deliver:
            self._tasks.append(asyncio.create_task(runner.run(), name="courrier-queue"))
        if settings.mailauth.reports:
            reports = ReportScheduler(settings, self.store, runner.wake)
            self._tasks.append(asyncio.create_task(reports.run(), name="courrier-reports"))

    async def _serve_dns(self) -> None:
        """The authoritative DNS server: UDP and TCP on each address (RFC 7766)."""
        settings, store = self.settings, self.store
        assert store is not None
        hostname = settings.server.hostname

        async def records_of(domain: str) -> list[Record]:
            return await provisioning.domain_records(store, settings, domain)

        builder = ZoneBuilder(
            hostname,
            records_of,
            dnssec_algorithm=ALGORITHMS[settings.dns.dnssec_algorithm]
            if settings.dns.dnssec
            else None,
        )
        dns_server = self.dns = DNSServer(
            store,
            builder,
            rate_limit=settings.dns.rate_limit,
            secondaries=[parse_secondary(s) for s in settings.dns.secondaries],
            tsig_keys=[parse_tsig_key(k) for k in settings.dns.tsig_keys],
        )
        await dns_server.refresh()
        port = settings.port("dns")
        loop = asyncio.get_running_loop()
        for address in settings.addresses("dns"):
            transport, _ = await loop.create_datagram_endpoint(
                dns_server.udp, local_addr=(address, port), reuse_port=False
            )
            self._transports.append(transport)
            server = await asyncio.start_server(dns_server.handle_tcp, address, port)
            self._servers.append(server)
            self.bound.append(("dns", address, port))
            log.info("listening: dns on %s port %d (UDP and TCP)", address, port)
        self._tasks.append(asyncio.create_task(dns_server.keep_fresh(), name="courrier-dns"))

    def stop(self) -> None:
        self._stopping.set()

    async def wait(self) -> None:
        await self._stopping.wait()

    async def close(self) -> None:
        for transport in self._transports:
            transport.close()
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=10)
        for task in self._tasks:
            # Deliveries in flight are dropped: their leases end and they are tried again; a
            # report being sent is sent by the next run (it is claimed only once queued).
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.dns is not None:
            await self.dns.close()  # NOTIFYs still waiting for an answer
        if self.store is not None:
            await self.store.close()
        log.info("stopped")


async def serve(settings: Settings) -> None:
    server = Server(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    try:
        await server.start()
        log.info("courrier is running as %s; stop with SIGTERM or Ctrl-C", settings.server.hostname)
        await server.wait()
        log.info("stopping")
    finally:
        await server.close()
