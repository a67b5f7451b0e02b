"""SIGKILL of a `courrier serve` that is sending its queue: after a restart every queued
message reaches the other server, and only those in flight at the kill (a 250 received,
its record not yet written) can arrive twice."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from courrier import config, provisioning
from courrier.store import open_store
from courrier.store.queue import Outbound, OutboundRecipient
from tests.queue.helpers import server_b
from tests.support.dnsstub import DNSStub
from tests.support.server import free_offset, inbox

ROOT = Path(__file__).resolve().parents[2]
COUNT = 300
CONCURRENCY = 10


def _message(n: int) -> bytes:
    return (
        f"From: bob@example.org\r\nTo: carol@b.test\r\nSubject: queued {n}\r\n"
        f"Message-ID: <queued-{n}@example.org>\r\n\r\n" + f"line {n}\r\n" * 20
    ).encode()


async def _serve(data: Path, offset: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "courrier", "serve", "--data", str(data)),
        *("--port-offset", str(offset)),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **env},
    )


def _queued(data: Path) -> int:
    listed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "courrier", "queue", "list", "--json", "--data", str(data)],
            capture_output=True,
            check=True,
            cwd=ROOT,
        ).stdout
    )
    return len(listed)


async def test_sigkill_while_sending(tmp_path: Path) -> None:
    stub = DNSStub({"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]})
    async with stub.serving() as resolver, server_b(tmp_path) as b:
        data = tmp_path / "a"
        offset = free_offset()
        settings = config.load(env={}, overrides={"server.data_dir": str(data)})
        store = await open_store(settings)
        async with store:
            await provisioning.add_domain(store, "example.org")
            for n in range(COUNT):
                outbound = Outbound(f"Q{n}", "", (OutboundRecipient("carol@b.test"),), b"")
                await store.deliver(_message(n), [], outbound=outbound)
        env = {
            "COURRIER_SERVER_LISTEN": "127.0.0.2",
            "COURRIER_SERVER_HOSTNAME": "mx.example.org",
            "COURRIER_DNS_RESOLVERS": resolver,
            "COURRIER_QUEUE_OUTBOUND_PORT": str(b.port("smtp")),
            "COURRIER_QUEUE_LEASE": "2",  # a killed worker's recipients come back quickly
            "COURRIER_QUEUE_SCAN_INTERVAL": "1",
            "COURRIER_QUEUE_BATCH": "20",
            "COURRIER_QUEUE_CONCURRENCY": str(CONCURRENCY),
        }
        account = await b.store.get_account("carol@b.test")
        assert account is not None
        carol = await b.store.mailbox(account.id, "INBOX")

        async def received() -> int:
            return (await b.store.mailbox(account.id, "INBOX", counts=True)).messages

        server = await _serve(data, offset, env)
        try:
            deadline = time.monotonic() + 60
            while await received() < COUNT // 3:
                assert time.monotonic() < deadline, "nothing delivered"
                await asyncio.sleep(0.01)
            server.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(server.wait(), 30) == -signal.SIGKILL
        finally:
            if server.returncode is None:
                server.kill()
                await server.wait()
        at_kill = await received()
        assert at_kill < COUNT, "all delivered before the kill: nothing was tested"
        server = await _serve(data, offset, env)
        try:
            deadline = time.monotonic() + 90
            while await asyncio.to_thread(_queued, data):
                assert time.monotonic() < deadline, "the queue did not empty after the restart"
                await asyncio.sleep(0.5)
        finally:
            server.terminate()
            await server.wait()
        arrived = collections.Counter(
            m.message_id for m in await b.store.list_messages(carol.id, columns=("message_id",))
        )
        assert set(arrived) == {f"<queued-{n}@example.org>" for n in range(COUNT)}  # none lost
        twice = [m for m, k in arrived.items() if k > 1]
        assert len(twice) <= CONCURRENCY, twice  # at most what was in flight at the kill
        contents = await inbox(b.store, "carol@b.test")
        assert all(
            c.endswith(_message(int(c.split(b"queued ")[1].split(b"\r")[0]))) for c in contents
        )
