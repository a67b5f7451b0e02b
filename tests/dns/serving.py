"""courrier serving example.org's zone on a loopback port for the DNS tests, and free ports for
the other DNS software they start (unbound, NSD)."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.server import Running, start_server


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **dns_settings: object) -> AsyncIterator[Running]:
    """courrier serving example.org (mail host mail.example.org at 192.0.2.25 and
    2001:db8::25 unless ``host_addresses`` says otherwise), with ``dns.*`` settings."""
    assert shutil.which("dig"), "dig is needed: apt-get install bind9-dnsutils (.ci/run)"
    settings = {f"dns.{name}": value for name, value in dns_settings.items()}
    async with start_server(
        tmp_path / "data",
        **{
            "listeners.dns.enabled": True,
            "server.hostname": "mail.example.org",
            "dns.host_addresses": ["192.0.2.25", "2001:db8::25"],
            **settings,
        },
    ) as running:
        assert running.server.dns is not None
        await running.server.dns.refresh()  # example.org was added after the start
        yield running


def free_port(address: str) -> int:
    """A port free for both UDP and TCP on ``address``."""
    while True:
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind((address, port))
            except OSError:
                continue
            return port
