"""Recipient resolution against a real store: accounts, aliases, +tags, catch-alls, forwards."""

from __future__ import annotations

from courrier.delivery.recipients import resolve
from courrier.store import Store


async def _setup(store: Store) -> None:
    for domain in ("example.org", "other.example"):
        await store.add_domain(domain)
    for address in ("bob@example.org", "carol@example.org", "dan@other.example"):
        await store.add_account(address, "h")
    await store.add_alias("team@example.org", ["bob@example.org", "carol@example.org"])
    await store.add_alias("all@example.org", ["team@example.org", "dan@other.example"])
    await store.add_alias("out@example.org", ["someone@elsewhere.net", "bob@example.org"])
    await store.add_alias("loop1@example.org", ["loop2@example.org"])
    await store.add_alias("loop2@example.org", ["loop1@example.org", "carol@example.org"])
    await store.add_alias("@other.example", ["dan@other.example"])


async def _who(store: Store, address: str) -> tuple[list[str], list[str]] | None:
    found = await resolve(store, address, separator="+")
    if not found:
        return None
    return sorted(a.address for a in found.accounts), found.forwards


async def test_resolution_rules(store: Store) -> None:
    await _setup(store)
    assert await _who(store, "bob@example.org") == (["bob@example.org"], [])
    assert await _who(store, "team@example.org") == (["bob@example.org", "carol@example.org"], [])
    assert await _who(store, "all@example.org") == (
        ["bob@example.org", "carol@example.org", "dan@other.example"],
        [],
    )
    assert await _who(store, "out@example.org") == (["bob@example.org"], ["someone@elsewhere.net"])
    assert await _who(store, "loop1@example.org") == (["carol@example.org"], [])
    # RFC 5233-style subaddressing: the tag is ignored for routing.
    assert await _who(store, "bob+lists@example.org") == (["bob@example.org"], [])
    assert await _who(store, "team+x@example.org") == (["bob@example.org", "carol@example.org"], [])
    # Catch-all only when nothing else matches.
    assert await _who(store, "anything@other.example") == (["dan@other.example"], [])
    assert await _who(store, "dan@other.example") == (["dan@other.example"], [])
    # Unknown recipient of a hosted domain without catch-all, and a domain not ours.
    assert await _who(store, "nobody@example.org") is None
    assert await _who(store, "bob@elsewhere.net") is None
    assert (await resolve(store, "nobody@example.org", separator="+")).local_domain
    assert not (await resolve(store, "bob@elsewhere.net", separator="+")).local_domain


async def test_separator_can_be_disabled(store: Store) -> None:
    await _setup(store)
    assert not await resolve(store, "bob+lists@example.org", separator="")
