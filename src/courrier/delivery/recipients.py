"""Recipient resolution: which accounts receive mail for an address, and what goes elsewhere.

Rules, in order, for an address of a hosted domain (Postfix virtual_alias_maps + virtual
mailboxes behave alike):

1. an account with that address receives it;
2. an alias expands to its targets, each resolved again (aliases of aliases), loops cut;
3. ``local+tag@domain`` (with the configured separator) is resolved as ``local@domain``;
4. the domain's catch-all alias ``@domain`` takes what nothing else matched.

Targets outside our domains are forwards. An address of a hosted domain that resolves to
nothing is unknown (the SMTP server answers 550 5.1.1 at RCPT time, so we never accept and then
bounce).

Lookups go through the store's directory cache: the accounts returned may carry usage counters
older than the database's (ask the store for the current usage).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from courrier.store import Account, Store

#: Aliases of aliases are followed this deep at most.
MAX_DEPTH = 10


@dataclass(slots=True)
class Resolution:
    #: Whether the address's domain is hosted here; when not, nothing else is filled in.
    local_domain: bool = False
    accounts: list[Account] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.accounts or self.forwards)


async def resolve(store: Store, address: str, *, separator: str) -> Resolution:
    """What receives mail for ``address`` (already normalised).

    The result is false when nothing does: ``local_domain`` then tells an unknown recipient of
    a hosted domain from an address of another domain.
    """
    hosted: dict[str, bool] = {}
    domain = address.rpartition("@")[2]
    result = Resolution(local_domain=await _hosted(store, domain, hosted))
    if result.local_domain:
        await _expand(store, address, separator, result, set(), 0, hosted)
    return result


async def _hosted(store: Store, domain: str, hosted: dict[str, bool]) -> bool:
    """Whether ``domain`` is ours, asking the store once per domain and resolution."""
    if domain not in hosted:
        hosted[domain] = await store.directory.domain(domain) is not None
    return hosted[domain]


async def _expand(
    store: Store,
    address: str,
    separator: str,
    result: Resolution,
    seen: set[str],
    depth: int,
    hosted: dict[str, bool],
) -> None:
    if address in seen or depth > MAX_DEPTH:
        return
    seen.add(address)
    local, _, domain = address.rpartition("@")
    if not await _hosted(store, domain, hosted):
        if address not in result.forwards:
            result.forwards.append(address)
        return
    candidates = [address]
    if separator and separator in local:
        candidates.append(f"{local.split(separator, 1)[0]}@{domain}")
    for candidate in [*candidates, f"@{domain}"]:
        account = await store.directory.account(candidate)
        if account is not None:
            if all(a.id != account.id for a in result.accounts):
                result.accounts.append(account)
            return
        alias = await store.directory.alias(candidate)
        if alias is not None:
            for target in alias.targets:
                await _expand(store, target, separator, result, seen, depth + 1, hosted)
            return
