"""Records an admin adds to a zone we serve: refused with the reason when they would break the
zone or mail (a CNAME beside other data, a bad TXT, an MX at an address or a CNAME, a broken
SPF or DMARC), kept in the store and served otherwise; one of a kind replaces ours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courrier import provisioning
from courrier.config import Settings
from courrier.dns.records import Record, merge, txt_kind
from courrier.provisioning import InvalidInput
from courrier.store import Store
from tests.dns.serving import serving
from tests.support.server import Running

from .test_server import short


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Running]:
    async with serving(tmp_path, host_addresses=["192.0.2.25"]) as running:
        yield running


async def add(running: Running, name: str, type_: str, value: str, ttl: int = 300) -> Record:
    settings: Settings = running.server.settings
    store: Store = running.store
    return await provisioning.add_dns_record(
        store, settings, "example.org", name, type_, value, ttl
    )


@pytest.mark.parametrize(
    ("name", "type_", "value", "reason"),
    [
        ("autoconfig", "TXT", '"x"', "is a CNAME; no other record"),
        ("@", "CNAME", "elsewhere.example.net.", "apex"),
        ("_imaps._tcp", "CNAME", "x.example.net.", "must be alone"),
        ("@", "MX", "20 192.0.2.7", "not the address 192.0.2.7"),
        ("@", "MX", "20 [192.0.2.7].", "not a host name"),
        ("@", "MX", "20 autoconfig.example.org.", "which is a CNAME"),
        ("_sip._tcp", "SRV", "0 0 5060 2001:db8::1", "not the address"),
        ("@", "TXT", '"unbalanced', "not a valid TXT"),
        ("@", "TXT", '"' + "a" * 256 + '"', "not a valid TXT"),
        ("@", "TXT", '"v=spf1 mx include -all"', "SPF record is not valid"),
        ("@", "TXT", '"v=spf1 ip4:300.1.1.1 -all"', "SPF record is not valid"),
        ("_dmarc", "TXT", '"v=DMARC1; p=maybe"', "DMARC record is not valid"),
        ("@", "TXT", '"v=DMARC1; p=none"', "goes at _dmarc"),
        ("www", "A", "192.0.2.300", "not a valid A"),
        ("www.example.net.", "A", "192.0.2.3", "outside the zone"),
        ("@", "SOA", "a. b. 1 2 3 4 5", "cannot be added by hand"),
        ("@", "NS", "ns.example.net.", "server's own"),
        ("www", "A", "192.0.2.3", None),  # the control: this one is fine
    ],
)
async def test_bad_records_are_refused_with_the_reason(
    served: Running, name: str, type_: str, value: str, reason: str | None
) -> None:
    if reason is None:
        record = await add(served, name, type_, value)
        assert record.name == "www.example.org"
        return
    with pytest.raises(InvalidInput, match=reason):
        await add(served, name, type_, value)
    assert await served.store.list_dns_records("example.org") == []


async def test_bad_ttl_and_duplicates_are_refused(served: Running) -> None:
    with pytest.raises(InvalidInput, match="TTL"):
        await add(served, "www", "A", "192.0.2.3", ttl=2**31)
    await add(served, "www", "A", "192.0.2.3")
    with pytest.raises(InvalidInput, match="already in the zone"):
        await add(served, "WWW.example.org.", "A", "192.0.2.3")
    with pytest.raises(InvalidInput, match="already in the zone"):
        await add(served, "@", "TXT", '"v=spf1 mx -all"')  # ours, same value


async def test_added_records_are_served_and_replace_ours_of_a_kind(served: Running) -> None:
    await add(served, "@", "MX", "20 backup.example.net.")
    await add(served, "@", "TXT", '"v=spf1 mx include:_spf.example.net -all"')
    await add(served, "@", "TXT", '"google-site-verification=abc"')
    await add(served, "www", "CNAME", "mail")
    await add(served, "autoconfig", "CNAME", "config.example.net.")
    txt = await add(served, "long", "TXT", '"' + "a" * 255 + '" "' + "b" * 100 + '"')
    assert txt.value == "a" * 255 + "b" * 100  # strings joined, split again when served
    assert served.server.dns is not None
    await served.server.dns.refresh()
    assert sorted(await short(served, "example.org", "MX")) == [
        "10 mail.example.org.",
        "20 backup.example.net.",
    ]
    assert sorted(await short(served, "example.org", "TXT")) == [
        '"google-site-verification=abc"',
        '"v=spf1 mx include:_spf.example.net -all"',  # ours is gone: one SPF record
    ]
    assert await short(served, "www.example.org", "A") == ["mail.example.org.", "192.0.2.25"]
    assert await short(served, "autoconfig.example.org", "CNAME") == ["config.example.net."]
    assert await short(served, "long.example.org", "TXT") == [f'"{"a" * 255}" "{"b" * 100}"']
    # And `courrier domain dns` tells the same.
    records = await provisioning.domain_records(served.store, served.server.settings, "example.org")
    spf = [r for r in records if r.type == "TXT" and txt_kind(r.value) == "spf1"]
    assert [r.value for r in spf] == ["v=spf1 mx include:_spf.example.net -all"]


async def test_removed_records_leave_the_zone(served: Running) -> None:
    await add(served, "www", "A", "192.0.2.3")
    (kept,) = await served.store.list_dns_records("example.org")
    await provisioning.remove_dns_record(served.store, "example.org", kept.id)
    assert await served.store.list_dns_records("example.org") == []
    with pytest.raises(InvalidInput, match="no record"):
        await provisioning.remove_dns_record(served.store, "example.org", kept.id)
    # Removing the domain takes its records, keys and serial with it.
    await add(served, "www", "A", "192.0.2.3")
    await provisioning.remove_domain(served.store, "example.org", force=True)
    assert await served.store.list_dns_records() == []


def test_merge_replaces_only_records_of_the_same_kind() -> None:
    ours = [
        Record("a.test", "TXT", "v=spf1 mx -all", ""),
        Record("a.test", "MX", "10 mx.a.test.", ""),
        Record("x.a.test", "CNAME", "mx.a.test.", ""),
    ]
    added = [
        Record("a.test", "TXT", "v=spf1 -all", ""),
        Record("a.test", "MX", "20 mx2.a.test.", ""),
        Record("A.test", "TXT", "hello", ""),
        Record("x.a.test", "CNAME", "y.a.test.", ""),
    ]
    merged = merge(ours, added)
    assert [r.value for r in merged] == [
        "10 mx.a.test.",
        "v=spf1 -all",
        "20 mx2.a.test.",
        "hello",
        "y.a.test.",
    ]
    assert txt_kind("v=DMARC1; p=none") == "DMARC1" and txt_kind("hello=v") == ""
