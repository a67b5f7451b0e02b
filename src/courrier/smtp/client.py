"""The asyncio SMTP client: one connection to one server, for the outbound queue.

A thin shell around :mod:`courrier.smtp.client_proto`: it connects (implicit TLS or not),
reads the greeting, says EHLO (HELO when EHLO is refused, RFC 5321 §3.2), upgrades with
STARTTLS (RFC 3207: EHLO again after), authenticates (RFC 4954: PLAIN with an initial
response, or LOGIN), and sends messages: MAIL, RCPT and DATA pipelined when the server offers
PIPELINING (RFC 2920), the content as BDAT chunks when it offers CHUNKING (RFC 3030). Each
wait has the timeout RFC 5321 §4.5.3.2 gives it. What to do with each recipient's outcome is
the caller's: this module decides nothing about retries or bounces. A ``transcript`` callback,
when given, sees every write and every reply (``courrier send-test`` prints them).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import Callable, Mapping
from types import TracebackType

from courrier.smtp.client_proto import (
    TIMEOUTS,
    Envelope,
    Extensions,
    Outcome,
    Reply,
    ReplyError,
    ReplyReader,
    bdat_chunks,
    data_content,
    mail_command,
    needs,
    outcomes,
    rcpt_command,
)

_READ = 65536

#: Sees the conversation as it happens: the client, whether the bytes were sent (False: a
#: reply received, its lines as the server wrote them) and the bytes (a write may hold several
#: pipelined commands, or message content).
Transcript = Callable[["SMTPClient", bool, bytes], None]


class SMTPClientError(Exception):
    """The conversation cannot go on: connection lost, a reply that is no SMTP, or a refusal
    where the conversation needs an acceptance (greeting, EHLO, STARTTLS, AUTH). ``reply`` is
    the server's answer when there was one."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message if reply is None else f"{message}: {reply}")
        self.reply = reply


class TLSFailed(SMTPClientError):
    """STARTTLS was refused or its handshake failed (the connection is then unusable)."""


class SMTPClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        local_name: str,
        timeouts: Mapping[str, float] = TIMEOUTS,
        transcript: Transcript | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._replies = ReplyReader()
        self.local_name = local_name
        self.timeouts = timeouts
        self.greeting: Reply | None = None
        self.extensions = Extensions()
        self.tls = writer.get_extra_info("ssl_object") is not None
        self.transcript = transcript

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        local_name: str,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float = 30.0,
        timeouts: Mapping[str, float] = TIMEOUTS,
        transcript: Transcript | None = None,
    ) -> SMTPClient:
        """Connect (with implicit TLS when ``tls`` is given, RFC 8314) and read the greeting."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=tls,
                    server_hostname=(server_hostname or host) if tls else None,
                ),
                connect_timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise SMTPClientError(f"cannot connect to {host} port {port}: {exc}") from exc
        client = cls(
            reader, writer, local_name=local_name, timeouts=timeouts, transcript=transcript
        )
        try:
            client.greeting = await client._read("greeting")
        except BaseException:
            client.close()
            raise
        if client.greeting.code != 220:
            client.close()
            raise SMTPClientError("the server refused the connection", client.greeting)
        return client

    async def __aenter__(self) -> SMTPClient:
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        await self.quit()

    # -- the session ------------------------------------------------------------------------

    async def hello(self) -> Extensions:
        """EHLO, or HELO if the server refuses it; the extensions it offers."""
        reply = await self.command(f"EHLO {self.local_name}", "command")
        if reply.code == 250:
            self.extensions = Extensions.from_ehlo(reply)
            return self.extensions
        reply = await self.command(f"HELO {self.local_name}", "command")
        if reply.code != 250:
            raise SMTPClientError("the server refused EHLO and HELO", reply)
        self.extensions = Extensions()
        return self.extensions

    async def starttls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Upgrade to TLS (RFC 3207) and say EHLO again (§4.2: what was learnt before is
        forgotten)."""
        reply = await self.command("STARTTLS", "command")
        if reply.code != 220:
            raise TLSFailed("the server refused STARTTLS", reply)
        if self._replies.pending:
            # RFC 3207 §4.2 (CVE-2011-0411 the other way round): nothing may precede TLS.
            raise TLSFailed("the server sent more than its STARTTLS reply")
        try:
            await asyncio.wait_for(
                self._writer.start_tls(context, server_hostname=server_hostname),
                self.timeouts["command"],
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise TLSFailed(f"TLS handshake failed: {exc}") from exc
        self.tls = True
        await self.hello()

    @property
    def local_address(self) -> str:
        """The address this end of the connection has (TLS-RPT's sending-mta-ip)."""
        sockname = self._writer.get_extra_info("sockname")
        return str(sockname[0]) if sockname else ""

    def tls_session(self) -> tuple[str, str] | None:
        """The TLS version and cipher suite in use (``TLSv1.3``, ``TLS_AES_256_GCM_SHA384``),
        None without TLS."""
        ssl_object = self._writer.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        cipher = ssl_object.cipher()
        return ssl_object.version() or "", cipher[0] if cipher else ""

    def peer_chain(self) -> list[bytes]:
        """The certificates the server sent (DER, its own first), as sent and unchecked: for
        DANE (RFC 7672), which judges them itself. Empty without TLS."""
        ssl_object = self._writer.get_extra_info("ssl_object")
        if ssl_object is None:
            return []
        # Python 3.13 made the chain public; 3.11 and 3.12 have it on the inner object.
        chain = getattr(ssl_object, "get_unverified_chain", None)
        certs = chain() if chain is not None else ssl_object._sslobj.get_unverified_chain()
        if not certs:
            leaf = ssl_object.getpeercert(binary_form=True)
            return [leaf] if leaf else []
        return [
            c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
            for c in certs
        ]

    async def authenticate(self, username: str, password: str) -> None:
        """AUTH PLAIN with an initial response, or AUTH LOGIN (RFC 4954)."""
        mechanisms = self.extensions.auth
        if "PLAIN" in mechanisms:
            token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
            reply = await self.command(f"AUTH PLAIN {token}", "command")
        elif "LOGIN" in mechanisms:
            reply = await self.command("AUTH LOGIN", "command")
            for value in (username, password):
                if reply.code != 334:
                    break
                reply = await self.command(base64.b64encode(value.encode()).decode(), "command")
        else:
            raise SMTPClientError("the server offers neither AUTH PLAIN nor AUTH LOGIN")
        if reply.code != 235:
            raise SMTPClientError("authentication failed", reply)

    async def send(self, envelope: Envelope, content: bytes) -> list[Outcome]:
        """One transaction; the outcome of each recipient. The connection stays usable for the
        next message whatever the outcome (a transaction left open is reset)."""
        ext = self.extensions
        problem = needs(envelope, ext, len(content))
        if problem is not None:
            code, reason = problem
            reply = Reply(552 if code == "5.3.4" else 554, (f"{code} {reason}",))
            return [Outcome(r, reply, False) for r in envelope.recipients]
        chunking = "CHUNKING" in ext
        commands = [mail_command(envelope, ext, len(content))]
        commands += [rcpt_command(r, ext) for r in envelope.recipients]
        if "PIPELINING" in ext:
            # RFC 2920 §3.1: MAIL, the RCPTs and DATA go together; replies come in order.
            self._write(b"".join(commands) + (b"" if chunking else b"DATA\r\n"))
            mail = await self._read("mail")
            rcpts = [await self._read("rcpt") for _ in envelope.recipients]
            data = None if chunking else await self._read("data")
        else:
            mail = await self.command(commands[0], "mail")
            rcpts = []
            if mail.positive:
                rcpts = [await self.command(c, "rcpt") for c in commands[1:]]
            data = None
        accepted = mail.positive and any(r.positive for r in rcpts)
        final = None
        if chunking:
            if accepted:
                final = await self._bdat(content)
        elif data is not None:  # pipelined DATA
            if data.code == 354:
                # RFC 2920 §3.1: with no valid recipient the server should refuse DATA; if it
                # took it anyway, end an empty message, and count nothing as sent.
                self._write(data_content(content) if accepted else b".\r\n")
                reply = await self._read("final")
                final = reply if accepted else None
        elif accepted:
            data = await self.command("DATA", "data")
            if data.code == 354:
                self._write(data_content(content))
                final = await self._read("final")
            else:
                final = data
        if mail.positive and (final is None or not final.positive):
            await self.command("RSET", "command")  # RFC 5321 §4.1.1.5: a fresh start
        return outcomes(envelope.recipients, mail, rcpts, final)

    async def _bdat(self, content: bytes) -> Reply:
        chunks = bdat_chunks(content)
        if "PIPELINING" in self.extensions:
            self._write(b"".join(chunks))
            replies = [await self._read("final") for _ in chunks]
        else:
            replies = []
            for chunk in chunks:
                replies.append(await self.command(chunk, "final"))
                if not replies[-1].positive:
                    break
        return next((r for r in replies if not r.positive), replies[-1])

    async def quit(self) -> None:
        """QUIT politely, then close; never raises."""
        if not self._writer.is_closing():
            # RuntimeError: a transport a failed TLS handshake left behind.
            with contextlib.suppress(SMTPClientError, OSError, ssl.SSLError, RuntimeError):
                await asyncio.wait_for(self.command("QUIT", "command"), 10)
        self.close()

    def close(self) -> None:
        self._writer.close()

    # -- bytes ------------------------------------------------------------------------------

    async def command(self, line: str | bytes, kind: str) -> Reply:
        """Send one command (CRLF added to a str) and read its reply."""
        self._write(line if isinstance(line, bytes) else line.encode("utf-8") + b"\r\n")
        return await self._read(kind)

    def _write(self, data: bytes) -> None:
        if self.transcript is not None:
            self.transcript(self, True, data)
        self._writer.write(data)

    async def _read(self, kind: str) -> Reply:
        """The next reply, waiting at most the RFC 5321 §4.5.3.2 time for ``kind``."""
        try:
            async with asyncio.timeout(self.timeouts[kind]):
                await self._writer.drain()
                while True:
                    reply = self._replies.next_reply()
                    if reply is not None:
                        if self.transcript is not None:
                            self.transcript(self, False, _lines(reply))
                        return reply
                    data = await self._reader.read(_READ)
                    if not data:
                        raise SMTPClientError("the server closed the connection")
                    self._replies.receive(data)
        except TimeoutError as exc:
            raise SMTPClientError(f"no reply within {self.timeouts[kind]:.0f} s ({kind})") from exc
        except ReplyError as exc:
            raise SMTPClientError(f"the server's reply is not SMTP: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise SMTPClientError(f"connection lost: {exc}") from exc


def _lines(reply: Reply) -> bytes:
    """A reply as the server wrote it (RFC 5321 §4.2.1: "-" after the code of each line but
    the last)."""
    last = len(reply.lines) - 1
    return b"".join(
        f"{reply.code}{' ' if n == last else '-'}{line}".rstrip().encode() + b"\r\n"
        for n, line in enumerate(reply.lines)
    )
