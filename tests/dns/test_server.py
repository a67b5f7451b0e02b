"""The DNS server as the world sees it: dig (Debian's bind9-dnsutils) over UDP and TCP against
courrier serving example.org's zone on a loopback port: the records `courrier domain dns`
recommends, NXDOMAIN with the SOA, REFUSED for other names. (Truncation is tested sans-IO in
test_authority: no recommended record outgrows 512 octets.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courrier import provisioning
from tests.dns.serving import serving
from tests.support.server import Running


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Running]:
    async with serving(tmp_path) as running:
        yield running


async def dig(running: Running, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "dig", "@127.0.0.1", "-p", str(running.port("dns")), "+time=2", "+tries=1", *args,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0, out
    return out.decode()


async def short(running: Running, *args: str) -> list[str]:
    return (await dig(running, "+short", *args)).split("\n")[:-1]


async def test_the_recommended_records_are_served(served: Running) -> None:
    assert await short(served, "example.org", "MX") == ["10 mail.example.org."]
    assert await short(served, "example.org", "TXT") == ['"v=spf1 mx -all"']
    assert await short(served, "mail.example.org", "A") == ["192.0.2.25"]
    assert await short(served, "mail.example.org", "AAAA") == ["2001:db8::25"]
    assert await short(served, "_imaps._tcp.example.org", "SRV") == ["0 1 993 mail.example.org."]
    dmarc = await short(served, "_dmarc.example.org", "TXT")
    assert dmarc[0].startswith('"v=DMARC1; p=quarantine')
    keys = await served.store.list_dkim_keys("example.org")
    for key in keys:
        found = "".join(await short(served, f"{key.selector}._domainkey.example.org", "TXT"))
        assert key.public_key in found.replace('" "', "").replace('"', "")
    (soa,) = await short(served, "example.org", "SOA")
    assert soa.startswith("mail.example.org. hostmaster.example.org. ")


async def test_negative_answers_and_refusals(served: Running) -> None:
    out = await dig(served, "nobody.example.org", "A")
    assert "status: NXDOMAIN" in out and "flags: qr aa" in out
    assert "IN\tSOA\tmail.example.org." in out  # for negative caching (RFC 2308)
    out = await dig(served, "mail.example.org", "MX")
    assert "status: NOERROR" in out and "ANSWER: 0" in out
    out = await dig(served, "example.com", "A")
    assert "status: REFUSED" in out


async def test_tcp(served: Running) -> None:
    out = await dig(served, "+tcp", "example.org", "MX")
    assert "10 mail.example.org." in out
    keys = await served.store.list_dkim_keys("example.org")
    rsa = next(k for k in keys if k.algorithm.startswith("rsa"))
    out = await dig(served, "+tcp", f"{rsa.selector}._domainkey.example.org", "TXT")
    assert "v=DKIM1; k=rsa" in out and "(TCP)" in out


async def test_a_new_domain_appears_after_a_refresh(served: Running) -> None:
    assert "status: REFUSED" in await dig(served, "new.test", "MX")
    await provisioning.add_domain(served.store, "new.test")
    assert served.server.dns is not None
    await served.server.dns.refresh()
    assert await short(served, "new.test", "MX") == ["10 mail.example.org."]
