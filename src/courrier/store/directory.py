"""Transactions on the directory: domains, accounts (with their default mailboxes) and aliases.

Names arrive here already normalised (lower case, ASCII domain) by the provisioning service; these
transactions enforce existence and uniqueness and keep related rows consistent.
"""

from __future__ import annotations

from collections.abc import Iterable

from courrier.store import mailboxes
from courrier.store.errors import AlreadyExists, InUse, NotFound
from courrier.store.models import Account, Alias, Domain, Relay
from courrier.store.tx import Row, Tx, one, rows, run

#: Mailboxes every account starts with, and their RFC 6154 SPECIAL-USE roles.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Archive", "\\Archive"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
)

_ACCOUNT_COLUMNS = (
    "id, domain_id, address, password_hash, scram_sha256, role, quota_bytes, used_bytes, "
    "highestmodseq, disabled, created_at"
)


def _account(r: Row | None) -> Account | None:
    if r is None:
        return None
    return Account(
        id=int(r[0]),
        domain_id=int(r[1]),
        address=str(r[2]),
        password_hash=str(r[3]),
        scram_sha256=str(r[4]),
        role=str(r[5]),
        quota_bytes=int(r[6]),
        used_bytes=int(r[7]),
        highestmodseq=int(r[8]),
        disabled=bool(r[9]),
        created_at=int(r[10]),
    )


def domain_part(address: str) -> str:
    return address.rpartition("@")[2]


# -- domains -------------------------------------------------------------------------------


def get_domain(name: str) -> Tx[Domain | None]:
    row = yield one("SELECT id, name, created_at FROM domains WHERE name = ?", name)
    return None if row is None else Domain(int(row[0]), str(row[1]), int(row[2]))


def list_domains() -> Tx[list[Domain]]:
    found = yield rows("SELECT id, name, created_at FROM domains ORDER BY name")
    return [Domain(int(r[0]), str(r[1]), int(r[2])) for r in found]


def add_domain(name: str, now: int) -> Tx[Domain]:
    if (yield one("SELECT 1 FROM domains WHERE name = ?", name)) is not None:
        raise AlreadyExists(f"The domain {name} already exists.")
    row = yield one("INSERT INTO domains (name, created_at) VALUES (?, ?) RETURNING id", name, now)
    return Domain(int(row[0]), name, now)


def remove_domain(name: str, *, force: bool) -> Tx[int]:
    """Remove a domain; with ``force`` its accounts (and their mail) and aliases go too.

    Returns the number of accounts removed.
    """
    domain = yield from get_domain(name)
    if domain is None:
        raise NotFound(f"The domain {name} does not exist.")
    accounts = yield rows("SELECT address FROM accounts WHERE domain_id = ?", domain.id)
    if accounts and not force:
        raise InUse(
            f"The domain {name} still has {len(accounts)} account(s); "
            "remove them first or use --force."
        )
    for (address,) in accounts:
        yield from remove_account(str(address))
    yield run("DELETE FROM aliases WHERE domain_id = ?", domain.id)
    yield run("DELETE FROM dkim_keys WHERE domain_id = ?", domain.id)
    for table in ("dns_records", "dns_zones", "dnssec_keys"):
        yield run(f"DELETE FROM {table} WHERE domain_id = ?", domain.id)
    yield run("DELETE FROM domain_relays WHERE domain_id = ?", domain.id)
    yield run("DELETE FROM domains WHERE id = ?", domain.id)
    return len(accounts)


def set_relay(name: str, relay: Relay | None) -> Tx[None]:
    """Send the domain's outgoing mail through ``relay``; None: straight to each MX again."""
    domain = yield from get_domain(name)
    if domain is None:
        raise NotFound(f"The domain {name} does not exist.")
    yield run("DELETE FROM domain_relays WHERE domain_id = ?", domain.id)
    if relay is not None:
        yield run(
            "INSERT INTO domain_relays (domain_id, host, port, security, verify, username, "
            "password) VALUES (?, ?, ?, ?, ?, ?, ?)",
            domain.id,
            relay.host,
            relay.port,
            relay.security,
            int(relay.verify),
            relay.username,
            relay.password,
        )


def list_relays() -> Tx[dict[str, Relay]]:
    """Every domain's smarthost, by domain name."""
    found = yield rows(
        "SELECT d.name, r.host, r.port, r.security, r.verify, r.username, r.password "
        "FROM domain_relays r JOIN domains d ON d.id = r.domain_id"
    )
    return {
        str(r[0]): Relay(str(r[1]), int(r[2]), str(r[3]), bool(r[4]), str(r[5]), str(r[6]))
        for r in found
    }


# -- accounts ------------------------------------------------------------------------------


def get_account(address: str) -> Tx[Account | None]:
    row = yield one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE address = ?", address)
    return _account(row)


def get_account_by_id(account_id: int) -> Tx[Account | None]:
    row = yield one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", account_id)
    return _account(row)


