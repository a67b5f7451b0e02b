"""A running courrier (every listener on free ports) with a domain, a user and an alias."""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from courrier import config, provisioning
from courrier.server import Server
from courrier.store import Store
from tests.support.dnsstub import DNSStub

PASSWORD = "a long passphrase for the tests"


def free_offset(addresses: Sequence[str] = ("127.0.0.1",)) -> int:
    """A port offset whose mail ports are free on each of ``addresses``."""
    for offset in range(21000, 60000, 97):
        ok = True
        for port, address in itertools.product((25, 587, 465, 143, 993, 110, 995, 53), addresses):
            with socket.socket() as s:
                try:
                    s.bind((address, port + offset))
                except OSError:
                    ok = False
                    break
        if ok:
            return offset
    raise RuntimeError("no free ports")


@dataclass
class Running:
    server: Server
    store: Store
    offset: int

    def port(self, name: str) -> int:
        return self.server.settings.port(name)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with start_server(tmp_path / "data") as started:
        yield started


@contextlib.asynccontextmanager
async def start_server(data_dir: Path, **overrides: object) -> AsyncIterator[Running]:
    """A server on ``data_dir`` with example.org, bob@example.org and sales@example.org;
    ``overrides`` are settings by dotted name (``imap.plaintext_on_loopback``). Unless they
    name ``dns.resolvers``, the server's DNS is a stand-in that knows no names: the checks of
    inbound mail find nothing, at once and without the network."""
    if "dns.resolvers" not in overrides:
        stub = DNSStub({})
        async with (
            stub.serving() as resolver,
            start_server(data_dir, **overrides, **{"dns.resolvers": [resolver]}) as started,
        ):
            yield started
        return
    listen = overrides.get("server.listen", ["127.0.0.1"])
    assert isinstance(listen, list)
    offset = free_offset(listen)
    settings = config.load(
        env={},
        overrides={
            "server.data_dir": str(data_dir),
            "server.hostname": "mx.example.org",
            "server.port_offset": offset,
            "server.listen": ["127.0.0.1"],
            # Mail for other servers stays queued unless a test delivers it.
            "queue.deliver": False,
            **overrides,
        },
    )
    server = Server(settings)
    await server.start()
    assert server.store is not None
    store = server.store
    await provisioning.add_domain(store, "example.org")
    await provisioning.add_user(store, settings, "bob@example.org", PASSWORD)
    await provisioning.add_alias(store, "sales@example.org", ["bob@example.org"])
    try:
        yield Running(server, store, offset)
    finally:
        await server.close()


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def inbox(store: Store, address: str, name: str = "INBOX") -> list[bytes]:
    """The messages of a mailbox, as stored."""
    account = await store.get_account(address)
    assert account is not None
    box = await store.mailbox(account.id, name)
    return [await store.read_message(m.id) for m in await store.list_messages(box.id)]
