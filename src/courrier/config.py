"""Settings: a TOML file plus ``COURRIER_*`` environment overrides, turned into typed dataclasses.

Every key has a default good enough to run with no file at all. Errors name the key and say why
(``store.backend: must be one of 'sqlite', 'postgresql', not 'mysql'``); ``courrier config check``
prints them. Environment overrides use ``COURRIER_<SECTION>_<KEY>`` (``COURRIER_STORE_BACKEND``,
``COURRIER_DNS_RESOLVERS=127.0.0.2:5353,127.0.0.3``); lists are comma-separated.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import ipaddress
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value; the message names the key."""


#: Sizes may be written as ``"25M"``, ``"1G"``, ``"512k"`` or plain integers.
ByteSize = Annotated[int, "bytes"]


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

#: Standard ports, before ``--port-offset`` (DESIGN.md §6).
STANDARD_PORTS: dict[str, int] = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "imap": 143,
    "imaps": 993,
    "pop3": 110,
    "pop3s": 995,
    "dns": 53,
    "http": 80,
    "https": 443,
}


@dataclass(frozen=True)
class ServerSettings:
    hostname: str = field(default_factory=socket.getfqdn)
    data_dir: str = "data"
    port_offset: int = 0
    #: Addresses every listener binds to unless its own ``address`` says otherwise.
    listen: list[str] = field(default_factory=lambda: ["0.0.0.0"])
    log_level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True)
class StoreSettings:
    backend: Literal["sqlite", "postgresql"] = "sqlite"
    #: PostgreSQL connection string (``postgresql://user:pass@host:port/db``); cluster backend only.
    url: str = ""
    #: Blobs up to this size live inside the database so one fsync covers many messages;
    #: bigger ones are files in the blob area (SQLite only; PostgreSQL keeps all blobs).
    inline_blob_max: ByteSize = 256 * 1024
    #: Most writes gathered into one group-commit transaction.
    max_batch: int = 512
    #: Reader connections (threads for SQLite, pool size for PostgreSQL).
    readers: int = 4


@dataclass(frozen=True)
class AccountSettings:
    #: Default quota for new accounts; 0 means unlimited.
    default_quota: ByteSize = 0
    #: Plus-addressing separator: ``user+tag@domain`` delivers to ``user@domain``; empty disables.
    plus_separator: str = "+"
    min_password_length: int = 10


@dataclass(frozen=True)
class SMTPSettings:
    #: Largest message accepted (advertised as SIZE, RFC 1870); bigger ones get 552 5.3.4.
    max_message_size: ByteSize = 50 * 1024 * 1024
    #: RFC 5321 §4.5.3.1.8: at least 100.
    max_recipients: int = 100
    #: File a copy of each submitted message in the sender's Sent mailbox.
    sent_copy: bool = True
    #: Seconds a client may stay silent (RFC 5321 §4.5.3.2: at least 5 minutes).
    idle_timeout: int = 300
    #: Simultaneous connections from one IP address (Postfix smtpd_client_connection_count_limit).
    max_connections_per_ip: int = 50
    #: Simultaneous connections per listener (Postfix default_process_limit is 100).
    max_connections: int = 1000


@dataclass(frozen=True)
class IMAPSettings:
    #: Largest message APPEND takes (advertised as APPENDLIMIT, RFC 7889).
    max_append: ByteSize = 50 * 1024 * 1024
    #: Seconds a logged-in client may stay silent (RFC 9051 §5.4: at least 30 minutes).
    idle_timeout: int = 1800
    #: Seconds a client has to log in.
    login_timeout: int = 60
    #: Simultaneous connections from one IP address.
    max_connections_per_ip: int = 100
    #: Simultaneous connections per listener (idling clients cost a few tens of KB each).
    max_connections: int = 20000
    #: Allow LOGIN and AUTHENTICATE PLAIN without TLS from loopback (webmail, local tools).
    plaintext_on_loopback: bool = False


@dataclass(frozen=True)
class POP3Settings:
    #: Seconds a logged-in client may stay silent (RFC 1939 §3: at least 10 minutes).
    idle_timeout: int = 600
    #: Seconds a client has to log in.
    login_timeout: int = 60
    #: Simultaneous connections from one IP address.
    max_connections_per_ip: int = 50
    #: Simultaneous connections per listener (POP3 sessions are short: fetch and quit).
    max_connections: int = 1000
    #: Allow USER/PASS and AUTH PLAIN without TLS from loopback (local tools).
    plaintext_on_loopback: bool = False


