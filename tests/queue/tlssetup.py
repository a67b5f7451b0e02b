"""What the transport security tests share: a test PKI, B with a certificate of it, A trusting
it, an HTTPS server in place of ``mta-sts.b.test``, a plain SMTP sink, and waiting helpers."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from courrier.store.models import QueuedMessage
from courrier.store.queue import Outbound, OutboundRecipient
from tests.queue.helpers import two_servers
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub
from tests.support.pki import Authority, Issued
from tests.support.server import Running

POLICY_ADDRESS = "127.0.0.5"


@dataclass
class PolicyServer:
    """``https://mta-sts.b.test/.well-known/mta-sts.txt`` on 127.0.0.5 (a free port)."""

    policy: str
    status: int = 200
    content_type: str = "text/plain"
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ssl.SSLError):
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            body = self.policy.encode()
            writer.write(
                f"HTTP/1.1 {self.status} Whatever\r\nContent-Type: {self.content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def serving(self, issued: Issued, directory: Path) -> AsyncIterator[int]:
        cert, key = issued.write(directory, "mta-sts")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = await asyncio.start_server(self.handle, POLICY_ADDRESS, 0, ssl=context)
        async with server:
            yield server.sockets[0].getsockname()[1]


def policy(mode: str, *mx: str, max_age: int = 86400) -> str:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return "\r\n".join(lines) + "\r\n"


@dataclass
class Pair:
    a: Running
    b: Running
    stub: DNSStub


@contextlib.asynccontextmanager
async def pair(
    tmp_path: Path,
    stub: DNSStub,
    ca: Authority,
    b_cert: Issued,
    *,
    mta_sts_port: int = 9,
    **a_overrides: object,
) -> AsyncIterator[Pair]:
    """B (127.0.0.3) with ``b_cert``; A (127.0.0.2) trusting ``ca``, delivering to B's SMTP
    port, fetching policies from ``mta_sts_port``, retrying every second."""
    cert, key = b_cert.write(tmp_path / "pki", "b")
    ca_file = ca.write_root(tmp_path / "pki" / "root.pem")
    async with two_servers(
        tmp_path,
        stub,
        {"tls.cert_file": str(cert), "tls.key_file": str(key)},
        **{
            "queue.tls_ca_file": str(ca_file),
            "queue.mta_sts_port": mta_sts_port,
            "queue.mta_sts_timeout": 5,
            **a_overrides,
        },
    ) as (a, b):
        yield Pair(a, b, stub)


async def queue_mail(a: Running, queue_id: str, n: int, *, requiretls: bool = False) -> bytes:
    """Put a message for carol@b.test in A's queue (from the null sender: no reports)."""
    content = make_message(n)
    outbound = Outbound(
        queue_id, "", (OutboundRecipient("carol@b.test"),), b"", requiretls=requiretls
    )
    await a.store.deliver(content, [], outbound=outbound)
    return content


async def attempted(a: Running, attempts: int = 1, seconds: float = 15) -> QueuedMessage:
    """The one queued message once it has been tried ``attempts`` times."""
    deadline = time.monotonic() + seconds
    while True:
        queued = await a.store.list_queue()
        if queued and queued[0].recipients[0].attempts >= attempts:
            (message,) = queued
            return message
        assert time.monotonic() < deadline, queued
        await asyncio.sleep(0.05)


class SinkServer:
    """A plain SMTP server that takes anything, to see whether A talked to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.messages: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"220 sink.b.test ESMTP\r\n")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                command = line.strip().upper()
                if command == b"DATA":
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                    writer.write(b"250 2.0.0 taken\r\n")
                elif command == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        writer.close()
