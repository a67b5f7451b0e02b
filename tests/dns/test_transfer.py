"""Zone transfers and NOTIFY as the secondaries see them: dig and kdig (AXFR, IXFR, TSIG
right, wrong and missing, by address without keys), NSD as a real secondary pulling the zone and
following a change on NOTIFY, a stand-in secondary that makes us retry a NOTIFY; and, sans-IO,
a zone of over a thousand records split in signed messages that dnspython puts back together."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone
import pytest

from courrier import provisioning
from courrier.dns import server, transfer, tsig
from courrier.dns.answer import Authority
from courrier.dns.transfer import MESSAGE_SIZE, Transfers
from courrier.dns.zone import Zone, rrset
from tests.dns.serving import free_port, serving
from tests.support.server import Running

SECRET = base64.b64encode(b"the secret shared with the secondaries").decode()
KEY = f"xfr-key:hmac-sha256:{SECRET}"
DIG_KEY = f"hmac-sha256:xfr-key:{SECRET}"
ORIGIN = dns.name.from_text("example.org")


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[Running]:
    """Transfers by TSIG key; the listed secondary (nobody listening) gets NOTIFYs unanswered."""
    assert shutil.which("kdig"), "apt-get install knot-dnsutils (.ci/run)"
    quiet = f"127.0.0.1:{free_port('127.0.0.1')}"
    async with serving(tmp_path, secondaries=[quiet], tsig_keys=[KEY]) as running:
        yield running


async def run(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    return out.decode()


async def dig(running: Running, *args: str, tool: str = "dig") -> str:
    port = str(running.port("dns"))
    once = "+tries=1" if tool == "dig" else "+retry=0"
    return await run(tool, "@127.0.0.1", "-p", port, "+time=3", once, *args)


Record = tuple[dns.name.Name, int, dns.rdata.Rdata]


def records(out: str) -> list[Record]:
    """The records dig or kdig printed, TSIG left out, parsed back (their text differs)."""
    found = []
    for line in out.splitlines():
        if line.startswith(";") or not line.strip():
            continue
        name, _ttl, _class, rdtype, data = line.split(None, 4)
        if rdtype != "TSIG":
            rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, data)
            found.append((dns.name.from_text(name), rdata.rdtype, rdata))
    return found


def contents(zone: Zone) -> set[Record]:
    """Every record of ``zone``, signatures included."""
    return {
        (r.name, r.rdtype, rdata)
        for r in [*zone.rrsets.values(), *zone.signatures.values()]
        for rdata in r
    }


def served(running: Running) -> Zone:
    assert running.server.dns is not None
    return running.server.dns.authority.zones[ORIGIN]


async def test_a_signed_axfr_gets_the_whole_zone_from_dig_and_kdig(keyed: Running) -> None:
    zone = served(keyed)
    expected = contents(zone)
    served_types = {"SOA", "NS", "MX", "TXT", "SRV", "CNAME", "A", "AAAA", "TLSA", "CAA"}
    present = {dns.rdatatype.to_text(rdtype) for _, rdtype, _ in expected}
    assert present >= served_types | {"DNSKEY", "NSEC", "RRSIG"}  # a signed zone
    for tool in ("dig", "kdig"):
        out = await dig(keyed, "-y", DIG_KEY, "example.org", "AXFR", tool=tool)
        got = records(out)
        assert got[0][1] == dns.rdatatype.SOA and got[-1] == got[0], out
        assert got[0][2] == zone.soa[0]
        assert len(got) == len(expected) + 1 and set(got) == expected, out
        assert "TSIG" in out and "NOERROR" in out.split("TSIG")[1]  # the answer is signed


async def test_dig_and_kdig_check_every_message_of_a_long_transfer(keyed: Running) -> None:
    assert keyed.server.dns is not None
    keyed.server.dns.authority.replace([big_zone(600)])  # until the next refresh, in a minute
    out = await dig(keyed, "-y", DIG_KEY, "example.org", "AXFR")
    assert "XFR size: 1207 records" in out and "Couldn't verify" not in out, out[-500:]
    messages = int(out.split("(messages ")[1].split(",")[0])
    assert messages > 5
    out = await dig(keyed, "-y", DIG_KEY, "example.org", "AXFR", tool="kdig")
    assert f"({messages} messages, 1207 records)" in out, out[-500:]


async def test_transfers_are_refused_without_the_key(keyed: Running) -> None:
    out = await dig(keyed, "example.org", "AXFR")  # from 127.0.0.1, unsigned
    assert "Transfer failed" in out and not records(out)
    out = await dig(keyed, "example.org", "AXFR", tool="kdig")
    assert "replied with error 'REFUSED'" in out and not records(out), out
    wrong = base64.b64encode(b"not the secret shared with them").decode()
    out = await dig(keyed, "-y", f"hmac-sha256:xfr-key:{wrong}", "example.org", "AXFR")
    assert "BADSIG" in out and "Transfer failed" in out and "SOA" not in out
    out = await dig(keyed, "-y", f"hmac-sha256:other-key:{SECRET}", "example.org", "AXFR")
    assert "BADKEY" in out and "Transfer failed" in out and "SOA" not in out
    # RFC 5936 §4.2: no AXFR over UDP, even signed.
    out = await dig(keyed, "-y", DIG_KEY, "+notcp", "example.org", "AXFR", tool="kdig")
    assert "REFUSED" in out and "(UDP)" in out and not records(out)
    out = await dig(keyed, "-y", DIG_KEY, "example.com", "AXFR", tool="kdig")
    assert "replied with error 'NOTAUTH'" in out, out  # not a zone of ours (RFC 5936 §2.2.1)


async def test_ixfr(keyed: Running) -> None:
    zone = served(keyed)
    out = await dig(keyed, "-y", DIG_KEY, "example.org", f"IXFR={zone.serial}")
    got = records(out)
    assert [rdata for _, _, rdata in got] == [zone.soa[0]], out
    out = await dig(keyed, "-y", DIG_KEY, "example.org", f"IXFR={zone.serial - 1}")
    got = records(out)
    assert got[0] == got[-1] and len(got) == len(contents(zone)) + 1, out
    assert set(got) == contents(zone)
    # Over UDP, an IXFR that would need more is told our SOA (come back over TCP).
    out = await dig(keyed, "-y", DIG_KEY, "+notcp", "example.org", f"IXFR={zone.serial - 1}")
    assert [r[2] for r in records(out)] == [zone.soa[0]] and "(UDP)" in out, out


async def test_signed_queries_get_signed_answers(keyed: Running) -> None:
    """A secondary's SOA check is signed: the answer is too (dig verifies it, RFC 8945 §5.3)."""
    out = await dig(keyed, "-y", DIG_KEY, "example.org", "SOA")
    assert "status: NOERROR" in out and "TSIG PSEUDOSECTION" in out, out
    assert "Couldn't verify" not in out
    out = await dig(keyed, "-y", f"hmac-sha256:other-key:{SECRET}", "example.org", "SOA")
    assert "status: NOTAUTH" in out and "BADKEY" in out, out
    # NOTIFY to us: we are the primary (RFC 1996 §3.12: not implemented).
    out = await dig(keyed, "+opcode=notify", "+norecurse", "example.org", "SOA")
    assert "status: NOTIMP" in out, out


