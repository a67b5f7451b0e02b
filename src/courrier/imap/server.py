"""The IMAP listeners: 143 with STARTTLS and 993 over TLS (RFC 8314).

A thin asyncio shell: it feeds the socket's bytes to the command reader
(:mod:`courrier.imap.parser`), hands each command to the session
(:mod:`courrier.imap.session`) and writes what the session wrote. It also owns the
connection's transforms: STARTTLS and COMPRESS=DEFLATE (RFC 4978, raw deflate both ways,
flushed with Z_SYNC_FLUSH at each write). An idling client is one coroutine and a few buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import zlib

from courrier.config import Settings
from courrier.imap import parser
from courrier.imap.session import Logout, Session
from courrier.security.limits import ConnectionLimits, ReadTimeout, is_loopback
from courrier.store import Store

log = logging.getLogger("courrier.imap")

_READ = 65536


class _Connection:
    """The session's :class:`~courrier.imap.session.Channel` over asyncio streams."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls: ssl.SSLContext,
        command_reader: parser.CommandReader,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._tls = tls
        self.reader = command_reader
        self.timer = ReadTimeout()
        self.tls_active = writer.get_extra_info("ssl_object") is not None
        self._out: list[bytes] = []
        self._deflate: zlib._Compress | None = None
        self._inflate: zlib._Decompress | None = None

    def write(self, data: bytes) -> None:
        self._out.append(data)

    async def flush(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        if self._deflate is not None:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self, seconds: float) -> bool:
        """Read what the client sent into the command reader; False at end of stream."""
        data = await self.timer.read(self._reader, _READ, seconds)
        if not data:
            self.reader.receive_eof()
            return False
        if self._inflate is not None:
            # Inflated in steps; the command reader caps what it buffers, so a deflate bomb
            # ends in LineTooLong rather than in memory.
            data = self._inflate.decompress(data, 4 * _READ)
            while self._inflate.unconsumed_tail:
                self.reader.receive(data)
                data = self._inflate.decompress(self._inflate.unconsumed_tail, 4 * _READ)
        self.reader.receive(data)
        return True

    async def read_line(self, seconds: float) -> bytes | None:
        while True:
            line = self.reader.read_line()
            if line is not None:
                return line
            if self.reader.broken or not await self.receive(seconds):
                return None

    async def start_tls(self) -> None:
        await self._writer.start_tls(self._tls)
        self.tls_active = True

    def start_compress(self) -> None:
        self._deflate = zlib.compressobj(wbits=-15)
        self._inflate = zlib.decompressobj(wbits=-15)
        pending = self.reader.pending()
        self.reader.discard()
        if pending:  # bytes after the COMPRESS command were already compressed
            self.reader.receive(self._inflate.decompress(pending))


class IMAPServer:
    def __init__(self, settings: Settings, store: Store, tls: ssl.SSLContext) -> None:
        self.settings = settings
        self.store = store
        self.tls = tls
        self.limits = ConnectionLimits(
            settings.imap.max_connections_per_ip, settings.imap.max_connections
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = str(peer_info[0]) if peer_info else "unknown"
        if not self.limits.admit(peer):
            log.warning("[%s]: too many connections, refused", peer)
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                writer.write(b"* BYE Too many connections\r\n")
                await writer.drain()
            writer.close()
            return
        try:
            await self._session(peer, reader, writer)
        finally:
            self.limits.release(peer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def _session(
        self, peer: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = _Connection(reader, writer, self.tls, parser.CommandReader())
        session = Session(self.settings, self.store, conn, peer=peer, loopback=is_loopback(peer))
        log.info("[%s]: connect", peer)
        try:
            conn.write(session.greeting())
            await conn.flush()
            await self._converse(session, conn)
        except Logout:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await conn.flush()
        except TimeoutError:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                conn.write(b"* BYE Autologout; idle for too long\r\n")
                await conn.flush()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, zlib.error) as exc:
            log.info("[%s]: connection lost: %s", peer, exc)
        finally:
            conn.timer.close()
            log.info("[%s]: disconnect", peer)

    async def _converse(self, session: Session, conn: _Connection) -> None:
        imap = self.settings.imap
        while True:
            event = conn.reader.next_event()
            if event is parser.NEED_DATA:
                await conn.flush()
                session.pending = 0
                timeout = imap.idle_timeout if session.account else imap.login_timeout
                await conn.receive(timeout)
            elif isinstance(event, parser.Continuation):
                conn.write(b"+ Ready for literal data\r\n")
                await conn.flush()
            elif isinstance(event, parser.LiteralTooBig):
                if event.nonsync:  # RFC 7888 §4: the octets are coming anyway; hang up
                    conn.write(f"{event.tag} BAD Literal too big\r\n".encode())
                    conn.write(b"* BYE Literal too big\r\n")
                    raise Logout
                conn.write(f"{event.tag} NO [TOOBIG] Literal too big\r\n".encode())
            elif isinstance(event, parser.LineTooLong):
                conn.write(f"{event.tag or '*'} BAD Command line too long\r\n".encode())
                conn.write(b"* BYE Command line too long\r\n")
                raise Logout
            elif isinstance(event, parser.Closed):
                return
            else:
                await session.run(event)
