"""DKIM keys over their life, on both store backends: generated with the domain, signing
with the author's domain only, rotation that publishes first and signs later, retired keys
kept published for a week."""

from __future__ import annotations

import pytest

from courrier import provisioning
from courrier.mailauth import keys
from courrier.mailauth.signing import Signer, author_domain
from courrier.store import AlreadyExists, DkimKey, NotFound, Store
from tests.mailauth.helpers import Lookup, table_lookup, verified
from tests.store.helpers import make_message

DAY = 24 * 3600


def published_dns(found: list[DkimKey]) -> Lookup:
    """Answers from the records ``courrier domain dns`` would show."""
    return table_lookup({keys.record_name(k): keys.record_value(k) for k in found})


def signatures(message: bytes) -> list[str]:
    """The ``s=`` of each DKIM-Signature on top of ``message``."""
    head = message.split(b"\r\n\r\n")[0].replace(b"\r\n ", b"").replace(b"\r\n\t", b"")
    return [
        line.split(b"s=")[1].split(b";")[0].decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"dkim-signature:")
    ]


def verifies(message: bytes, found: list[DkimKey]) -> list[bool]:
    return verified(message, published_dns(found))


async def test_domain_add_generates_both_keys(store: Store) -> None:
    await provisioning.add_domain(store, "Example.ORG")
    found = await store.list_dkim_keys("example.org")
    assert sorted(k.algorithm for k in found) == ["ed25519-sha256", "rsa-sha256"]
    assert len({k.selector for k in found}) == 2
    rsa_key = next(k for k in found if k.algorithm == "rsa-sha256")
    assert "BEGIN PRIVATE KEY" in rsa_key.private_key
    # A 2048-bit modulus: its SubjectPublicKeyInfo is 294 octets, 392 in base64.
    assert len(rsa_key.public_key) == 392
    assert all(s == "active" for s in keys.states(found, rsa_key.active_at).values())
    # Idempotent for a domain that has keys; removing the domain removes them.
    assert await provisioning.ensure_dkim_keys(store) == []
    await provisioning.remove_domain(store, "example.org")
    assert await store.list_dkim_keys() == []


async def test_ensure_gives_keys_to_older_domains(store: Store) -> None:
    await store.add_domain("old.example")  # as before keys existed: no keys
    assert await provisioning.ensure_dkim_keys(store) == ["old.example"]
    assert len(await store.list_dkim_keys("old.example")) == 2


async def test_selector_clash_refused(store: Store) -> None:
    await provisioning.add_domain(store, "example.org")
    found = await store.list_dkim_keys("example.org")
    with pytest.raises(AlreadyExists):
        await store.add_dkim_keys("example.org", found[:1])
    with pytest.raises(NotFound):
        await store.add_dkim_keys("nowhere.example", found[:1])
    with pytest.raises(NotFound):
        await store.remove_dkim_key("example.org", "nosuchselector")


async def test_submitted_mail_signed_with_authors_domain(store: Store) -> None:
    await provisioning.add_domain(store, "example.org")
    found = await store.list_dkim_keys("example.org")
    signer = Signer(store)
    message = make_message(1)  # From: alice@example.org
    out = await signer.sign(message)
    assert out.endswith(message)
    assert sorted(signatures(out)) == sorted(k.selector for k in found)
    assert verifies(out, found) == [True, True]
    # A From that is not ours, or not one address, goes out unsigned.
    foreign = message.replace(b"alice@example.org", b"alice@elsewhere.example")
    assert await signer.sign(foreign) == foreign
    two = message.replace(b"<alice@example.org>", b"<alice@example.org>, x@example.org")
    assert await signer.sign(two) == two


def test_author_domain() -> None:
    assert author_domain(b"From: A <a@Example.ORG>\r\n\r\n") == "example.org"
    assert author_domain(b"Subject: x\r\nFrom: a@b.example (c)\r\n\r\nbody") == "b.example"
    assert author_domain(b"From: a@b.example\r\nFrom: c@d.example\r\n\r\n") is None
    assert author_domain(b"From: undisclosed-recipients:;\r\n\r\n") is None
    assert author_domain(b"To: x@y\r\n\r\n") is None


async def test_rotation_publishes_first_signs_later(store: Store) -> None:
    await provisioning.add_domain(store, "example.org")
    old = await store.list_dkim_keys("example.org")
    new = await provisioning.rotate_dkim_keys(store, "example.org", delay=2 * DAY)
    assert {k.selector for k in new}.isdisjoint(k.selector for k in old)
    everything = await store.list_dkim_keys("example.org")
    assert len(everything) == 4
    signer = Signer(store)
    start = new[0].active_at
    # Before the delay: the old keys sign, the new ones are published but pending.
    state = keys.states(everything, start - 1)
    assert {state[k.id] for k in new} == {"pending"}
    assert {state[k.id] for k in old} == {"active"}
    before = await signer.sign(make_message(2), now=start - 1)
    assert sorted(signatures(before)) == sorted(k.selector for k in old)
    # After it: the new keys sign, the old ones stay published for a week, then expire.
    after = await signer.sign(make_message(3), now=start + 1)
    assert sorted(signatures(after)) == sorted(k.selector for k in new)
    assert len(keys.published(everything, start + keys.RETAIN - 1)) == 4
    gone = keys.published(everything, start + keys.RETAIN)
    assert {k.selector for k in gone} == {k.selector for k in new}


async def test_rotation_drops_expired_keys(store: Store) -> None:
    await provisioning.add_domain(store, "example.org")
    first = await store.list_dkim_keys("example.org")
    second = await provisioning.rotate_dkim_keys(store, "example.org", delay=0)
    # With no delay (courrier serves the zone) the new pair signs at once.
    signed = await Signer(store).sign(make_message(4))
    assert sorted(signatures(signed)) == sorted(k.selector for k in second)
    assert verifies(signed, await store.list_dkim_keys("example.org")) == [True, True]
    # A week later, the first pair's records may go: the next rotation removes it.
    later = second[0].active_at + keys.RETAIN
    third = await provisioning.rotate_dkim_keys(store, "example.org", delay=0, now=later)
    left = {k.selector for k in await store.list_dkim_keys("example.org")}
    assert left.isdisjoint(k.selector for k in first)
    assert {k.selector for k in third} <= left
    assert len(left) == 4


def test_states_per_algorithm() -> None:
    def key(i: int, algorithm: str, active_at: int) -> DkimKey:
        return DkimKey(i, "d.example", f"s{i}", algorithm, "", "", 0, active_at)

    rsa1, rsa2, ed1 = (
        key(1, "rsa-sha256", 100),
        key(2, "rsa-sha256", 200),
        key(3, "ed25519-sha256", 100),
    )
    assert keys.states([rsa1, rsa2, ed1], 50) == {1: "pending", 2: "pending", 3: "pending"}
    assert keys.states([rsa1, rsa2, ed1], 150) == {1: "active", 2: "pending", 3: "active"}
    assert keys.states([rsa1, rsa2, ed1], 250) == {1: "retiring", 2: "active", 3: "active"}
    assert keys.states([rsa1, rsa2, ed1], 200 + keys.RETAIN)[1] == "expired"
    assert [k.id for k in keys.signing([rsa1, rsa2, ed1], 250)] == [3, 2]
