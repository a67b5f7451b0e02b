"""The asyncio SMTP client against courrier's own server, over real sockets: DATA pipelined or
not, BDAT, STARTTLS, AUTH PLAIN and LOGIN, per-recipient outcomes, limits, failures."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courrier.smtp.client import SMTPClient, SMTPClientError
from courrier.smtp.client_proto import TIMEOUTS, Envelope, Extensions, Recipient
from tests.store.helpers import make_message
from tests.support.server import PASSWORD, Running, client_tls, inbox, start_server

#: A body whose lines start with dots: DATA must stuff them and the server unstuff them.
DOTTED = "first line\r\n.a line with a dot\r\n..two dots\r\n.\r\nlast line\r\n"


def without(client: SMTPClient, *keywords: str) -> None:
    """Pretend the server did not offer ``keywords`` (to take the other paths)."""
    kept = {k: v for k, v in client.extensions.keywords.items() if k not in keywords}
    client.extensions = Extensions(kept)


@pytest.mark.parametrize(
    "hidden",
    [(), ("CHUNKING",), ("CHUNKING", "PIPELINING"), ("PIPELINING",)],
    ids=["bdat-pipelined", "data-pipelined", "data-one-by-one", "bdat-one-by-one"],
)
async def test_delivery_to_the_mx_with_an_outcome_per_recipient(
    running: Running, hidden: tuple[str, ...]
) -> None:
    content = make_message(1, body=DOTTED)
    async with await SMTPClient.connect(
        "127.0.0.1", running.port("smtp"), local_name="client.example.net"
    ) as client:
        ext = await client.hello()
        assert "PIPELINING" in ext and "CHUNKING" in ext and "8BITMIME" in ext
        without(client, *hidden)
        envelope = Envelope(
            "alice@example.net",
            (Recipient("bob@example.org"), Recipient("nobody@example.org")),
        )
        bob, nobody = await client.send(envelope, content)
        # The connection is usable after a partly refused transaction.
        (again,) = await client.send(
            Envelope("alice@example.net", (Recipient("nobody@example.org"),)), content
        )
    assert bob.delivered is True and bob.reply.code == 250
    assert nobody.delivered is False and nobody.reply.enhanced == "5.1.1"
    assert again.delivered is False
    (stored,) = await inbox(running.store, "bob@example.org")
    assert stored.endswith(content)  # byte for byte, after the Received line


async def test_submission_with_starttls_and_auth_queues_a_remote_recipient(
    running: Running,
) -> None:
    async with await SMTPClient.connect(
        "127.0.0.1", running.port("submission"), local_name="laptop.example.net"
    ) as client:
        ext = await client.hello()
        assert "STARTTLS" in ext and not ext.auth  # no AUTH before TLS
        await client.starttls(client_tls(), "mx.example.org")
        assert client.tls and client.extensions.auth >= {"PLAIN", "LOGIN"}
        with pytest.raises(SMTPClientError, match="535"):
            await client.authenticate("bob@example.org", "not the password")
        await client.authenticate("bob@example.org", PASSWORD)
        envelope = Envelope(
            "bob@example.org",
            (Recipient("carol@elsewhere.net", "FAILURE", "rfc822;carol@elsewhere.net"),),
            envid="ENV 42",
        )
        (carol,) = await client.send(envelope, make_message(2))
    assert carol.delivered is True
    (queued,) = await running.store.list_queue()
    assert queued.envid == "ENV 42"
    assert [(r.recipient, r.notify) for r in queued.recipients] == [
        ("carol@elsewhere.net", "FAILURE")
    ]


async def test_auth_login_when_plain_is_not_offered(running: Running) -> None:
    async with await SMTPClient.connect(
        "127.0.0.1",
        running.port("submissions"),
        local_name="laptop.example.net",
        tls=client_tls(),
        server_hostname="mx.example.org",
    ) as client:
        await client.hello()
        keywords = dict(client.extensions.keywords, AUTH="LOGIN")
        client.extensions = Extensions(keywords)
        await client.authenticate("bob@example.org", PASSWORD)
        (bob,) = await client.send(
            Envelope("bob@example.org", (Recipient("bob@example.org"),)), make_message(3)
        )
    assert bob.delivered is True


async def test_a_message_over_the_servers_size_is_not_sent(tmp_path: Path) -> None:
    async with start_server(tmp_path / "data", **{"smtp.max_message_size": 2000}) as running:
        async with await SMTPClient.connect(
            "127.0.0.1", running.port("smtp"), local_name="client.example.net"
        ) as client:
            await client.hello()
            assert client.extensions.size == 2000
            (bob,) = await client.send(
                Envelope("a@example.net", (Recipient("bob@example.org"),)),
                make_message(4, size=5000),
            )
        assert bob.delivered is False and bob.reply.enhanced == "5.3.4"
        assert await inbox(running.store, "bob@example.org") == []


async def test_connection_failures_are_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
    with pytest.raises(SMTPClientError, match="cannot connect"):
        await SMTPClient.connect("127.0.0.1", port, local_name="x", connect_timeout=5)


@contextlib.asynccontextmanager
async def fake_server(greeting: bytes | None) -> AsyncIterator[int]:
    """A listener that sends ``greeting`` (None: nothing at all) and then only listens."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if greeting is not None:
            writer.write(greeting)
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("greeting", "error"),
    [
        (None, "no reply within 0 s .greeting."),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not SMTP"),
        (b"554 5.7.1 go away\r\n", "refused the connection: 554"),
    ],
)
async def test_servers_that_are_not_what_they_should_be(greeting: bytes | None, error: str) -> None:
    timeouts = dict(TIMEOUTS, greeting=0.2)
    async with fake_server(greeting) as port:
        with pytest.raises(SMTPClientError, match=error):
            await SMTPClient.connect("127.0.0.1", port, local_name="x", timeouts=timeouts)
