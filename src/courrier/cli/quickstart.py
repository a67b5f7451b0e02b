"""`courrier quickstart`: first-run set-up of a data directory, a domain and its admin.

Writes ``<data>/courrier.toml``, makes the self-signed certificate, adds the domain with a
``postmaster`` admin account (password generated and shown once) and an ``abuse`` alias
(RFC 2142), then prints the DNS records to publish and the settings for mail clients.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from courrier import config, provisioning
from courrier.cli.common import FAILURE, OK, Subparsers, add_location_options, load_settings
from courrier.security.certificates import describe, ensure_certificate
from courrier.store import open_store


def register(sub: Subparsers) -> None:
    p = sub.add_parser("quickstart", help="first-run set-up: data directory, domain, admin")
    add_location_options(p)
    p.add_argument("--domain", help="mail domain (default: derived from the host name)")
    p.add_argument("--hostname", help="this server's public host name (default: the FQDN)")
    p.add_argument("--port-offset", type=int, default=0, metavar="N", help="port offset to record")
    p.set_defaults(func=run)


def default_names(fqdn: str) -> tuple[str, str]:
    """(hostname, domain): ``mail.example.org`` → the domain ``example.org``."""
    labels = fqdn.lower().rstrip(".").split(".")
    if len(labels) >= 3:
        return ".".join(labels), ".".join(labels[1:])
    if len(labels) == 2:
        return "mail." + ".".join(labels), ".".join(labels)
    return "mail.courrier.test", "courrier.test"


def _config_text(data_dir: Path, hostname: str, port_offset: int) -> str:
    return (
        "# courrier configuration, written by `courrier quickstart`.\n"
        "# Every setting and its default: `courrier config show`.\n\n"
        "[server]\n"
        f'hostname = "{hostname}"\n'
        f'data_dir = "{data_dir}"\n'
        f"port_offset = {port_offset}\n\n"
        "[store]\n"
        'backend = "sqlite"\n'
    )


async def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    data_dir = settings.data_path.resolve()
    config_path = Path(args.config) if args.config else data_dir / "courrier.toml"
    if (data_dir / "courrier.db").exists() or config_path.exists():
        print(f"courrier is already set up in {data_dir}; nothing was changed.")
        return FAILURE
    host_default, domain_default = default_names(args.hostname or socket.getfqdn())
    hostname = (args.hostname or host_default).lower().rstrip(".")
    domain = provisioning.normalize_domain(args.domain or domain_default)
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(_config_text(data_dir, hostname, args.port_offset), encoding="utf-8")
    settings = config.load(config_path)
    cert, _, _ = ensure_certificate(settings)
    async with await open_store(settings) as store:
        await provisioning.add_domain(store, domain)
        admin = await provisioning.add_user(
            store, settings, f"postmaster@{domain}", None, role="admin"
        )
        await provisioning.add_alias(store, f"abuse@{domain}", [admin.account.address])
        records = await provisioning.domain_records(store, settings, domain)
    offset = settings.server.port_offset
    print(f"courrier is set up in {data_dir}\n")
    print(f"  configuration  {config_path}")
    print(f"  host name      {hostname}")
    print(f"  domain         {domain}")
    print(f"  admin          {admin.account.address}")
    print(f"  password       {admin.generated_password}   (shown only now; keep it safe)")
    print(f"  certificate    self-signed: {describe(cert)}\n")
    print("DNS records to publish (courrier domain dns shows them again):\n")
    for record in records:
        print(f"  {record.zone_line()}")
    print("\nMail client settings (Thunderbird, K-9, Apple Mail):\n")
    print(f"  IMAP  {hostname} port {993 + offset}  SSL/TLS   user name = full address")
    print(f"  POP3  {hostname} port {995 + offset}  SSL/TLS")
    print(f"  SMTP  {hostname} port {465 + offset}  SSL/TLS   (or {587 + offset} STARTTLS)")
    print("\nNext: courrier user add someone@" + domain)
    return OK
