"""DKIM end to end: mail submitted on A arrives in B's mailbox with signatures that an
independent verifier (dkimpy) checks against the keys A tells its operator to publish,
looked up in the DNS."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import dns.resolver

from courrier.dns.records import recommended_records
from courrier.mailauth import keys
from tests.mailauth.helpers import Lookup, verified
from tests.queue.helpers import queue_empty, submit, two_servers
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub
from tests.support.server import inbox


def dns_lookup(resolver: str) -> Lookup:
    """dkimpy's TXT lookup, through the DNS stand-in (blocking: run it in a thread)."""
    host, _, port = resolver.partition(":")
    client = dns.resolver.Resolver(configure=False)
    client.nameservers = [host]
    client.port = int(port)

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = client.resolve(name.decode(), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(r.strings) for r in answer)

    return lookup


async def test_mail_from_a_arrives_at_b_with_valid_signatures(tmp_path: Path) -> None:
    stub = DNSStub({"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]})
    async with two_servers(tmp_path, stub) as (a, b):
        # A's operator publishes what `courrier domain dns example.org` recommends.
        found = await a.store.list_dkim_keys("example.org")
        now = int(time.time())
        state = keys.states(found, now)
        records = recommended_records(
            "example.org",
            "mx.example.org",
            [(keys.record_name(k), keys.record_value(k), state[k.id]) for k in found],
        )
        for record in records:
            if "._domainkey." in record.name:
                line = record.zone_line().split("\tTXT\t", 1)[1]
                stub.records[(record.name, "TXT")] = [line]
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
