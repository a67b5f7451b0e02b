"""A deliberately bad SMTP server for the diagnosis tests: each knob plants one fault that
``courrier check`` must find — no STARTTLS, a given (expired, self-signed, misnamed)
certificate, a greeting that names no host or refuses, EHLO refused, an open relay, or no
greeting at all. It never takes a message (DATA gets 554) and records every command, so a test
can tell that the probe never tried to send one."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BadSMTP:
    hostname: str
    #: PEM certificate and key for STARTTLS; None: STARTTLS not offered.
    certificate: tuple[Path, Path] | None = None
    #: The greeting's text after the code (default: "HOSTNAME ESMTP").
    banner: str = ""
    #: The greeting's code; 0: never greet (a server that accepts and says nothing).
    greeting_code: int = 220
    ehlo: bool = True
    open_relay: bool = False
    commands: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
            if self.greeting_code == 0:
                await reader.read()  # until the client gives up
                return
            writer.write(
                f"{self.greeting_code} {self.banner or self.hostname + ' ESMTP'}\r\n".encode()
            )
            if self.greeting_code != 220:
                await writer.drain()
                return
            tls = False
            while line := await reader.readline():
                command = line.decode("utf-8", "replace").strip()
                self.commands.append(command)
                verb = command.split(" ", 1)[0].upper()
                if verb == "STARTTLS" and self.certificate and not tls:
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    await writer.start_tls(self._context())
                    tls = True
                    continue
                writer.write(self._reply(verb, tls))
                await writer.drain()
                if verb == "QUIT":
                    return
        writer.close()

    def _reply(self, verb: str, tls: bool) -> bytes:
        if verb == "EHLO":
            if not self.ehlo:
                return b"502 5.5.1 EHLO not implemented\r\n"
            starttls = "250-STARTTLS\r\n" if self.certificate and not tls else ""
            return f"250-{self.hostname}\r\n{starttls}250 PIPELINING\r\n".encode()
        replies = {
            "HELO": f"250 {self.hostname}",
            "MAIL": "250 2.1.0 Ok",
            "RCPT": "250 2.1.5 Ok" if self.open_relay else "554 5.7.1 Relay access denied",
            "DATA": "554 5.5.1 No message taken here",
            "RSET": "250 2.0.0 Ok",
            "NOOP": "250 2.0.0 Ok",
            "QUIT": "221 2.0.0 Bye",
        }
        return (replies.get(verb, "500 5.5.2 Unknown command") + "\r\n").encode()

    def _context(self) -> ssl.SSLContext:
        assert self.certificate is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self.certificate)
        return context

    @contextlib.asynccontextmanager
    async def serving(self, address: str, port: int) -> AsyncIterator[None]:
        server = await asyncio.start_server(self.handle, address, port)
        async with server:
            yield
