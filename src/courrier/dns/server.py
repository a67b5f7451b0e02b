"""The authoritative DNS listeners on port 53, UDP and TCP (RFC 1035 §4.2, RFC 7766), and the
NOTIFY sent to our secondaries (RFC 1996).

A thin shell around :class:`courrier.dns.answer.Authority` and
:class:`courrier.dns.transfer.Transfers` (zone transfers and TSIG-signed queries): a datagram
in, the response out; on TCP each message is preceded by its two-octet length, a connection may
carry many queries (RFC 7766 §6.2.1) until it idles for :data:`TCP_IDLE` seconds, and a
transfer is several messages. The zones are rebuilt from the store every :data:`REFRESH`
seconds (a domain added, a DKIM key rotated), or at once when told; each zone whose serial
changed is then notified to the secondaries in the background (:class:`Notifier`). UDP answers
are rate-limited per source network (:mod:`courrier.dns.ratelimit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence

import dns.message
import dns.name
import dns.rcode
import dns.tsig

from courrier.dns import transfer, tsig
from courrier.dns.answer import Authority
from courrier.dns.ratelimit import RateLimiter
from courrier.dns.rendered import plain_end
from courrier.dns.transfer import Transfers
from courrier.dns.zone import Zone
from courrier.dns.zonedata import ZoneBuilder
from courrier.store import Store

log = logging.getLogger("courrier.dns")

TCP_IDLE = 10.0
REFRESH = 60.0
#: Seconds to wait for a secondary's answer to a NOTIFY before sending it again: RFC 1996 §3.6
#: retries a few times; the interval doubles, about a minute in all.
NOTIFY_WAITS = (2.0, 4.0, 8.0, 16.0, 32.0)

Target = tuple[str, int]


class UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's UDPTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        verdict = self.server.limiter.check(addr[0], time.monotonic())
        if verdict == RateLimiter.DROP:
            return
        responses = self.server.answer(
            data, addr[0], tcp=False, truncate=verdict == RateLimiter.SLIP
        )
        if self.transport is not None:
            for response in responses:
                self.transport.sendto(response, addr)


class DNSServer:
    def __init__(
        self,
        store: Store,
        builder: ZoneBuilder,
        *,
        rate_limit: float = 0,
        secondaries: Sequence[Target] = (),
        tsig_keys: Sequence[tuple[str, str, bytes]] = (),
    ) -> None:
        self.store = store
        self.builder = builder
        self.authority = Authority()
        self.limiter = RateLimiter(rate_limit)
        keys = tsig.keyring(tsig_keys)
        self.transfers = Transfers([host for host, _ in secondaries], keys)
        self.notifier = Notifier(secondaries, next(iter(keys.values()), None))

    async def refresh(self) -> None:
        """Rebuild the zones; NOTIFY the secondaries of those new or with a new serial."""
        before = {origin: zone.serial for origin, zone in self.authority.zones.items()}
        zones = await self.builder.build(self.store)
        self.authority.replace(zones)
        for zone in zones:
            if before.get(zone.origin) != zone.serial:
                self.notifier.notify(zone)

    async def keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH)
            try:
                await self.refresh()
            except Exception:
                log.exception("dns: rebuilding the zones failed; serving the previous ones")

    async def close(self) -> None:
        await self.notifier.close()

    def answer(self, wire: bytes, peer: str, *, tcp: bool, truncate: bool = False) -> list[bytes]:
        """The response messages to the query ``wire`` from ``peer``: a transfer's, a signed
        query's, or the Authority's one answer (``truncate``: see :meth:`Authority.respond`);
        none to a response."""
        end = plain_end(wire)  # found once, for both
        if not transfer.leaves_to_authority(wire, end):
            messages = self.transfers.respond(self.authority, wire, peer, tcp=tcp)
            if messages is not None:
                return messages
        response = self.authority.respond(wire, tcp=tcp, truncate=truncate, end=end)
        return [] if response is None else [response]

    def udp(self) -> UDPProtocol:
        return UDPProtocol(self)

    async def handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        try:
            while True:
                length = int.from_bytes(
                    await asyncio.wait_for(reader.readexactly(2), TCP_IDLE), "big"
                )
                query = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE)
                responses = self.answer(query, peer, tcp=True)
                if not responses:
                    break
                for response in responses:
                    writer.write(len(response).to_bytes(2, "big") + response)
                    await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)


class Notifier:
    """Tells each secondary of a zone's new serial (RFC 1996) in the background, one task per
    zone and secondary; a newer change replaces a NOTIFY still waiting for its answer."""

    def __init__(self, secondaries: Sequence[Target], key: dns.tsig.Key | None) -> None:
        self.secondaries = list(secondaries)
        #: Signs the NOTIFY (the first of ``dns.tsig_keys``), if any.
        self.key = key
        self._tasks: dict[tuple[dns.name.Name, Target], asyncio.Task[None]] = {}

    def notify(self, zone: Zone) -> None:
        for target in self.secondaries:
            pending = (zone.origin, target)
            previous = self._tasks.get(pending)
            if previous is not None:
                previous.cancel()
            task = asyncio.create_task(self._send(zone, target), name="courrier-dns-notify")
            self._tasks[pending] = task
            task.add_done_callback(functools.partial(self._forget, pending))

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, pending: tuple[dns.name.Name, Target], task: asyncio.Task[None]) -> None:
        if self._tasks.get(pending) is task:
            del self._tasks[pending]

    async def _send(self, zone: Zone, target: Target) -> None:
        query = transfer.notify(zone, self.key)
        wire = query.to_wire()  # once: every retry is the same message, with the same MAC
        loop = asyncio.get_running_loop()
        try:
            transport, replies = await loop.create_datagram_endpoint(_Replies, remote_addr=target)
        except OSError as exc:
            log.warning("dns: cannot NOTIFY %s of %s: %s", target[0], zone.origin, exc)
            return
        try:
            for wait in NOTIFY_WAITS:
                transport.sendto(wire)
                rcode = await replies.answer(query, wait)
                if rcode is not None:
                    _log_answer(zone, target, rcode)
                    return
            log.warning(
                "dns: no answer from %s port %d to the NOTIFY of %s (serial %d)",
                *target, zone.origin, zone.serial,
            )  # fmt: skip
        finally:
            transport.close()


class _Replies(asyncio.DatagramProtocol):
    """The datagrams that come back to a NOTIFY's socket."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)

    async def answer(self, query: dns.message.Message, wait: float) -> dns.rcode.Rcode | None:
        """The rcode of the answer to ``query`` if one comes within ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            try:
                data = await asyncio.wait_for(self.queue.get(), deadline - loop.time())
            except TimeoutError:
                return None
            rcode = transfer.acknowledged(query, data)
            if rcode is not None:
                return rcode


def _log_answer(zone: Zone, target: Target, rcode: dns.rcode.Rcode) -> None:
    if rcode == dns.rcode.NOERROR:
        log.info("dns: %s port %d notified of %s serial %d", *target, zone.origin, zone.serial)
    else:
        log.warning(
            "dns: %s port %d answered the NOTIFY of %s with %s",
            *target, zone.origin, dns.rcode.to_text(rcode),
        )  # fmt: skip