@dataclass(frozen=True)
class TLSSettings:
    #: PEM certificate chain and key; empty means a self-signed pair in ``<data>/tls/``.
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class DNSSettings:
    #: Resolvers used for outbound mail and checks, each ``host[:port]``; empty: the system's.
    resolvers: list[str] = field(default_factory=list)
    #: This server's public addresses: the A/AAAA records of ``server.hostname`` in the zone
    #: we serve when the name is inside it.
    host_addresses: list[str] = field(default_factory=list)
    #: UDP answers per second to one source network (/24, /56) of the DNS server; over it,
    #: every second query gets a truncated answer (retry over TCP), the rest none. 0: no limit.
    rate_limit: int = 20
    #: Sign the zones we serve (DNSSEC, RFC 4033–4035) with a key per zone kept in the store;
    #: publish the DS record ``courrier dns ds NAME`` prints at the parent.
    dnssec: bool = True
    #: The signing algorithm: ECDSA P-256 (13, RFC 6605) or Ed25519 (15, RFC 8080).
    dnssec_algorithm: Literal["ecdsap256sha256", "ed25519"] = "ecdsap256sha256"
    #: MTA-STS (RFC 8461) mode announced for our domains; "none" publishes no ``_mta-sts``
    #: record (the policy is served by the web listener).
    mta_sts: Literal["none", "testing", "enforce"] = "none"
    #: Certificate authorities allowed to issue for our domains (CAA, RFC 8659); empty: none.
    caa_issuers: list[str] = field(default_factory=lambda: ["letsencrypt.org"])
    #: Secondary name servers of our zones, each ``address[:port]`` (an IP address, port 53
    #: by default): they may transfer the zones (AXFR/IXFR, over TCP) and get a NOTIFY when one
    #: changes. With ``tsig_keys`` set, the key is what lets a secondary transfer, not this list.
    secondaries: list[str] = field(default_factory=list)
    #: TSIG keys (RFC 8945), each ``name:algorithm:base64secret`` (algorithm ``hmac-sha256``,
    #: …); when any is set, every transfer must be signed with one of them, and NOTIFY is
    #: signed with the first.
    tsig_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QueueSettings:
    """The outbound queue (Postfix's names in brackets)."""

    #: Deliver queued mail; false keeps it queued (a node that must not send, or tests).
    deliver: bool = True
    #: Seconds between looks for due recipients when nothing wakes the queue (queue_run_delay).
    scan_interval: int = 60
    #: Retry delays: the first, doubled after each attempt up to the last
    #: (minimal_backoff_time, maximal_backoff_time).
    retry_min: int = 300
    retry_max: int = 4000
    #: Seconds after which a message that could not be delivered is returned
    #: (maximal_queue_lifetime: 5 days).
    lifetime: int = 5 * 24 * 3600
    #: Seconds after which a sender hears that a message is still being retried, once
    #: (RFC 3461 NOTIFY=DELAY, or no NOTIFY; Postfix's delay_warning_time); 0: never.
    delay_warning: int = 4 * 3600
    #: Seconds a worker holds the recipients it took; another worker or node takes them after.
    lease: int = 900
    #: Recipients taken at once, and destinations talked to at once.
    batch: int = 200
    concurrency: int = 20
    #: The port of remote mail servers (25; tests point it at their own).
    outbound_port: int = 25
    #: A smarthost (``host[:port]``, port 587 by default) that takes all mail for other
    #: servers, as providers like SendGrid, SES or Mailgun do; empty: deliver to each MX.
    relayhost: str = ""
    #: How to reach it: "starttls" (required, never in clear) or "tls" (implicit, RFC 8314).
    relay_security: str = "starttls"
    #: Check the relay's certificate against its name (turn off only for a private relay).
    relay_verify: bool = True
    #: AUTH PLAIN/LOGIN credentials at the relay (RFC 4954), if it wants them.
    relay_username: str = ""
    relay_password: str = ""
    #: PEM file of the CAs trusted for MX certificates under MTA-STS or REQUIRETLS and for
    #: MTA-STS policy hosts; empty: the system's store.
    tls_ca_file: str = ""
    #: Apply the recipient domains' MTA-STS policies (RFC 8461).
    mta_sts: bool = True
    #: The HTTPS port policies are fetched from (443; tests point it at their own server),
    #: and the seconds a fetch may take (RFC 8461 §3.3 suggests about a minute).
    mta_sts_port: int = 443
    mta_sts_timeout: int = 30
    #: Apply DANE TLSA records (RFC 7672) of MX hosts whose DNS answers the resolvers say are
    #: DNSSEC-validated (the AD bit): ``dns.resolvers`` must then be a validating resolver
    #: this host trusts, on the host itself or its network, as Postfix assumes.
    dane: bool = True


