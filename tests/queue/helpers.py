"""What the queue tests share: server B, the destination of A's mail, and A beside it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from courrier import provisioning
from courrier.smtp.client import SMTPClient
from courrier.smtp.client_proto import Envelope, Recipient
from tests.support.dnsstub import DNSStub
from tests.support.server import PASSWORD, Running, client_tls, start_server


@contextlib.asynccontextmanager
async def server_b(tmp_path: Path, **overrides: object) -> AsyncIterator[Running]:
    """B: mx.b.test on 127.0.0.3, hosting b.test with carol@b.test (and example.org);
    ``overrides``: more settings (``tls.cert_file``…)."""
    async with start_server(
        tmp_path / "b",
        **{"server.listen": ["127.0.0.3"], "server.hostname": "mx.b.test", **overrides},
    ) as b:
        await provisioning.add_domain(b.store, "b.test")
        await provisioning.add_user(b.store, b.server.settings, "carol@b.test", PASSWORD)
        yield b


@contextlib.asynccontextmanager
async def two_servers(
    tmp_path: Path, stub: DNSStub, b_settings: dict[str, object] | None = None, **overrides: object
) -> AsyncIterator[tuple[Running, Running]]:
    """B (``server_b``, with ``b_settings``) and A on 127.0.0.2 delivering to B's SMTP port,
    both using the DNS stand-in, A retrying every second; ``overrides``: more settings of A."""
    async with (
        stub.serving() as resolver,
        server_b(tmp_path, **{"dns.resolvers": [resolver], **(b_settings or {})}) as b,
        start_server(
            tmp_path / "a",
            **{
                "server.listen": ["127.0.0.2"],
                "dns.resolvers": [resolver],
                "queue.deliver": True,
                "queue.outbound_port": b.port("smtp"),
                "queue.scan_interval": 1,
                "queue.retry_min": 1,
                "queue.retry_max": 1,
                **overrides,
            },
        ) as a,
    ):
        yield a, b


async def submit(a: Running, recipients: list[str | Recipient], content: bytes) -> None:
    """Bob sends over A's submission port (STARTTLS, AUTH)."""
    async with await SMTPClient.connect(
        "127.0.0.2", a.port("submission"), local_name="laptop.example.org"
    ) as client:
        await client.hello()
        await client.starttls(client_tls(), "mx.example.org")
        await client.authenticate("bob@example.org", PASSWORD)
        envelope = Envelope(
            "bob@example.org",
            tuple(r if isinstance(r, Recipient) else Recipient(r) for r in recipients),
        )
        outcomes = await client.send(envelope, content)
    assert all(o.delivered for o in outcomes)  # accepted into A's queue


async def queue_empty(a: Running, seconds: float = 15) -> None:
    """Wait until A's queue has nothing left (sent, or failed)."""
    deadline = time.monotonic() + seconds
    while await a.store.list_queue():
        assert time.monotonic() < deadline, await a.store.list_queue()
        await asyncio.sleep(0.05)
