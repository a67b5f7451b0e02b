"""Response rate limiting (the server must not be an amplifier): per source network, the rate
holds with a one-second burst; over it, every second query gets a truncated answer and the
rest none; other networks are not affected; time refills the bucket. And over real UDP: a
burst from one client gets fewer full answers than it asked for."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from pathlib import Path

import dns.flags
import dns.message
import dns.rrset

from courrier.dns.ratelimit import RateLimiter
from tests.dns.test_authority import AUTHORITY
from tests.support.server import start_server


def test_the_rate_holds_per_network() -> None:
    limiter = RateLimiter(rate=5, slip=2)
    burst = [limiter.check("192.0.2.1", 100.0) for _ in range(11)]
    assert burst[:5] == ["allow"] * 5
    assert burst[5:] == ["drop", "slip", "drop", "slip", "drop", "slip"]
    # The same /24 shares the bucket; another network has its own.
    assert limiter.check("192.0.2.200", 100.0) == "drop"
    assert limiter.check("198.51.100.1", 100.0) == "allow"
    assert limiter.check("2001:db8:0:1::1", 100.0) == "allow"
    # An IPv4 client seen on a dual-stack socket is in its own /24, not in one /56 of all.
    assert limiter.check("::ffff:192.0.2.9", 100.0) != "allow"
    assert limiter.check("::ffff:203.0.113.9", 100.0) == "allow"
    # IPv6 networks are /56: a neighbour in the same /56 shares, the next /56 does not.
    for _ in range(5):
        limiter.check("2001:db8:0:100::1", 100.0)
    assert limiter.check("2001:db8:0:1ff::2", 100.0) != "allow"
    assert limiter.check("2001:db8:0:200::1", 100.0) == "allow"
    # Half a second later, half the rate is back.
    later = Counter(limiter.check("192.0.2.1", 100.5) for _ in range(5))
    assert later["allow"] == 2
    assert RateLimiter(rate=0).check("192.0.2.1", 0) == "allow"  # no limit


def test_a_slip_answer_is_truncated_and_empty() -> None:
    query = dns.message.make_query("example.org", "MX")
    cut = dns.message.from_wire(AUTHORITY.respond(query.to_wire(), truncate=True) or b"")
    assert cut.flags & dns.flags.TC and cut.answer == [] and cut.id == query.id
    assert cut.question == query.question


async def test_a_udp_burst_is_limited(tmp_path: Path) -> None:
    async with start_server(
        tmp_path / "data", **{"listeners.dns.enabled": True, "dns.rate_limit": 10}
    ) as running:
        port = running.port("dns")
        query = dns.message.make_query("example.org", "MX").to_wire()

        def burst() -> Counter[str]:
            seen: Counter[str] = Counter()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.3)
                for _ in range(40):
                    s.sendto(query, ("127.0.0.1", port))
                for _ in range(40):
                    try:
                        answer = dns.message.from_wire(s.recv(2048))
                    except TimeoutError:
                        break
                    seen["truncated" if answer.flags & dns.flags.TC else "full"] += 1
            return seen

        seen = await asyncio.to_thread(burst)
        assert 10 <= seen["full"] <= 12  # the burst allowance, and what refilled meanwhile
        assert seen["truncated"] >= 10  # every second one of the rest
        assert seen["full"] + seen["truncated"] < 40  # the others got nothing