async def test_without_keys_the_listed_addresses_may_transfer(tmp_path: Path) -> None:
    async with serving(tmp_path, secondaries=["127.0.0.2:9"]) as running:
        listed = await dig(running, "-b", "127.0.0.2", "example.org", "AXFR")
        assert set(records(listed)) == contents(served(running)), listed
        unlisted = await dig(running, "-b", "127.0.0.1", "example.org", "AXFR")
        assert "Transfer failed" in unlisted and not records(unlisted)


async def test_nsd_follows_the_zone_on_notify(tmp_path: Path) -> None:
    nsd = shutil.which("nsd") or shutil.which("nsd", path="/usr/sbin")
    assert nsd, "nsd is needed: apt-get install nsd (.ci/run)"
    address = "127.0.0.7"
    port = free_port(address)
    async with serving(tmp_path, secondaries=[f"{address}:{port}"], tsig_keys=[KEY]) as running:
        config = nsd_config(tmp_path / "nsd", address, port, running.port("dns"))
        process = await asyncio.create_subprocess_exec(
            nsd, "-d", "-c", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            secondary = Secondary(address, port, tmp_path / "nsd" / "nsd.log")
            await secondary.wait_for(served(running).serial)
            await provisioning.rotate_dkim_keys(running.store, "example.org", delay=0)
            assert running.server.dns is not None
            await running.server.dns.refresh()
            zone = served(running)
            await secondary.wait_for(zone.serial)  # NSD's own refresh is an hour away
            for (name, rdtype), data in zone.rrsets.items():
                if rdtype == dns.rdatatype.TXT and "_domainkey" in name.to_text():
                    out = await secondary.dig(name.to_text(), "TXT")
                    assert data[0].to_text()[:60] in out.replace('" "', ""), out
        finally:
            process.terminate()
            await process.wait()


def nsd_config(directory: Path, address: str, port: int, primary_port: int) -> Path:
    directory.mkdir()
    config = directory / "nsd.conf"
    config.write_text(
        f"""server:
    ip-address: {address}@{port}
    port: {port}
    username: ""
    chroot: ""
    zonesdir: "{directory}"
    database: ""
    zonelistfile: "{directory}/zone.list"
    xfrdfile: "{directory}/xfrd.state"
    xfrdir: "{directory}"
    pidfile: "{directory}/nsd.pid"
    logfile: "{directory}/nsd.log"
    verbosity: 2
    server-count: 1
remote-control:
    control-enable: no
key:
    name: "xfr-key"
    algorithm: hmac-sha256
    secret: "{SECRET}"
zone:
    name: "example.org"
    zonefile: "example.org.zone"
    request-xfr: 127.0.0.1@{primary_port} xfr-key
    allow-notify: 127.0.0.0/8 xfr-key
"""
    )
    return config


class Secondary:
    def __init__(self, address: str, port: int, log: Path) -> None:
        self.address, self.port, self.log = address, port, log

    async def dig(self, *args: str) -> str:
        target = ("@" + self.address, "-p", str(self.port))
        return await run("dig", *target, "+time=1", "+tries=1", "+short", *args)

    async def wait_for(self, serial: int, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        out = ""
        while time.monotonic() < deadline:
            out = await self.dig("example.org", "SOA")
            if f" {serial} " in out:
                return
            await asyncio.sleep(0.2)
        log = self.log.read_text() if self.log.exists() else "(no log)"
        raise AssertionError(f"NSD serves {out!r}, not serial {serial}; its log:\n{log}")


class Listener(asyncio.DatagramProtocol):
    """A stand-in secondary that answers the second NOTIFY of each change only."""

    def __init__(self) -> None:
        self.received: list[dns.message.Message] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's UDPTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        keys = tsig.keyring([("xfr-key", "hmac-sha256", base64.b64decode(SECRET))])
        query = dns.message.from_wire(data, keyring=keys)
        self.received.append(query)
        if len(self.received) % 2 == 0:
            assert self.transport is not None
            self.transport.sendto(dns.message.make_response(query).to_wire(), addr)


async def test_a_notify_is_sent_again_until_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "NOTIFY_WAITS", (0.5, 1.0, 2.0))
    port = free_port("127.0.0.1")
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(
        Listener, local_addr=("127.0.0.1", port)
    )
    try:
        secondaries = [f"127.0.0.1:{port}"]
        async with serving(tmp_path, secondaries=secondaries, tsig_keys=[KEY]) as running:
            await asyncio.sleep(1.0)  # unanswered, the first is sent again after 0.5 s
            first, again = listener.received
            assert first.id == again.id and first.opcode() == dns.opcode.NOTIFY
            assert first.flags & dns.flags.AA and first.had_tsig  # verified by the listener
            assert first.question[0].name == ORIGIN
            assert first.question[0].rdtype == dns.rdatatype.SOA
            assert first.answer[0][0].serial == served(running).serial  # RFC 1996 §3.7's hint
            await asyncio.sleep(2.0)
            assert len(listener.received) == 2  # answered: no more
    finally:
        transport.close()


# Sans-IO: the split of a large zone, and the BADTIME answer.

SOA = "ns.example.org. hostmaster.example.org. 2026112301 3600 900 1209600 300"
SIGNATURE = base64.b64encode(bytes(64)).decode()


def big_zone(count: int) -> Zone:
    sets = [
        rrset("example.org.", 3600, "SOA", SOA),
        rrset("example.org.", 3600, "NS", "ns.example.org."),
        rrset("ns.example.org.", 3600, "A", "192.0.2.53"),
        rrset("many.example.org.", 300, "TXT", *(f'"{"y" * 40} {i}"' for i in range(count))),
    ]
    sets += [rrset(f"t{i}.example.org.", 300, "TXT", f'"{"x" * 200} {i}"') for i in range(count)]
    signatures = [
        rrset(f"{s.name}", s.ttl, "RRSIG", f"{dns.rdatatype.to_text(s.rdtype)} 13 2 {s.ttl} "
              f"20270101000000 20260101000000 4242 example.org. {SIGNATURE}")
        for s in sets[:3]
    ]  # fmt: skip
    return Zone(ORIGIN, sets, signatures)


def signed_query(qtype: str, key: dns.tsig.Key) -> dns.message.Message:
    query = dns.message.make_query("example.org", qtype)
    query.use_tsig(key)
    query.to_wire()  # signs it: query.mac
    return query


def test_a_large_zone_is_split_in_signed_messages_dnspython_reassembles() -> None:
    zone = big_zone(600)
    keys = tsig.keyring([("xfr-key", "hmac-sha256", base64.b64decode(SECRET))])
    key = keys[dns.name.from_text("xfr-key")]
    query = signed_query("AXFR", key)
    wires = Transfers([], keys).respond(Authority([zone]), query.to_wire(), "192.0.2.1", tcp=True)
    assert wires is not None and len(wires) > 5
    assert all(len(w) <= MESSAGE_SIZE + 512 for w in wires)
    messages, context = [], None
    for wire in wires:  # the reading side of dns.query.inbound_xfr: each MAC chained to the last
        message = dns.message.from_wire(
            wire, keyring=key, request_mac=query.mac, xfr=True, tsig_ctx=context, multi=True
        )
        assert message.had_tsig and message.rcode() == dns.rcode.NOERROR
        context = message.tsig_ctx
        messages.append(message)
    received = dns.zone.Zone(ORIGIN, relativize=False)
    with dns.xfr.Inbound(received, dns.rdatatype.AXFR) as inbound:
        done = [inbound.process_message(m) for m in messages]
    assert done == [False] * (len(messages) - 1) + [True]  # the SOA first and last
    got = {
        (name, rdataset.rdtype, rdataset.covers, rdata.to_text())
        for name, rdataset in received.iterate_rdatasets()
        for rdata in rdataset
    }
    want = {
        (r.name, r.rdtype, r.covers, rdata.to_text())
        for r in [*zone.rrsets.values(), *zone.signatures.values()]
        for rdata in r
    }
    assert got == want and len(want) == 2 * 600 + 3 + 3
    # A message changed on the way breaks the chain of MACs.
    tampered = wires[2].replace(b"xxx", b"XXX", 1)
    assert tampered != wires[2]
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(
            tampered, keyring=key, xfr=True, tsig_ctx=messages[1].tsig_ctx, multi=True
        )


def test_a_signature_out_of_its_time_gets_a_signed_badtime() -> None:
    """RFC 8945 §5.2.3: NOTAUTH/BADTIME, signed, the client's Time Signed echoed, ours in
    Other Data."""
    keys = tsig.keyring([("xfr-key", "hmac-sha256", base64.b64decode(SECRET))])
    key = keys[dns.name.from_text("xfr-key")]
    query = dns.message.make_query("example.org", "AXFR")
    query.use_tsig(key)
    assert query.tsig is not None
    an_hour_ago = int(time.time()) - 3600
    unsigned = query.to_wire()[: -len(_record(query.tsig))]
    unsigned = unsigned[:10] + bytes(2) + unsigned[12:]  # no additional record yet
    stale, _ = dns.tsig.sign(unsigned, key, query.tsig[0], an_hour_ago)
    wire = unsigned[:10] + (1).to_bytes(2, "big") + unsigned[12:]
    wire += _record(dns.rrset.from_rdata(key.name, 0, stale))

    (answer,) = Transfers([], keys).respond(Authority([big_zone(1)]), wire, "192.0.2.1", tcp=True)
    response = dns.message.from_wire(answer, keyring=False)
    assert response.rcode() == dns.rcode.NOTAUTH and response.tsig is not None
    rdata = response.tsig[0]
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    assert rdata.error == dns.rcode.BADTIME and rdata.time_signed == an_hour_ago
    assert abs(int.from_bytes(rdata.other, "big") - time.time()) < 5
    body = answer[: -len(_record(response.tsig))]
    body = body[:10] + (int.from_bytes(body[10:12], "big") - 1).to_bytes(2, "big") + body[12:]
    expected, _ = dns.tsig.sign(body, key, rdata.replace(mac=b""), an_hour_ago, stale.mac)
    assert rdata.mac == expected.mac  # signed with the key, over the request's MAC


def _record(rrset: dns.rrset.RRset) -> bytes:
    buffer = io.BytesIO()
    rrset.to_wire(buffer)
    return buffer.getvalue()


def test_the_authority_answers_what_is_neither_signed_nor_a_transfer() -> None:
    keys = tsig.keyring([("xfr-key", "hmac-sha256", base64.b64decode(SECRET))])
    key = keys[dns.name.from_text("xfr-key")]
    transfers, authority = Transfers([], keys), Authority([big_zone(1)])
    for edns in (-1, 0):
        plain = dns.message.make_query("example.org", "NS", use_edns=edns)
        assert transfers.respond(authority, plain.to_wire(), "192.0.2.1", tcp=False) is None
        signed = dns.message.make_query("example.org", "NS", use_edns=edns)
        signed.use_tsig(key)
        wire = signed.to_wire()
        (answer,) = transfers.respond(authority, wire, "192.0.2.1", tcp=False) or []
        response = dns.message.from_wire(answer, keyring=key, request_mac=signed.mac)
        assert response.had_tsig and response.answer[0].rdtype == dns.rdatatype.NS
        axfr = dns.message.make_query("example.org", "AXFR", use_edns=edns)
        (refused,) = transfers.respond(authority, axfr.to_wire(), "192.0.2.1", tcp=True) or []
        assert dns.message.from_wire(refused).rcode() == dns.rcode.REFUSED  # no key


def test_notify_and_its_answer() -> None:
    zone = big_zone(1)
    query = transfer.notify(zone, None)
    wire = query.to_wire()
    parsed = dns.message.from_wire(wire)
    assert parsed.opcode() == dns.opcode.NOTIFY and parsed.flags & dns.flags.AA
    assert not parsed.flags & dns.flags.RD
    reply = dns.message.make_response(parsed)
    assert transfer.acknowledged(query, reply.to_wire()) == dns.rcode.NOERROR
    reply.id ^= 1
    assert transfer.acknowledged(query, reply.to_wire()) is None
    assert transfer.acknowledged(query, wire) is None  # the query itself is no answer
