"""Loopback stand-ins for ``courrier check``: the DNS of a good domain and of broken ones, and
an HTTPS server for MTA-STS policies and BIMI logos. Each broken domain is the good set-up
with one fault planted, so the check must report that fault and nothing else.

Addresses: each domain's MX host has its own loopback address (``MX_ADDRESSES``), so that one
SMTP port (``--smtp-port``) reaches a different server per domain; the HTTPS server is on
``HTTPS_ADDRESS``. Every MX address has a PTR naming its MX host and that name's A record
leads back (forward-confirmed), as on a well-run host.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.pki import Issued

HTTPS_ADDRESS = "127.0.0.20"
#: The one block list of the tests; an address listed on it answers 127.0.0.2 (RFC 5782 §5).
DNSBL = "bl.test"
LOGO = b'<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps"></svg>'

Zone = dict[str, list[dict[str, Any]]]


def dkim_value(bits: int) -> list[str]:
    """A DKIM key record of an RSA key of ``bits``, as strings of at most 255 octets."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    return [text[i : i + 255] for i in range(0, len(text), 255)]


_DKIM_2048 = dkim_value(2048)


def reverse(address: str) -> str:
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa"


def sts_policy(*mx: str, mode: str = "enforce", max_age: int = 604800) -> str:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return "\r\n".join(lines) + "\r\n"


@dataclass
class Domain:
    """A domain's stand-in DNS, good unless changed: ``zone`` (name → records) and the
    MTA-STS policy its HTTPS host serves."""

    name: str
    address: str
    mx_host: str = ""
    policy: str = ""
    zone: Zone = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.name
        self.mx_host = self.mx_host or f"mx.{d}"
        self.policy = self.policy or sts_policy(self.mx_host)
        self.zone = {
            d: [{"MX": [10, self.mx_host]}, {"TXT": "v=spf1 mx include:_spf.provider.test -all"}],
            self.mx_host: [{"A": self.address}],
            reverse(self.address): [{"PTR": self.mx_host}],
            f"sel1._domainkey.{d}": [{"TXT": _DKIM_2048}],
            f"_dmarc.{d}": [{"TXT": f"v=DMARC1; p=reject; rua=mailto:dmarc@{d}"}],
            f"_mta-sts.{d}": [{"TXT": "v=STSv1; id=20261123"}],
            f"mta-sts.{d}": [{"A": HTTPS_ADDRESS}],
            f"_smtp._tls.{d}": [{"TXT": f"v=TLSRPTv1; rua=mailto:tls-reports@{d}"}],
        }

    def set(self, name: str, *records: dict[str, Any]) -> Domain:
        """Replace the records at ``name`` (none: remove the name)."""
        if records:
            self.zone[name] = list(records)
        else:
            self.zone.pop(name, None)
        return self


def shared_zone() -> Zone:
    """What the domains have in common: the SPF include of their provider."""
    return {"_spf.provider.test": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}]}


def merged(*domains: Domain) -> Zone:
    zone = shared_zone()
    for domain in domains:
        zone.update(domain.zone)
    return zone


@dataclass
class HTTPSServer:
    """``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` for each domain (by Host), and
    ``/logo.svg``, with one certificate naming every host."""

    policies: dict[str, str]
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ssl.SSLError):
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            path = head.split(b" ", 2)[1].decode()
            host = ""
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "host":
                    host = value.strip().split(":")[0]
            status, media, body = self._answer(host, path)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: {media}\r\nContent-Length: {len(body)}"
                "\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()

    def _answer(self, host: str, path: str) -> tuple[int, str, bytes]:
        if path == "/logo.svg":
            return 200, "image/svg+xml", LOGO
        policy = self.policies.get(host.removeprefix("mta-sts."))
        if path == "/.well-known/mta-sts.txt" and policy is not None:
            return 200, "text/plain", policy.encode()
        return 404, "text/plain", b"not found"

    @contextlib.asynccontextmanager
    async def serving(self, issued: Issued, directory: Path) -> AsyncIterator[int]:
        cert, key = issued.write(directory, "https")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = await asyncio.start_server(self.handle, HTTPS_ADDRESS, 0, ssl=context)
        async with server:
            yield server.sockets[0].getsockname()[1]
