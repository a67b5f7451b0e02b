"""Lookups are not repeated per message: the MX and addresses of a domain come from the
resolver's cache for their TTL, and a domain without an MTA-STS policy is asked again only
after a while."""

from __future__ import annotations

from pathlib import Path

from tests.queue.helpers import queue_empty, submit, two_servers
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub
from tests.support.server import inbox


async def test_second_message_asks_the_dns_nothing(tmp_path: Path) -> None:
    stub = DNSStub({"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]})
    # B does not check what it receives: its own lookups would mix with A's.
    async with two_servers(tmp_path, stub, {"mailauth.enabled": False}) as (a, b):
        await submit(a, ["carol@b.test"], make_message(31))
        await queue_empty(a)
        first = list(stub.queries)
        assert ("b.test", "MX") in first and ("_mta-sts.b.test", "TXT") in first
        await submit(a, ["carol@b.test"], make_message(32))
        await queue_empty(a)
        assert stub.queries[len(first) :] == []  # MX, A and MTA-STS: all remembered
        assert len(await inbox(b.store, "carol@b.test")) == 2