@dataclass(frozen=True)
class MailAuthSettings:
    """Checks of mail arriving on the MX: SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC
    (RFC 7489) and ARC (RFC 8617), told in Authentication-Results (RFC 8601); and the daily
    DMARC aggregate (RFC 7489 §7.2) and TLS-RPT (RFC 8460) reports."""

    #: Check inbound mail and apply the senders' DMARC policies; false delivers it unchecked.
    enabled: bool = True
    #: The authserv-id of our Authentication-Results (RFC 8601 §2.5); empty: server.hostname.
    authserv_id: str = ""
    #: What a message failing DMARC under ``p=reject`` gets: "reject" (550 5.7.1 at the end
    #: of DATA) or "quarantine" (delivered to Junk, as for ``p=quarantine``).
    dmarc_reject: Literal["reject", "quarantine"] = "reject"
    #: Forwarders and mailing lists (the d= of their ARC-Seal) whose valid ARC chain overrides
    #: a DMARC failure (RFC 8617 §7.2.1): the mail they pass on is delivered normally.
    arc_trusted_sealers: list[str] = field(default_factory=list)
    #: Send the daily DMARC aggregate and TLS-RPT reports to the domains that ask for them.
    reports: bool = True
    #: The reporting organisation named in them; empty: server.hostname.
    report_org: str = ""
    #: The address they come from; empty: postmaster@ + server.hostname.
    report_from: str = ""


@dataclass(frozen=True)
class CheckSettings:
    """``courrier check``: the domain diagnosis (its flags override these)."""

    #: DNS block lists (RFC 5782) each MX address is looked up in.
    dnsbls: list[str] = field(
        default_factory=lambda: [
            "zen.spamhaus.org",
            "bl.spamcop.net",
            "b.barracudacentral.org",
            "psbl.surriel.com",
            "bl.mailspike.net",
            "dnsbl-1.uceprotect.net",
        ]
    )
    #: DKIM selectors to look at besides those given with --selector; empty: common ones.
    dkim_selectors: list[str] = field(default_factory=list)
    #: Seconds for each DNS question, connection and SMTP step.
    timeout: float = 10.0


