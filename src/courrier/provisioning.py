"""Provisioning: add and remove domains, users and aliases with every check a user expects.

The CLI and the web admin are two front doors to these functions. Names are validated and
normalised here (lower case; domains in their ASCII/IDNA form, RFC 5890), passwords checked
against the policy and hashed in a worker thread, and only then is the store called, in one
transaction per operation: bad input writes nothing.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import email_validator

from courrier.config import ConfigError, Settings, parse_hostport
from courrier.dns import validate
from courrier.dns.records import Record, host_records, merge, recommended_records, txt_kind
from courrier.mailauth import dmarc
from courrier.mailauth import keys as dkim_keys
from courrier.mailauth.spfsyntax import syntax_error
from courrier.security import passwords, sasl
from courrier.security.certificates import certificate_paths, tlsa_value
from courrier.store import Account, Alias, DkimKey, Domain, NotFound, Relay, Store


class InvalidInput(ValueError):
    """An address, domain or value is malformed; the message says which and why."""


def normalize_domain(name: str) -> str:
    """Lower-case ASCII form of a domain name (``Exämple.COM`` → ``xn--exmple-cua.com``)."""
    cleaned = name.strip().rstrip(".")
    if not cleaned or "@" in cleaned:
        raise InvalidInput(f"{name!r} is not a domain name.")
    try:
        info = email_validator.validate_email(
            f"postmaster@{cleaned}", check_deliverability=False, test_environment=True
        )
    except email_validator.EmailNotValidError as exc:
        raise InvalidInput(f"{name!r} is not a valid domain name: {exc}") from None
    return str(info.ascii_domain).lower()


def normalize_address(address: str) -> str:
    """Canonical form of a mailbox address: lower-case local part, ASCII domain (RFC 6531 ok)."""
    cleaned = address.strip()
    if cleaned.count("@") < 1:
        raise InvalidInput(f"{address!r} is not an email address (no @).")
    try:
        info = email_validator.validate_email(
            cleaned, check_deliverability=False, test_environment=True, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        raise InvalidInput(f"{address!r} is not a valid email address: {exc}") from None
    return f"{str(info.local_part).lower()}@{str(info.ascii_domain).lower()}"


def normalize_alias_source(address: str) -> str:
    """An alias address, or ``@domain`` for the domain's catch-all."""
    if address.strip().startswith("@"):
        return "@" + normalize_domain(address.strip()[1:])
    return normalize_address(address)


@dataclass(frozen=True, slots=True)
class NewUser:
    account: Account
    #: The password when it was generated here (to show once), else None.
    generated_password: str | None


async def hosted_domain(store: Store, name: str) -> str:
    """``name`` normalised, once it is known to be hosted here (else :class:`InvalidInput`)."""
    domain = normalize_domain(name)
    if await store.get_domain(domain) is None:
        raise InvalidInput(f"The domain {domain} is not hosted here.")
    return domain


async def add_domain(store: Store, name: str) -> Domain:
    """Host a domain, with its DKIM keys (signing at once: publish their records)."""
    domain = await store.add_domain(normalize_domain(name))
    await ensure_dkim_keys(store, domain.name)
    return domain


async def ensure_dkim_keys(store: Store, name: str | None = None) -> list[str]:
    """Give every hosted domain (or ``name``) that has none a pair of DKIM keys; returns the
    domains that got one. ``serve`` calls this for domains added before keys existed."""
    names = [name] if name else [d.name for d in await store.list_domains()]
    with_keys = {k.domain for k in await store.list_dkim_keys(name)}
    added = []
    for domain in names:
        if domain not in with_keys:
            now = int(time.time())
            new = await asyncio.to_thread(dkim_keys.generate, [], now, now)
            await store.add_dkim_keys(domain, new)
            added.append(domain)
    return added


async def rotate_dkim_keys(
    store: Store, name: str, delay: int, now: int | None = None
) -> list[DkimKey]:
    """Add a new pair of keys to ``name`` that starts signing ``delay`` seconds from now, and
    drop the keys whose records may go (expired) and those of an earlier rotation that have
    not signed yet (pending: replaced before use). Returns the new keys."""
    domain = await hosted_domain(store, name)
    existing = await store.list_dkim_keys(domain)
    now = int(time.time()) if now is None else now
    state = dkim_keys.states(existing, now)
    for key in existing:
        if state[key.id] in ("expired", "pending"):
            await store.remove_dkim_key(domain, key.selector)
    new = await asyncio.to_thread(
        dkim_keys.generate, [k.selector for k in existing], now + delay, now
    )
    await store.add_dkim_keys(domain, new)
    return [
        k for k in await store.list_dkim_keys(domain) if k.selector in {n.selector for n in new}
    ]


