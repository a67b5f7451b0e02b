"""A stand-in DNS server for the SPF tests: serves ``zonedata`` in the form of the RFC 7208 test
suite (pyspf's test/rfc7208-tests.yml) on 127.0.0.1, over UDP and TCP on one port.

A sibling of :mod:`tests.support.dnsstub`, made for what that one has not: the suite's records
(TXT and SPF records of several strings, bytes beyond ASCII, MX with an empty exchange), answers
that never come (``TIMEOUT``), CNAME chains followed as a recursive resolver would, answers too
large for UDP (truncated, then over TCP) and answers late on purpose (``delay``). It runs in
threads of its own, so one server can outlive the event loop of any one test.

``zonedata`` maps a name to a list of entries, each ``{TYPE: value}`` or the string ``TIMEOUT``
— read the way pyspf's own test driver (test/testspf.py) reads them:

- ``{TXT: "text"}`` or ``{TXT: ["several", "strings"]}``, same for ``SPF``; ``NONE`` as the
  value says "none of these". A name with SPF records and no TXT entry also has TXT records
  with the same strings (the suite publishes ``v=spf1`` records once, as type SPF).
- ``{MX: [preference, exchange]}``, ``{A: address}``, ``{AAAA: address}``, ``{PTR: name}``,
  ``{CNAME: name}``; any other type in zone-file syntax (``{SRV: "0 1 993 mx.example."}``);
  a value ``TIMEOUT`` makes queries for that type time out.
- ``TIMEOUT`` among the entries: a query for a type none of whose records came before it times
  out; the others are answered with the records before it.
- a name not in the data does not exist (NXDOMAIN; NODATA for an empty non-terminal); a name
  in it without records of the type asked gives NODATA.
"""

from __future__ import annotations

import contextlib
import socketserver
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SPF
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset

TIMEOUT: Final = "TIMEOUT"
#: A CNAME chain longer than this is answered SERVFAIL, as a loop is.
MAX_CHAIN: Final = 16

IN = dns.rdataclass.IN
#: One entry of a name: (type, record), or (type, TIMEOUT), or TIMEOUT.
Entry = tuple[str, dns.rdata.Rdata | str] | str


def _rdata(rtype: str, value: Any) -> dns.rdata.Rdata | None:
    """The record for one ``{TYPE: value}``; None for an explicit NONE or a TXT of no strings
    (which DNS cannot carry: RFC 1035 §3.3.14, one or more strings)."""
    if rtype in ("TXT", "SPF"):
        strings = [value] if isinstance(value, str) else list(value)
        if strings in (["NONE"], []):
            return None
        # The suite writes bytes beyond ASCII as YAML escapes ("\xEF"): UTF-8 on the wire,
        # as pyspf's driver sends them.
        data = [s.encode() for s in strings]
        if rtype == "TXT":
            return dns.rdtypes.ANY.TXT.TXT(IN, dns.rdatatype.TXT, data)
        return dns.rdtypes.ANY.SPF.SPF(IN, dns.rdatatype.SPF, data)
    if rtype == "A":
        return dns.rdtypes.IN.A.A(IN, dns.rdatatype.A, value)
    if rtype == "AAAA":
        return dns.rdtypes.IN.AAAA.AAAA(IN, dns.rdatatype.AAAA, value)
    if rtype == "MX":
        preference, exchange = value
        return dns.rdtypes.ANY.MX.MX(IN, dns.rdatatype.MX, int(preference), _name(exchange))
    if rtype == "PTR":
        return dns.rdtypes.ANY.PTR.PTR(IN, dns.rdatatype.PTR, _name(value))
    if rtype == "CNAME":
        return dns.rdtypes.ANY.CNAME.CNAME(IN, dns.rdatatype.CNAME, _name(value))
    if isinstance(value, str):  # any other type, in zone-file syntax with absolute names
        return dns.rdata.from_text(IN, rtype, value, origin=dns.name.root, relativize=False)
    raise ValueError(f"unknown record type in zonedata: {rtype}")


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text) if text else dns.name.root


def _key(name: dns.name.Name) -> str:
    """A name as the zone is keyed: its labels as they are on the wire (no zone-file escapes:
    the suite has names with spaces), lower case, no final dot."""
    return b".".join(name.relativize(dns.name.root).labels).decode("latin-1").lower()


def parse_zonedata(zonedata: Mapping[str, Sequence[Any]]) -> dict[str, list[Entry]]:
    """name (lower case, no final dot) → its entries, in order."""
    zone: dict[str, list[Entry]] = {}
    for name, records in zonedata.items():
        entries: list[Entry] = []
        as_txt: list[Entry] = []
        has_txt = False
        for record in records:
            if record == TIMEOUT:
                entries.append(TIMEOUT)
                continue
            for rtype, value in record.items():
                has_txt = has_txt or rtype == "TXT"
                if value == TIMEOUT:
                    entries.append((rtype, TIMEOUT))
                    continue
                rdata = _rdata(rtype, value)
                if rdata is None:
                    continue
                entries.append((rtype, rdata))
                if rtype == "SPF":
                    as_txt.append(("TXT", _rdata("TXT", value)))  # type: ignore[arg-type]
        zone[_key(_name(name))] = entries + ([] if has_txt else as_txt)
    return zone


