"""The authoritative DNS listeners on port 53, UDP and TCP (RFC 1035 §4.2, RFC 7766).

A thin shell around :class:`courrier.dns.answer.Authority`: a datagram in, the response out; on
TCP each message is preceded by its two-octet length, and a connection may carry many queries
(RFC 7766 §6.2.1) until it idles for :data:`TCP_IDLE` seconds. The zones are rebuilt from the
store every :data:`REFRESH` seconds (a domain added, a DKIM key rotated), or at once when told.
UDP answers are rate-limited per source network (:mod:`courrier.dns.ratelimit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from courrier.dns.answer import Authority
from courrier.dns.ratelimit import RateLimiter
from courrier.dns.zonedata import ZoneBuilder
from courrier.store import Store

log = logging.getLogger("courrier.dns")

TCP_IDLE = 10.0
REFRESH = 60.0


class UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, authority: Authority, limiter: RateLimiter) -> None:
        self.authority = authority
        self.limiter = limiter
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's UDPTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        verdict = self.limiter.check(addr[0], time.monotonic())
        if verdict == RateLimiter.DROP:
            return
        response = self.authority.respond(data, truncate=verdict == RateLimiter.SLIP)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)


class DNSServer:
    def __init__(self, store: Store, builder: ZoneBuilder, *, rate_limit: float = 0) -> None:
        self.store = store
        self.builder = builder
        self.authority = Authority()
        self.limiter = RateLimiter(rate_limit)

    async def refresh(self) -> None:
        self.authority.replace(await self.builder.build(self.store))

    async def keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH)
            try:
                await self.refresh()
            except Exception:
                log.exception("dns: rebuilding the zones failed; serving the previous ones")

    def udp(self) -> UDPProtocol:
        return UDPProtocol(self.authority, self.limiter)

    async def handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int.from_bytes(
                    await asyncio.wait_for(reader.readexactly(2), TCP_IDLE), "big"
                )
                query = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE)
                response = self.authority.respond(query, tcp=True)
                if response is None:
                    break
                writer.write(len(response).to_bytes(2, "big") + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)