async def set_domain_relay(
    store: Store,
    name: str,
    hostport: str | None,
    *,
    security: str = "starttls",
    verify: bool = True,
    username: str = "",
    password: str = "",
) -> Relay | None:
    """Send the domain's outgoing mail through a smarthost (``host[:port]``, 587 by default),
    or, with None, straight to each MX again."""
    domain = normalize_domain(name)
    relay = None
    if hostport is not None:
        try:
            host, port = parse_hostport(hostport, 587, key="relay")
        except ConfigError as exc:
            raise InvalidInput(f"{hostport!r} is not host[:port].") from exc
        if security not in ("starttls", "tls"):
            raise InvalidInput("The relay security must be starttls or tls.")
        if bool(username) != bool(password):
            raise InvalidInput("A relay login needs both a username and a password.")
        relay = Relay(host.lower(), port, security, verify, username, password)
    try:
        await store.set_domain_relay(domain, relay)
    except NotFound as exc:
        raise InvalidInput(f"The domain {domain} is not hosted here.") from exc
    return relay


async def domain_records(
    store: Store, settings: Settings, name: str, now: int | None = None
) -> list[Record]:
    """The DNS records ``name`` should publish (``courrier domain dns``, and the zone we serve):
    the recommended ones with every DKIM key that must be published now, the mail host's
    addresses and TLSA when its name is in the domain, and the records an admin added
    (which replace ours of the same kind)."""
    now = int(time.time()) if now is None else now
    found = await store.list_dkim_keys(name)
    state = dkim_keys.states(found, now)
    dkim = [
        (dkim_keys.record_name(k), dkim_keys.record_value(k), state[k.id])
        for k in dkim_keys.published(found, now)
    ]
    ours = recommended_records(
        name,
        settings.server.hostname,
        dkim,
        mta_sts=settings.dns.mta_sts,
        caa_issuers=settings.dns.caa_issuers,
    )
    host = settings.server.hostname.rstrip(".").lower()
    if host == name or host.endswith("." + name):
        cert, _ = certificate_paths(settings)
        tlsa = [tlsa_value(cert)] if cert.is_file() else []
        ours += host_records(host, settings.dns.host_addresses, tlsa)
    added = [
        Record(r.name, r.type, r.value, f"added by an admin (#{r.id})", r.ttl)
        for r in await store.list_dns_records(name)
    ]
    return merge(ours, added)


async def add_dns_record(
    store: Store, settings: Settings, domain: str, name: str, type_: str, value: str, ttl: int
) -> Record:
    """Add a record to a hosted domain's zone, once checked against the zone's other records
    and, for SPF and DMARC, for meaning; :class:`InvalidInput` says why it cannot go in."""
    zone = await hosted_domain(store, domain)
    current = await domain_records(store, settings, zone)
    try:
        record = validate.check(zone, name, type_, value, ttl, current)
    except validate.InvalidRecord as exc:
        raise InvalidInput(str(exc)) from None
    if record.type == "TXT":
        _check_policy_txt(record)
    await store.add_dns_record(zone, record.name, record.type, record.value, record.ttl)
    return record


def _check_policy_txt(record: Record) -> None:
    text = record.value
    kind = txt_kind(text)
    if kind.lower() == "spf1":
        problem = syntax_error(text)
        if problem:
            raise InvalidInput(f"The SPF record is not valid: {problem}.")
    elif kind.upper() == "DMARC1":
        if not record.name.startswith("_dmarc."):
            raise InvalidInput("A DMARC record goes at _dmarc.<domain> (RFC 7489 §6.1).")
        try:
            dmarc.parse_record(text)
        except dmarc.DMARCSyntaxError as exc:
            raise InvalidInput(f"The DMARC record is not valid: {exc}.") from None


async def remove_dns_record(store: Store, domain: str, record_id: int) -> None:
    try:
        await store.remove_dns_record(normalize_domain(domain), record_id)
    except NotFound as exc:
        raise InvalidInput(str(exc)) from None


async def remove_domain(store: Store, name: str, *, force: bool = False) -> int:
    return await store.remove_domain(normalize_domain(name), force=force)