def list_accounts(domain: str | None) -> Tx[list[Account]]:
    if domain is None:
        found = yield rows(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY address")
    else:
        d = yield from get_domain(domain)
        if d is None:
            raise NotFound(f"The domain {domain} does not exist.")
        found = yield rows(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE domain_id = ? ORDER BY address", d.id
        )
    return [a for a in map(_account, found) if a is not None]


def add_account(
    address: str,
    password_hash: str,
    scram_sha256: str,
    *,
    quota_bytes: int,
    role: str,
    now: int,
) -> Tx[Account]:
    domain_name = domain_part(address)
    domain = yield from get_domain(domain_name)
    if domain is None:
        raise NotFound(f"The domain {domain_name} is not hosted here; add it first.")
    if (yield one("SELECT 1 FROM accounts WHERE address = ?", address)) is not None:
        raise AlreadyExists(f"The account {address} already exists.")
    if (yield one("SELECT 1 FROM aliases WHERE address = ?", address)) is not None:
        raise AlreadyExists(f"{address} is already an alias; remove the alias first.")
    row = yield one(
        "INSERT INTO accounts (domain_id, address, password_hash, scram_sha256, role, "
        "quota_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        domain.id,
        address,
        password_hash,
        scram_sha256,
        role,
        quota_bytes,
        now,
    )
    account_id = int(row[0])
    for name, special_use in DEFAULT_MAILBOXES:
        yield from mailboxes.insert_mailbox(account_id, name, special_use, now, subscribed=True)
    account = yield from get_account_by_id(account_id)
    assert account is not None
    return account


def set_password(address: str, password_hash: str, scram_sha256: str) -> Tx[None]:
    count = yield run(
        "UPDATE accounts SET password_hash = ?, scram_sha256 = ? WHERE address = ?",
        password_hash,
        scram_sha256,
        address,
    )
    if count == 0:
        raise NotFound(f"The account {address} does not exist.")


def set_quota(address: str, quota_bytes: int) -> Tx[None]:
    count = yield run("UPDATE accounts SET quota_bytes = ? WHERE address = ?", quota_bytes, address)
    if count == 0:
        raise NotFound(f"The account {address} does not exist.")


def remove_account(address: str) -> Tx[None]:
    """Remove an account, its mailboxes and mail, and alias entries that point at it."""
    account = yield from get_account(address)
    if account is None:
        raise NotFound(f"The account {address} does not exist.")
    boxes = yield rows("SELECT id FROM mailboxes WHERE account_id = ?", account.id)
    for (mailbox_id,) in boxes:
        yield from mailboxes.drop_mailbox_contents(int(mailbox_id))
    yield run("DELETE FROM mailboxes WHERE account_id = ?", account.id)
    yield run("DELETE FROM subscriptions WHERE account_id = ?", account.id)
    yield run("DELETE FROM changes WHERE account_id = ?", account.id)
    yield run("DELETE FROM aliases WHERE target = ?", address)
    yield run("DELETE FROM accounts WHERE id = ?", account.id)


# -- aliases -------------------------------------------------------------------------------


def _group(found: Iterable[Row]) -> list[Alias]:
    grouped: dict[str, list[str]] = {}
    for address, target in found:
        grouped.setdefault(str(address), []).append(str(target))
    return [Alias(a, tuple(sorted(t))) for a, t in sorted(grouped.items())]


def get_alias(address: str) -> Tx[Alias | None]:
    found = yield rows("SELECT address, target FROM aliases WHERE address = ?", address)
    aliases = _group(found)
    return aliases[0] if aliases else None


def list_aliases(domain: str | None) -> Tx[list[Alias]]:
    if domain is None:
        found = yield rows("SELECT address, target FROM aliases")
    else:
        d = yield from get_domain(domain)
        if d is None:
            raise NotFound(f"The domain {domain} does not exist.")
        found = yield rows("SELECT address, target FROM aliases WHERE domain_id = ?", d.id)
    return _group(found)


def add_alias(address: str, targets: Iterable[str], now: int) -> Tx[Alias]:
    """Add targets to an alias (``@domain`` is the domain's catch-all)."""
    domain_name = domain_part(address)
    domain = yield from get_domain(domain_name)
    if domain is None:
        raise NotFound(f"The domain {domain_name} is not hosted here; add it first.")
    if (yield one("SELECT 1 FROM accounts WHERE address = ?", address)) is not None:
        raise AlreadyExists(f"{address} is an account; an alias cannot have the same address.")
    for target in targets:
        if target == address:
            raise AlreadyExists(f"The alias {address} cannot point at itself.")
        exists = yield one(
            "SELECT 1 FROM aliases WHERE address = ? AND target = ?", address, target
        )
        if exists is not None:
            raise AlreadyExists(f"The alias {address} already points at {target}.")
        yield run(
            "INSERT INTO aliases (domain_id, address, target, created_at) VALUES (?, ?, ?, ?)",
            domain.id,
            address,
            target,
            now,
        )
    alias = yield from get_alias(address)
    assert alias is not None
    return alias


def remove_alias(address: str, target: str | None) -> Tx[int]:
    """Remove one target of an alias, or the whole alias; returns the number of targets removed."""
    if target is None:
        count = yield run("DELETE FROM aliases WHERE address = ?", address)
    else:
        count = yield run("DELETE FROM aliases WHERE address = ? AND target = ?", address, target)
    if count == 0:
        what = address if target is None else f"{address} → {target}"
        raise NotFound(f"The alias {what} does not exist.")
    return int(count)
