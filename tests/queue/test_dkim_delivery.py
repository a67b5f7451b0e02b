"""DKIM end to end: mail submitted on A arrives in B's mailbox with signatures that an
independent verifier (dkimpy) checks against the keys A tells its operator to publish,
looked up in the DNS."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.mailauth.helpers import dns_lookup, publish_dkim, verified
from tests.queue.helpers import queue_empty, submit, two_servers
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub
from tests.support.server import inbox


async def test_mail_from_a_arrives_at_b_with_valid_signatures(tmp_path: Path) -> None:
    stub = DNSStub({"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]})
    async with two_servers(tmp_path, stub) as (a, b):
        await publish_dkim(a, stub)
        content = make_message(7, body="Signed on A.\r\n")  # From: alice@example.org
        await submit(a, ["carol@b.test"], content)
        await queue_empty(a)
        (received,) = await inbox(b.store, "carol@b.test")
        lookup = dns_lookup(a.server.settings.dns.resolvers[0])
        assert await asyncio.to_thread(verified, received, lookup) == [True, True]
        head = received.split(b"\r\n\r\n")[0]
        assert b"a=rsa-sha256" in head and b"a=ed25519-sha256" in head
        assert b"d=example.org" in head
        # The body changed on the way: both fail.
        altered = received.replace(b"Signed on A.", b"Signed on B.")
        assert await asyncio.to_thread(verified, altered, lookup) == [False, False]
