"""SIGKILL of `courrier serve` in the middle of many concurrent SMTP deliveries: after a restart,
every message that got a 250 is in its mailbox exactly once, and nothing half-written is."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from pathlib import Path

from courrier import config, provisioning
from courrier.store import Store, open_store
from tests.support.dnsstub import DNSStub
from tests.support.server import free_offset

ROOT = Path(__file__).resolve().parents[2]


def _message(n: int) -> bytes:
    return (
        f"From: a@example.net\r\nTo: bob@example.org\r\nSubject: crash {n}\r\n"
        f"Message-ID: <crash-{n}@example.net>\r\n\r\n" + f"line {n}\r\n" * 40
    ).encode()


async def _send(port: int, n: int) -> bool:
    """One message over one connection; True only if the server answered 250 after DATA.
    A connection the dying server resets or refuses sent nothing."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:  # ConnectionError included
        return False
    try:
        writer.write(
            b"EHLO c.example.net\r\nMAIL FROM:<a@example.net>\r\n"
            b"RCPT TO:<bob@example.org>\r\nDATA\r\n"
        )
        buffer = b""
        while b"\r\n354 " not in buffer:
            chunk = await reader.read(4096)
            if not chunk:
                return False
            buffer += chunk
        writer.write(_message(n) + b".\r\nQUIT\r\n")
        rest = b""
        while b"221 " not in rest:
            chunk = await reader.read(4096)
            if not chunk:
                break
            rest += chunk
        return rest.startswith(b"250 ")
    except (ConnectionError, OSError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _prepare(data: Path, offset: int) -> config.Settings:
    settings = config.load(
        env={},
        overrides={
            "server.data_dir": str(data),
            "server.hostname": "mx.example.org",
            "server.port_offset": offset,
            "server.listen": ["127.0.0.1"],
        },
    )
    store = await open_store(settings)
    async with store:
        await provisioning.add_domain(store, "example.org")
        await provisioning.add_user(store, settings, "bob@example.org", "a long passphrase here")
    return settings


async def test_sigkill_during_deliveries(tmp_path: Path) -> None:
    async with DNSStub({}).serving() as resolver:
        await _sigkill_during_deliveries(tmp_path, resolver)


async def _sigkill_during_deliveries(tmp_path: Path, resolver: str) -> None:
    data = tmp_path / "data"
    offset = free_offset()
    settings = await _prepare(data, offset)
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "courrier",
        "serve",
        "--data",
        str(data),
        "--port-offset",
        str(offset),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        # The inbound checks ask a DNS stand-in that knows no names.
        env={
            **os.environ,
            "COURRIER_SERVER_LISTEN": "127.0.0.1",
            "COURRIER_DNS_RESOLVERS": resolver,
        },
    )
    port = settings.port("smtp")
    try:
        for _ in range(300):  # wait for the listener
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        acked: set[int] = set()
        kill_after = random.randint(150, 400)
        numbers = iter(range(5000))
        killed = asyncio.Event()

        async def client() -> None:
            for n in numbers:
                if killed.is_set():
                    return
                if await _send(port, n):
                    acked.add(n)
                    if len(acked) >= kill_after and not killed.is_set():
                        server.send_signal(signal.SIGKILL)
                        killed.set()

        await asyncio.gather(*(client() for _ in range(20)))
        assert await asyncio.wait_for(server.wait(), 30) == -signal.SIGKILL
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert len(acked) >= kill_after

    store: Store = await open_store(settings)
    async with store:
        account = await store.get_account("bob@example.org")
        assert account is not None
        inbox = await store.mailbox(account.id, "INBOX")
        messages = await store.list_messages(inbox.id)
        ids = [m.message_id for m in messages]
        assert len(ids) == len(set(ids)), "a message was stored twice"
        for n in acked:
            assert f"<crash-{n}@example.net>" in ids, f"message {n} got 250 and was lost"
        for message in messages:
            content = await store.read_message(message.id)
            n = int(message.message_id.split("-")[1].split("@")[0])
            assert content.endswith(_message(n))