@dataclass(frozen=True)
class ListenerSettings:
    enabled: bool = True
    #: 0 means the standard port plus ``server.port_offset``.
    port: int = 0
    #: Empty means ``server.listen``.
    address: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ListenersSettings:
    smtp: ListenerSettings = field(default_factory=ListenerSettings)
    submission: ListenerSettings = field(default_factory=ListenerSettings)
    submissions: ListenerSettings = field(default_factory=ListenerSettings)
    imap: ListenerSettings = field(default_factory=ListenerSettings)
    imaps: ListenerSettings = field(default_factory=ListenerSettings)
    pop3: ListenerSettings = field(default_factory=ListenerSettings)
    pop3s: ListenerSettings = field(default_factory=ListenerSettings)
    #: The authoritative DNS server for our domains: off until asked for (port 53 is often
    #: taken by a local resolver).
    dns: ListenerSettings = field(default_factory=lambda: ListenerSettings(enabled=False))
    http: ListenerSettings = field(default_factory=ListenerSettings)
    https: ListenerSettings = field(default_factory=ListenerSettings)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    smtp: SMTPSettings = field(default_factory=SMTPSettings)
    imap: IMAPSettings = field(default_factory=IMAPSettings)
    pop3: POP3Settings = field(default_factory=POP3Settings)
    tls: TLSSettings = field(default_factory=TLSSettings)
    dns: DNSSettings = field(default_factory=DNSSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    mailauth: MailAuthSettings = field(default_factory=MailAuthSettings)
    check: CheckSettings = field(default_factory=CheckSettings)
    listeners: ListenersSettings = field(default_factory=ListenersSettings)
    #: Where the settings came from, for messages; not a key.
    source: str = field(default="defaults", compare=False)

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir)

    def port(self, name: str) -> int:
        """The port listener ``name`` binds: its own setting or the standard one plus the offset."""
        listener: ListenerSettings = getattr(self.listeners, name)
        return listener.port or STANDARD_PORTS[name] + self.server.port_offset

    def addresses(self, name: str) -> list[str]:
        listener: ListenerSettings = getattr(self.listeners, name)
        return listener.address or self.server.listen

    def validate(self) -> None:
        """Cross-field checks that a single key's type cannot express."""
        if self.store.backend == "postgresql" and not self.store.url:
            raise ConfigError("store.url: required when store.backend is 'postgresql'")
        if self.store.url and not self.store.url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("store.url: must start with postgresql://")
        if bool(self.tls.cert_file) != bool(self.tls.key_file):
            raise ConfigError("tls.cert_file and tls.key_file: set both or neither")
        if not 0 <= self.server.port_offset <= 60000:
            raise ConfigError("server.port_offset: must be between 0 and 60000")
        for name in STANDARD_PORTS:
            port = self.port(name)
            if not 0 < port < 65536:
                raise ConfigError(f"listeners.{name}.port: {port} is not a valid TCP port")
        for resolver in self.dns.resolvers:
            parse_hostport(resolver, 53, key="dns.resolvers")
        for secondary in self.dns.secondaries:
            parse_secondary(secondary)
        names = [parse_tsig_key(value)[0].rstrip(".").lower() for value in self.dns.tsig_keys]
        if len(set(names)) != len(names):
            raise ConfigError("dns.tsig_keys: two keys have the same name")
        if self.store.max_batch < 1 or self.store.readers < 1:
            raise ConfigError("store.max_batch and store.readers: must be at least 1")
        if self.smtp.max_recipients < 100:
            raise ConfigError("smtp.max_recipients: RFC 5321 requires at least 100")
        q = self.queue
        if min(q.scan_interval, q.retry_min, q.lease, q.batch, q.concurrency) < 1:
            raise ConfigError("queue: intervals, lease, batch and concurrency must be positive")
        if q.retry_max < q.retry_min:
            raise ConfigError("queue.retry_max: must be at least queue.retry_min")
        if q.relayhost:
            parse_hostport(q.relayhost, 587, key="queue.relayhost")
        if not 0 < q.mta_sts_port < 65536 or q.mta_sts_timeout < 1:
            raise ConfigError("queue.mta_sts_port, queue.mta_sts_timeout: out of range")
        if q.relay_security not in ("starttls", "tls"):
            raise ConfigError("queue.relay_security: must be 'starttls' or 'tls'")
        if len(self.accounts.plus_separator) > 1:
            raise ConfigError("accounts.plus_separator: must be one character or empty")


def parse_hostport(value: str, default_port: int, *, key: str) -> tuple[str, int]:
    """Split ``host[:port]`` / ``[v6]:port``; the error names ``key``."""
    host, port = value, default_port
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ConfigError(f"{key}: {value!r} is not host[:port]")
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, p = value.partition(":")
        if not p.isdigit():
            raise ConfigError(f"{key}: {value!r} has a bad port")
        port = int(p)
    if not host or not 0 < port < 65536:
        raise ConfigError(f"{key}: {value!r} is not host[:port]")
    return host, port


def parse_secondary(value: str) -> tuple[str, int]:
    """One of ``dns.secondaries``: an IP address (a transfer is allowed by the address it
    comes from) and a port, 53 by default."""
    host, port = parse_hostport(value, 53, key="dns.secondaries")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"dns.secondaries: {value!r} is not an IP address[:port]") from None
    return host, port


#: TSIG algorithms accepted in ``dns.tsig_keys``: the HMAC-SHA family of RFC 8945 §6.
TSIG_ALGORITHMS = ("hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")
_KEY_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$")


