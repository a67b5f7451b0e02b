"""One pass of the queue runner carries many messages for one domain over a few connections,
one transaction after another; a connection lost halfway sends the rest to the next address,
and nothing answered is sent twice."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

from courrier.queue import runner
from courrier.queue.runner import QueueRunner
from courrier.store.queue import Outbound, OutboundRecipient
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub
from tests.support.server import Running, start_server

_MESSAGE_ID = re.compile(rb"Message-ID: <m(\d+)@example.org>")


class CountingSink:
    """An MX that offers PIPELINING, refuses nobody@, and counts connections, transactions
    and RSETs; with ``drop_after``, it hangs up (no QUIT) right after its 250 for that many
    messages, once."""

    def __init__(self, drop_after: int = 0, *, greylist: bool = False) -> None:
        self.drop_after = drop_after
        #: Greylisting: the first RCPT of each (sender, recipient) pair gets a 450.
        self.greylist = greylist
        self.seen: set[tuple[bytes, bytes]] = set()
        self.connections = 0
        self.rsets = 0
        self.messages: list[bytes] = []
        #: Messages taken on each connection, in order.
        self.per_connection: list[int] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.per_connection.append(0)
        this = len(self.per_connection) - 1
        writer.write(b"220 sink.c.test ESMTP\r\n")
        recipients, sender = 0, b""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                command = line.strip().upper()
                if command.startswith(b"EHLO"):
                    writer.write(b"250-sink.c.test\r\n250 PIPELINING\r\n")
                elif command.startswith(b"MAIL"):
                    recipients, sender = 0, command
                    writer.write(b"250 2.1.0 ok\r\n")
                elif (
                    command.startswith(b"RCPT")
                    and self.greylist
                    and (sender, command) not in self.seen
                ):
                    self.seen.add((sender, command))
                    writer.write(b"450 4.2.0 Greylisted, try again in a moment\r\n")
                elif command.startswith(b"RCPT") and b"NOBODY@" in command:
                    writer.write(b"550 5.1.1 no such user\r\n")
                elif command.startswith(b"RCPT"):
                    recipients += 1
                    writer.write(b"250 2.1.5 ok\r\n")
                elif command == b"DATA" and not recipients:
                    writer.write(b"554 5.5.1 no valid recipients\r\n")
                elif command == b"DATA":
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                    self.per_connection[this] += 1
                    writer.write(b"250 2.0.0 taken\r\n")
                    if len(self.messages) == self.drop_after:
                        self.drop_after = 0
                        await writer.drain()
                        break  # hang up, as a server that crashed
                elif command == b"RSET":
                    self.rsets += 1
                    recipients = 0
                    writer.write(b"250 2.0.0 ok\r\n")
                elif command == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        writer.close()

    def received(self) -> collections.Counter[int]:
        """How many times each message number arrived."""
        counts: collections.Counter[int] = collections.Counter()
        for message in self.messages:
            found = _MESSAGE_ID.search(message)
            assert found is not None
            counts[int(found[1])] += 1
        return counts


@contextlib.asynccontextmanager
async def sink_on(sink: CountingSink, *addresses: str) -> AsyncIterator[int]:
    """``sink`` on each of ``addresses``, all on the same port (the queue's outbound port)."""
    first = await asyncio.start_server(sink.handle, addresses[0], 0)
    port = first.sockets[0].getsockname()[1]
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(first)
        for address in addresses[1:]:
            more = await asyncio.start_server(sink.handle, address, port)
            await stack.enter_async_context(more)
        yield port


@contextlib.asynccontextmanager
async def server_a(
    tmp_path: Path, stub: DNSStub, port: int, **more: object
) -> AsyncIterator[Running]:
    """A, its queue not running by itself: the test runs one pass."""
    async with (
        stub.serving() as resolver,
        start_server(
            tmp_path / "a",
            **{"dns.resolvers": [resolver], "queue.outbound_port": port, **more},
        ) as a,
    ):
        yield a


async def queue_mail(a: Running, numbers: range, nobody: frozenset[int] = frozenset()) -> None:
    """From the null sender (no reports), to dave@c.test, or nobody@c.test for ``nobody``."""
    for n in numbers:
        to = "nobody@c.test" if n in nobody else "dave@c.test"
        outbound = Outbound(f"R{n}", "", (OutboundRecipient(to),), b"")
        await a.store.deliver(make_message(n), [], outbound=outbound)


async def test_one_pass_reuses_a_few_connections(tmp_path: Path) -> None:
    sink = CountingSink()
    stub = DNSStub({"c.test MX": ["10 mx.c.test."], "mx.c.test A": ["127.0.0.4"]})
    async with sink_on(sink, "127.0.0.4") as port, server_a(tmp_path, stub, port) as a:
        refused = frozenset({5, 16, 27})  # one on each connection
        await queue_mail(a, range(30), refused)
        queue = QueueRunner(a.server.settings, a.store)
        assert not await queue.run_once()  # one pass: not a full batch
        assert await a.store.list_queue() == []  # sent, or failed (and no report: <>)
    assert sink.received() == collections.Counter(set(range(30)) - refused)  # each once
    # 30 messages: 3 connections of 10 transactions (MESSAGES_PER_NEW_CONNECTION), not 30.
    assert sink.connections == 3 and sink.per_connection == [9, 9, 9]
    # A refused transaction is reset, and the next message goes on the same connection.
    assert sink.rsets == len(refused)
    # One route (and one MTA-STS lookup) for all of them.
    assert stub.queries.count(("c.test", "MX")) == 1
    assert stub.queries.count(("_mta-sts.c.test", "TXT")) == 1


async def test_a_connection_lost_halfway_sends_the_rest_elsewhere_once(tmp_path: Path) -> None:
    sink = CountingSink(drop_after=4)
    stub = DNSStub({"c.test MX": ["10 mx.c.test."], "mx.c.test A": ["127.0.0.4", "127.0.0.6"]})
    async with (
        sink_on(sink, "127.0.0.4", "127.0.0.6") as port,
        server_a(tmp_path, stub, port, **{"queue.concurrency": 1}) as a,
    ):
        await queue_mail(a, range(12))
        queue = QueueRunner(a.server.settings, a.store)
        await queue.run_once()
        assert await a.store.list_queue() == []
    # All arrived, none twice: the 4 answered before the hang-up were not sent again.
    assert sink.received() == collections.Counter(range(12))
    assert sink.per_connection == [4, 8]


def test_shares_spread_a_destination_over_few_connections() -> None:
    def sizes(count: int, concurrency: int) -> list[int]:
        groups = list(range(count))
        shares = runner._shares(groups, concurrency)  # type: ignore[arg-type]
        assert sorted(g for share in shares for g in share) == groups  # each once
        return [len(share) for share in shares]

    assert sizes(1, 20) == [1]
    assert sizes(10, 20) == [10]
    assert sizes(11, 20) == [6, 5]
    assert sizes(200, 20) == [10] * 20
    assert sizes(200, 1) == [100, 100]  # MAX_MESSAGES_PER_CONNECTION
    assert sizes(1000, 4) == [100] * 10


async def test_a_greylisting_server_gets_the_mail_on_the_retry(tmp_path: Path) -> None:
    sink = CountingSink(greylist=True)
    stub = DNSStub({"c.test MX": ["10 mx.c.test."], "mx.c.test A": ["127.0.0.4"]})
    async with (
        sink_on(sink, "127.0.0.4") as port,
        server_a(tmp_path, stub, port, **{"queue.retry_min": 1, "queue.retry_max": 1}) as a,
    ):
        await queue_mail(a, range(1))
        queue = QueueRunner(a.server.settings, a.store)
        await queue.run_once()
        (waiting,) = await a.store.list_queue()
        (recipient,) = waiting.recipients
        assert (recipient.state, recipient.attempts) == ("queued", 1)
        assert (recipient.last_reply or "").startswith("450 4.2.0 Greylisted")
        assert sink.messages == []
        await asyncio.sleep(1.1)  # retry_min
        await queue.run_once()
        assert await a.store.list_queue() == []
    assert sink.received() == collections.Counter({0: 1})
