"""Provisioning: normalisation, validation before writing, authentication, on both backends."""

from __future__ import annotations

import pytest

from courrier import config, provisioning
from courrier.store import AlreadyExists, Store


@pytest.fixture
def settings() -> config.Settings:
    return config.load(env={})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Example.ORG", "example.org"),
        ("exämple.org.", "xn--exmple-cua.org"),
        ("mail.lab.example.test", "mail.lab.example.test"),
    ],
)
def test_domain_normalisation(given: str, expected: str) -> None:
    assert provisioning.normalize_domain(given) == expected


@pytest.mark.parametrize("bad", ["", "nodot", "a..b", "-x.org", "x@y.org", "sp ace.org"])
def test_bad_domains(bad: str) -> None:
    with pytest.raises(provisioning.InvalidInput):
        provisioning.normalize_domain(bad)


def test_address_normalisation() -> None:
    assert (
        provisioning.normalize_address(" Alice.Smith@Exämple.ORG ")
        == "alice.smith@xn--exmple-cua.org"
    )
    assert provisioning.normalize_address("jösé@example.org") == "jösé@example.org"  # RFC 6531
    assert provisioning.normalize_alias_source("@Example.org") == "@example.org"
    for bad in ["alice", "alice@", "@", "a b@example.org", '"q"@example.org']:
        with pytest.raises(provisioning.InvalidInput):
            provisioning.normalize_address(bad)


async def test_add_user_and_authenticate(store: Store, settings: config.Settings) -> None:
    await provisioning.add_domain(store, "Example.org")
    created = await provisioning.add_user(store, settings, "Alice@EXAMPLE.org", "a fine passphrase")
    assert created.account.address == "alice@example.org" and created.generated_password is None
    assert created.account.scram_sha256.startswith("4096,")
    ok = await provisioning.authenticate(store, "ALICE@example.org", "a fine passphrase")
    assert ok is not None and ok.id == created.account.id
    assert await provisioning.authenticate(store, "alice@example.org", "wrong passphrase") is None
    assert await provisioning.authenticate(store, "nobody@example.org", "a fine passphrase") is None
    assert await provisioning.authenticate(store, "not an address", "x") is None
    await provisioning.set_password(store, settings, "alice@example.org", "another passphrase")
    assert await provisioning.authenticate(store, "alice@example.org", "a fine passphrase") is None
    assert await provisioning.authenticate(store, "alice@example.org", "another passphrase")
    with pytest.raises(AlreadyExists):
        await provisioning.add_user(store, settings, "alice@example.org", "a fine passphrase")


async def test_validation_happens_before_any_write(store: Store, settings: config.Settings) -> None:
    await provisioning.add_domain(store, "example.org")
    with pytest.raises(provisioning.InvalidInput, match="plus-addressing"):
        await provisioning.add_user(store, settings, "a+b@example.org", "a fine passphrase")
    with pytest.raises(provisioning.InvalidInput, match="not hosted here"):
        await provisioning.add_user(store, settings, "a@example.net", "a fine passphrase")
    with pytest.raises(provisioning.InvalidInput, match="too short"):
        await provisioning.add_user(store, settings, "a@example.org", "short")
    with pytest.raises(provisioning.InvalidInput, match="at least one target"):
        await provisioning.add_alias(store, "x@example.org", [])
    assert await store.list_accounts() == []
    assert await store.list_aliases() == []