class ZoneServer:
    """The stand-in: ``with ZoneServer(zonedata).serving() as address`` gives ``host:port``
    for ``dns.resolvers``. ``failing``: names answered SERVFAIL; ``delay``: seconds before each
    answer; ``signed``: zones whose answers say they were DNSSEC-validated (the AD bit), as a
    validating resolver would."""

    def __init__(
        self,
        zonedata: Mapping[str, Sequence[Any]],
        *,
        failing: Sequence[str] = (),
        delay: float = 0.0,
        signed: Sequence[str] = (),
    ) -> None:
        self.zone = parse_zonedata(zonedata)
        self.signed = tuple(_key(_name(name)) for name in signed)
        self.failing = {_key(_name(name)) for name in failing}
        self.delay = delay
        self.queries: list[tuple[str, str]] = []
        self.tcp_queries = 0
        self.address = ""  # host:port, once started
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    # --- answers

    def _records(self, name: str, rdtype: str) -> list[dns.rdata.Rdata] | str | None:
        """The records of ``rdtype`` at ``name``; TIMEOUT; None if the name does not exist."""
        entries = self.zone.get(name)
        if entries is None:
            suffix = "." + name
            return [] if any(known.endswith(suffix) for known in self.zone) else None
        found: list[dns.rdata.Rdata] = []
        for entry in entries:
            if entry == TIMEOUT:
                return found or TIMEOUT
            rtype, rdata = entry
            if rtype == rdtype:
                if isinstance(rdata, str):
                    return TIMEOUT
                found.append(rdata)
        return found

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to ``query``; None when it is to time out."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        rdtype = dns.rdatatype.to_text(question.rdtype)
        qname = question.name
        self.queries.append((_key(qname), rdtype))
        if any(_key(qname) == z or _key(qname).endswith("." + z) for z in self.signed):
            response.flags |= dns.flags.AD
        seen: set[str] = set()
        while True:
            name = _key(qname)
            if name in self.failing or name in seen or len(seen) > MAX_CHAIN:
                response.answer.clear()
                response.set_rcode(dns.rcode.SERVFAIL)  # failing, or a CNAME loop
                return response
            seen.add(name)
            records = self._records(name, rdtype)
            if records == TIMEOUT:
                return None
            if records is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                return response
            assert not isinstance(records, str)
            if records:
                response.answer.append(dns.rrset.from_rdata_list(qname, 300, records))
                return response
            cnames = [] if rdtype == "CNAME" else self._records(name, "CNAME")
            if cnames == TIMEOUT:
                return None
            if not cnames:
                return response  # NODATA
            assert isinstance(cnames, list)
            # A recursive resolver follows the chain (RFC 1034 §3.6.2, §4.3.2).
            response.answer.append(dns.rrset.from_rdata_list(qname, 300, cnames[:1]))
            qname = cnames[0].target  # type: ignore[attr-defined]

    def wire_answer(self, data: bytes, *, udp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        response = self.answer(query)
        if response is None:
            return None
        if self.delay:
            time.sleep(self.delay)
        if not udp:  # (not the EDNS buffer size: that is for UDP)
            self.tcp_queries += 1
            return response.to_wire(max_size=65535)
        size = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return response.to_wire(max_size=size)
        except dns.exception.TooBig:
            # RFC 1035 §4.2.1: what does not fit is truncated; the client asks again over TCP.
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()

    # --- serving

    @contextlib.contextmanager
    def serving(self, host: str = "127.0.0.1") -> Iterator[str]:
        address = self.start(host)
        try:
            yield address
        finally:
            self.close()

    def start(self, host: str = "127.0.0.1") -> str:
        """Serve UDP and TCP on one free port of ``host``; returns ``host:port``."""
        zone = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = zone.wire_answer(data, udp=True)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                stream = self.request.makefile("rb")
                while len(prefix := stream.read(2)) == 2:
                    data = stream.read(struct.unpack("!H", prefix)[0])
                    reply = zone.wire_answer(data, udp=False)
                    if reply is None:
                        return
                    self.request.sendall(struct.pack("!H", len(reply)) + reply)

        for _ in range(20):
            udp = socketserver.ThreadingUDPServer((host, 0), UDPHandler)
            port = udp.server_address[1]
            try:
                tcp = socketserver.ThreadingTCPServer((host, port), TCPHandler)
            except OSError:  # that port is taken for TCP: another one
                udp.server_close()
                continue
            break
        else:
            raise OSError("no port free for both UDP and TCP")
        for server in (udp, tcp):
            server.daemon_threads = True
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        self.address = f"{host}:{port}"
        return self.address

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join()
        self._servers.clear()
        self._threads.clear()
