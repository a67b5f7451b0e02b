"""The SMTP listeners over real sockets with Python's smtplib: MX, submission, TLS, AUTH, relay."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from courrier import config, provisioning
from courrier.server import Server
from courrier.store import Store
from tests.store.helpers import make_message

PASSWORD = "a long passphrase for the tests"


def _free_offset() -> int:
    for offset in range(21000, 60000, 97):
        ok = True
        for port in (25, 587, 465):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + offset))
                except OSError:
                    ok = False
                    break
        if ok:
            return offset
    raise RuntimeError("no free ports")


@dataclass
class Running:
    server: Server
    store: Store
    offset: int

    def port(self, name: str) -> int:
        return self.server.settings.port(name)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    offset = _free_offset()
    settings = config.load(
        env={},
        overrides={
            "server.data_dir": str(tmp_path / "data"),
            "server.hostname": "mx.example.org",
            "server.port_offset": offset,
            "server.listen": ["127.0.0.1"],
        },
    )
    server = Server(settings)
    await server.start()
    assert server.store is not None
    store = server.store
    await provisioning.add_domain(store, "example.org")
    await provisioning.add_user(store, settings, "bob@example.org", PASSWORD)
    await provisioning.add_alias(store, "sales@example.org", ["bob@example.org"])
    try:
        yield Running(server, store, offset)
    finally:
        await server.close()


def _client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _inbox(store: Store, address: str, name: str = "INBOX") -> list[bytes]:
    account = await store.get_account(address)
    assert account is not None
    box = await store.mailbox(account.id, name)
    return [await store.read_message(m.id) for m in await store.list_messages(box.id)]


async def test_mx_delivers_and_refuses(running: Running) -> None:
    raw = make_message(1)

    def talk() -> tuple[dict[str, str], tuple[int, bytes], dict[str, tuple[int, bytes]]]:
        with smtplib.SMTP(
            "127.0.0.1", running.port("smtp"), local_hostname="client.example.net"
        ) as c:
            c.ehlo()
            features = dict(c.esmtp_features)
            relay = c.docmd("MAIL FROM:<alice@example.net>")
            refused = {}
            for rcpt in (
                "victim@elsewhere.net",
                "nobody@example.org",
                "victim%elsewhere.net@example.org",
            ):
                refused[rcpt] = c.docmd(f"RCPT TO:<{rcpt}>")
            c.rset()
            c.sendmail("alice@example.net", ["bob@example.org", "sales@example.org"], raw)
            return features, relay, refused

    features, mail_reply, refused = await asyncio.to_thread(talk)
    for ext in (
        "pipelining",
        "size",
        "8bitmime",
        "smtputf8",
        "chunking",
        "dsn",
        "enhancedstatuscodes",
        "starttls",
    ):
        assert ext in features, ext
    assert "auth" not in features  # never on the MX port
    assert mail_reply[0] == 250
    assert refused["victim@elsewhere.net"][0] == 554
    assert refused["nobody@example.org"][0] == 550
    assert refused["victim%elsewhere.net@example.org"][0] == 554
    (stored,) = await _inbox(running.store, "bob@example.org")  # two RCPTs, one account: one copy
    assert stored.startswith(
        b"Return-Path: <alice@example.net>\r\nReceived: from client.example.net"
    )
    assert stored.endswith(raw)


async def test_mx_starttls(running: Running) -> None:
    def talk() -> str:
        with smtplib.SMTP("127.0.0.1", running.port("smtp")) as c:
            c.starttls(context=_client_tls())
            c.sendmail("alice@example.net", ["bob@example.org"], make_message(2))
            sock = c.sock
            assert isinstance(sock, ssl.SSLSocket)
            return str(sock.version())

    version = await asyncio.to_thread(talk)
    (stored,) = await _inbox(running.store, "bob@example.org")
    assert b"with ESMTPS id" in stored and version.encode() in stored


async def test_submission_requires_tls_then_auth_and_files_sent(running: Running) -> None:
    raw = make_message(3)

    def talk() -> tuple[bool, int, int, int]:
        with smtplib.SMTP("127.0.0.1", running.port("submission")) as c:
            c.ehlo()
            auth_before_tls = c.has_extn("auth")
            no_auth_mail = c.docmd("MAIL FROM:<bob@example.org>")[0]
            c.starttls(context=_client_tls())
            c.ehlo()
            assert c.has_extn("auth")
            with pytest.raises(smtplib.SMTPAuthenticationError):
                c.login("bob@example.org", "wrong password")
            c.login("bob@example.org", PASSWORD)
            not_owned = c.docmd("MAIL FROM:<ceo@example.org>")[0]
            c.rset()
            c.sendmail("sales@example.org", ["bob@example.org"], raw)
            remote = (
                c.docmd("MAIL FROM:<bob@example.org>")[0],
                c.docmd("RCPT TO:<x@elsewhere.net>")[0],
            )
            return auth_before_tls, no_auth_mail, not_owned, remote[1]

    auth_before_tls, no_auth_mail, not_owned, remote = await asyncio.to_thread(talk)
    assert not auth_before_tls
    assert no_auth_mail == 530
    assert not_owned == 553
    assert remote == 451  # the outbound queue is not there yet: try later, nothing lost
    (stored,) = await _inbox(running.store, "bob@example.org")
    assert b"with ESMTPSA id" in stored and stored.endswith(raw)
    (sent,) = await _inbox(running.store, "bob@example.org", "Sent")
    assert sent == raw


async def test_implicit_tls_submission(running: Running) -> None:
    def talk() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", running.port("submissions"), context=_client_tls()) as c:
            c.login("bob@example.org", PASSWORD)
            c.sendmail("bob@example.org", ["bob@example.org"], make_message(4))

    await asyncio.to_thread(talk)
    assert len(await _inbox(running.store, "bob@example.org")) == 1
