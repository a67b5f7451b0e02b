"""A stand-in DNS server on a loopback address for tests: answers from a table of records.

Not courrier's own DNS server (that comes with its issue): a few lines on dnspython's message
classes, enough to give MX, A, AAAA, TXT and TLSA answers, NXDOMAIN for names it does not know
and SERVFAIL for the names it is told to fail. ``secure`` plays a validating resolver: answers
for those names (or all, when True) carry the AD bit (RFC 4035 §3.2.3), as a local DNSSEC
resolver's would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, stub: DNSStub) -> None:
        self.stub = stub
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's UDPTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.stub.answer(dns.message.from_wire(data)).to_wire(), addr)


class DNSStub:
    """``records``: "name TYPE" → rdata in zone-file text, e.g.
    ``{"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]}``."""

    def __init__(
        self,
        records: dict[str, list[str]],
        failing: set[str] | None = None,
        *,
        secure: bool | set[str] = False,
    ) -> None:
        self.records = {
            (key.split()[0].lower().rstrip("."), key.split()[1].upper()): values
            for key, values in records.items()
        }
        self.failing = {name.lower().rstrip(".") for name in failing or ()}
        self.queries: list[tuple[str, str]] = []
        self.secure = secure if isinstance(secure, bool) else {n.lower() for n in secure}

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in self.records:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 300, "IN", rdtype, self.records[(name, rdtype)]
                )
            )
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.flags |= dns.flags.AA
        if self.secure is True or (isinstance(self.secure, set) and name in self.secure):
            response.flags |= dns.flags.AD
        return response

    @contextlib.asynccontextmanager
    async def serving(self, host: str = "127.0.0.1") -> AsyncIterator[str]:
        """Serve on ``host`` (a free UDP port); yields ``host:port`` for ``dns.resolvers``."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(host, 0)
        )
        try:
            port = transport.get_extra_info("sockname")[1]
            yield f"{host}:{port}"
        finally:
            transport.close()