async def add_user(
    store: Store,
    settings: Settings,
    address: str,
    password: str | None,
    *,
    quota_bytes: int | None = None,
    role: str = "user",
) -> NewUser:
    """Create an account with its default mailboxes; ``password=None`` generates one."""
    normalized = normalize_address(address)
    local = normalized.partition("@")[0]
    separator = settings.accounts.plus_separator
    if separator and separator in local:
        raise InvalidInput(
            f"{address!r} contains {separator!r}, which is the plus-addressing separator; "
            "it would be read as a tag."
        )
    if role not in ("user", "admin"):
        raise InvalidInput(f"{role!r} is not a role (user or admin).")
    generated = None
    if password is None:
        generated = password = passwords.generate_password()
    try:
        passwords.check_policy(
            password, min_length=settings.accounts.min_password_length, address=normalized
        )
    except passwords.WeakPassword as exc:
        raise InvalidInput(str(exc)) from None
    domain = normalized.partition("@")[2]
    if await store.get_domain(domain) is None:
        # Checked before the slow hash; the store checks again inside the transaction.
        raise InvalidInput(f"The domain {domain} is not hosted here; add it first.")
    credentials = await passwords.make_credentials_async(password)
    quota = settings.accounts.default_quota if quota_bytes is None else quota_bytes
    account = await store.add_account(
        normalized,
        credentials.password_hash,
        credentials.scram_sha256,
        quota_bytes=quota,
        role=role,
    )
    return NewUser(account, generated)


async def set_password(store: Store, settings: Settings, address: str, password: str) -> None:
    normalized = normalize_address(address)
    try:
        passwords.check_policy(
            password, min_length=settings.accounts.min_password_length, address=normalized
        )
    except passwords.WeakPassword as exc:
        raise InvalidInput(str(exc)) from None
    credentials = await passwords.make_credentials_async(password)
    await store.set_password(normalized, credentials.password_hash, credentials.scram_sha256)


async def remove_user(store: Store, address: str) -> None:
    await store.remove_account(normalize_address(address))


async def add_alias(store: Store, address: str, targets: Sequence[str]) -> Alias:
    if not targets:
        raise InvalidInput("An alias needs at least one target address.")
    source = normalize_alias_source(address)
    return await store.add_alias(source, [normalize_address(t) for t in targets])


async def remove_alias(store: Store, address: str, target: str | None = None) -> int:
    source = normalize_alias_source(address)
    return await store.remove_alias(source, None if target is None else normalize_address(target))


async def authenticate(store: Store, address: str, password: str) -> Account | None:
    """The account if the password is right and the account enabled, else None."""
    try:
        normalized = normalize_address(address)
    except InvalidInput:
        return None
    account = await store.get_account(normalized)
    if account is None or account.disabled:
        # Same cost as a real check, so timing does not reveal which addresses exist.
        await passwords.verify_async(_dummy_hash(), password)
        return None
    if _LOGINS.hit(account.address, account.password_hash, password):
        return account
    if await passwords.verify_async(account.password_hash, password):
        _LOGINS.remember(account.address, account.password_hash, password)
        return account
    return None


#: This process's recently verified logins (see :class:`passwords.LoginCache`).
_LOGINS = passwords.LoginCache()


async def sasl_advance(
    store: Store, exchange: sasl.Exchange, step: sasl.Step
) -> tuple[sasl.Challenge | sasl.Success | sasl.Failure, Account | None]:
    """Answer the exchange's questions (a password to check, a SCRAM verifier to look up)
    from the store until it needs the client again or ends; with the account once known."""
    account: Account | None = None
    while True:
        if isinstance(step, sasl.NeedPassword):
            account = None
            if step.authzid in ("", step.username):  # acting as someone else is not allowed
                account = await authenticate(store, step.username, step.password)
            step = exchange.password_checked(
                account is not None, account.address if account else ""
            )
        elif isinstance(step, sasl.NeedVerifier):
            account = await _enabled_account(store, step.username)
            ok = account is not None and step.authzid in ("", step.username)
            step = exchange.verifier(account.scram_sha256 if ok and account else "")
        elif isinstance(step, sasl.Success):
            # SCRAM succeeds one round after its verifier was looked up: find the account again.
            if account is None:
                account = await _enabled_account(store, step.identity)
            return step, account
        else:
            return step, None


async def _enabled_account(store: Store, username: str) -> Account | None:
    try:
        account = await store.get_account(normalize_address(username))
    except InvalidInput:
        return None
    return None if account is None or account.disabled else account


@functools.cache
def _dummy_hash() -> str:
    return passwords.make_credentials("courrier-dummy-password").password_hash
