"""Response rate limiting for the UDP listener, so that the server cannot be used to flood a
victim with answers to queries forged in its name (an amplifier).

Per source network (/24 for IPv4, /56 for IPv6, as BIND's RRL groups them), a token bucket of
``rate`` responses per second with one second of burst. Over the limit, every ``slip``-th
query still gets a short truncated answer (TC set, no records) so that a real client behind
that network retries over TCP, which cannot be forged; the others get nothing. TCP is never
limited here. The clock is given, so this is tested without waiting.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

#: Sources remembered at most; the least recently seen are forgotten first.
MAX_SOURCES = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    dropped: int = 0


class RateLimiter:
    ALLOW, SLIP, DROP = "allow", "slip", "drop"

    def __init__(self, rate: float, slip: int = 2) -> None:
        self.rate = rate
        self.slip = slip
        self._buckets: dict[str, _Bucket] = {}

    def check(self, source: str, now: float) -> str:
        """What to do with a query from ``source`` at ``now`` (seconds)."""
        if self.rate <= 0:
            return self.ALLOW
        key = _network(source)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            if len(self._buckets) >= MAX_SOURCES:
                del self._buckets[next(iter(self._buckets))]
            bucket = _Bucket(self.rate, now)
        self._buckets[key] = bucket  # most recently seen last
        bucket.tokens = min(self.rate, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return self.ALLOW
        bucket.dropped += 1
        if self.slip and bucket.dropped % self.slip == 0:
            return self.SLIP
        return self.DROP


def _network(source: str) -> str:
    """The /24 or /56 ``source`` is in, as text; an IPv4 address's by cutting its string (the
    listener gives dotted quads), which is what every query pays for."""
    if source.count(".") == 3 and ":" not in source:
        return source[: source.rindex(".")] + ".0/24"
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return source
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 client of a dual-stack socket
    prefix = 24 if address.version == 4 else 56
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