def parse_tsig_key(value: str) -> tuple[str, str, bytes]:
    """One of ``dns.tsig_keys``, ``name:algorithm:base64secret``, as (name, algorithm,
    secret). Errors name the key, never show the secret."""
    name, _, rest = value.partition(":")
    algorithm, _, secret = rest.partition(":")
    if not _KEY_NAME.match(name) or not secret:
        raise ConfigError(f"dns.tsig_keys: {name!r}… is not name:algorithm:base64secret")
    algorithm = algorithm.lower()
    if algorithm not in TSIG_ALGORITHMS:
        listed = ", ".join(TSIG_ALGORITHMS)
        raise ConfigError(f"dns.tsig_keys: {name}: the algorithm must be one of {listed}")
    try:
        decoded = base64.b64decode(secret, validate=True)
    except binascii.Error:
        decoded = b""
    if not decoded:
        raise ConfigError(f"dns.tsig_keys: {name}: the secret is not base64")
    return name, algorithm, decoded


def load(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read settings: defaults, the TOML file, ``COURRIER_*`` variables, then ``overrides``.

    ``overrides`` are dotted keys from the command line (``{"server.data_dir": "/srv/mail"}``).
    Without ``path``, ``$COURRIER_CONFIG`` or ``<data_dir>/courrier.toml`` is read if present.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is None:
        path = env.get("COURRIER_CONFIG") or None
    if path is None:
        data_dir = (overrides or {}).get("server.data_dir") or env.get("COURRIER_SERVER_DATA_DIR")
        candidate = Path(data_dir or ServerSettings.data_dir) / "courrier.toml"
        if candidate.is_file():
            path = candidate
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such configuration file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
        source = str(p)
    for name, value in env.items():
        if name.startswith("COURRIER_") and name != "COURRIER_CONFIG":
            _set_env(raw, name, value)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    settings: Settings = dataclasses.replace(_build(Settings, raw, ""), source=source)
    settings.validate()
    return settings


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _set_env(raw: dict[str, Any], name: str, value: str) -> None:
    """Map ``COURRIER_SECTION_KEY`` onto the dataclass tree, matching the longest key names."""
    rest = name[len("COURRIER_") :].lower()
    path: list[str] = []
    cls: Any = Settings
    while dataclasses.is_dataclass(cls):
        hints = get_type_hints(cls, include_extras=True)
        match = next(
            (
                f.name
                for f in sorted(dataclasses.fields(cls), key=lambda f: -len(f.name))
                if f.init
                and f.name != "source"
                and (rest == f.name or rest.startswith(f.name + "_"))
            ),
            None,
        )
        if match is None:
            raise ConfigError(f"{name}: no setting {'.'.join([*path, rest])!r}")
        path.append(match)
        rest = rest[len(match) + 1 :]
        cls = hints[match]
        if not dataclasses.is_dataclass(cls):
            if rest:
                raise ConfigError(f"{name}: no setting {'.'.join(path)}.{rest!r}")
            _set_dotted(raw, ".".join(path), _EnvValue(value))
            return
    raise ConfigError(f"{name}: names a section, not a setting")


class _EnvValue(str):
    """A string from the environment: lists are comma-separated, booleans spelled out."""


def _build(cls: Any, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: must be a table")
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "source"}
    for key in raw:
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
            raise ConfigError(f"{prefix}{key}: unknown setting{hint}")
    values = {}
    for name in fields:
        if name in raw:
            values[name] = _convert(hints[name], raw[name], f"{prefix}{name}")
    return cls(**values)


def _convert(tp: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if get_origin(tp) is Annotated:
        if "bytes" in tp.__metadata__:
            return parse_byte_size(value, key)
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise ConfigError(f"{key}: must be one of {listed}, not {value!r}")
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if isinstance(value, _EnvValue):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list, not {value!r}")
        return [_convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported setting type {tp}")  # pragma: no cover - programming error
    if tp is bool:
        if isinstance(value, _EnvValue):
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: must be true or false, not {value!r}")
    if tp is int:
        if isinstance(value, _EnvValue) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: must be an integer, not {value!r}")
    if tp is str:
        if isinstance(value, str):
            return str(value)
        raise ConfigError(f"{key}: must be a string, not {value!r}")
    raise TypeError(f"unsupported setting type {tp}")  # pragma: no cover - programming error


def parse_byte_size(value: Any, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    raise ConfigError(f'{key}: must be a size such as 52428800, "50M" or "1G", not {value!r}')
