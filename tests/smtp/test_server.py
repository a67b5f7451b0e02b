"""The SMTP listeners over real sockets with Python's smtplib: MX, submission, TLS, AUTH, relay."""

from __future__ import annotations

import asyncio
import base64
import os
import smtplib
import socket
import ssl
import time
from pathlib import Path

import pytest

from tests.store.helpers import make_message
from tests.support.scram import ScramClient
from tests.support.server import PASSWORD, Running, client_tls, inbox, start_server


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
    (stored,) = await inbox(running.store, "bob@example.org")  # two RCPTs, one account: one copy
    # Return-Path, then what the checks found, then the trace of this hop (RFC 5321 §4.4).
    assert stored.startswith(b"Return-Path: <alice@example.net>\r\nAuthentication-Results: ")
    head = stored[: -len(raw)]
    assert head.index(b"\r\nReceived-SPF: ") < head.index(b"\r\nReceived: from client.example.net")
    assert stored.endswith(raw)


async def test_mx_starttls(running: Running) -> None:
    def talk() -> str:
        with smtplib.SMTP("127.0.0.1", running.port("smtp")) as c:
            c.starttls(context=client_tls())
            c.sendmail("alice@example.net", ["bob@example.org"], make_message(2))
            sock = c.sock
            assert isinstance(sock, ssl.SSLSocket)
            return str(sock.version())

    version = await asyncio.to_thread(talk)
    (stored,) = await inbox(running.store, "bob@example.org")
    assert b"with ESMTPS id" in stored and version.encode() in stored


async def test_submission_requires_tls_then_auth_and_files_sent(running: Running) -> None:
    raw = make_message(3)

    def talk() -> tuple[bool, int, int, int]:
        with smtplib.SMTP("127.0.0.1", running.port("submission")) as c:
            c.ehlo()
            auth_before_tls = c.has_extn("auth")
            no_auth_mail = c.docmd("MAIL FROM:<bob@example.org>")[0]
            c.starttls(context=client_tls())
            c.ehlo()
            assert c.has_extn("auth")
            with pytest.raises(smtplib.SMTPAuthenticationError):
                c.login("bob@example.org", "wrong password")
            c.login("bob@example.org", PASSWORD)
            not_owned = c.docmd("MAIL FROM:<ceo@example.org>")[0]
            c.rset()
            refused = c.sendmail(
                "sales@example.org",
                ["bob@example.org", "x@elsewhere.net"],
                raw,
                mail_options=["RET=HDRS", "ENVID=QQ314159", "BODY=8BITMIME"],
                rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;x@elsewhere.net"],
            )
            return auth_before_tls, no_auth_mail, not_owned, len(refused)

    auth_before_tls, no_auth_mail, not_owned, remote = await asyncio.to_thread(talk)
    assert not auth_before_tls
    assert no_auth_mail == 530
    assert not_owned == 553
    assert remote == 0  # no recipient refused: the remote one went to the outbound queue
    (queued,) = await running.store.list_queue()
    assert queued.sender == "sales@example.org"
    assert [(r.recipient, r.state, r.notify, r.orcpt) for r in queued.recipients] == [
        ("x@elsewhere.net", "queued", "FAILURE,DELAY", "rfc822;x@elsewhere.net")
    ]
    assert (queued.envid, queued.ret, queued.body) == ("QQ314159", "HDRS", "8BITMIME")
    (stored,) = await inbox(running.store, "bob@example.org")
    assert b"with ESMTPSA id" in stored and stored.endswith(raw)
    (sent,) = await inbox(running.store, "bob@example.org", "Sent")
    # The copy is the message as it left: DKIM-signed for example.org (RSA and Ed25519).
    signatures, _, rest = sent.partition(b"\r\n" + raw[:20])
    assert raw[:20] + rest == raw
    assert signatures.count(b"DKIM-Signature: ") == 2 and b"d=example.org;" in signatures


async def test_implicit_tls_submission(running: Running) -> None:
    def talk() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", running.port("submissions"), context=client_tls()) as c:
            c.login("bob@example.org", PASSWORD)
            c.sendmail("bob@example.org", ["bob@example.org"], make_message(4))

    await asyncio.to_thread(talk)
    assert len(await inbox(running.store, "bob@example.org")) == 1


async def test_full_disk_gets_452_and_loses_nothing(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    async with start_server(small_disk / "data") as server:
        ballast.write_bytes(b"\0" * (small_disk_free(small_disk) - 300_000))

        def send_until_full() -> tuple[list[int], tuple[int, bytes]]:
            accepted: list[int] = []
            with smtplib.SMTP("127.0.0.1", server.port("smtp")) as c:
                for n in range(1000):
                    try:
                        c.sendmail("alice@example.net", ["bob@example.org"], big_message(n))
                    except smtplib.SMTPDataError as exc:
                        return accepted, (exc.smtp_code, exc.smtp_error)
                    accepted.append(n)
            raise AssertionError("the disk never filled up")

        accepted, refusal = await asyncio.to_thread(send_until_full)
        assert refusal[0] == 452 and refusal[1].startswith(b"4.3.1")
        assert accepted
        stored = await inbox(server.store, "bob@example.org")
        assert [s[s.index(b"Subject:") :] for s in stored] == [
            big_message(n)[big_message(n).index(b"Subject:") :] for n in accepted
        ]
        ballast.unlink()  # the operator makes room: mail flows again
        await asyncio.to_thread(send, server.port("smtp"), big_message(9999))
        assert len(await inbox(server.store, "bob@example.org")) == len(accepted) + 1


def small_disk_free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def big_message(n: int) -> bytes:
    return make_message(n) + (b"x" * 70 + b"\r\n") * 400


def send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("alice@example.net", ["bob@example.org"], raw)


async def test_a_silent_client_gets_421_after_the_timeout(tmp_path: Path) -> None:
    """RFC 5321 §4.5.3.2.7: a server timeout closes with 421 (here 1 s, 5 minutes by default);
    a client that keeps talking is not cut off."""
    async with start_server(tmp_path / "data", **{"smtp.idle_timeout": 1}) as running:

        def talk() -> tuple[bytes, list[int]]:
            with socket.create_connection(("127.0.0.1", running.port("smtp"))) as silent:
                silent.settimeout(10)
                with smtplib.SMTP("127.0.0.1", running.port("smtp")) as busy:
                    codes = []
                    for _ in range(6):  # 1.8 s of commands: longer than the timeout
                        time.sleep(0.3)
                        codes.append(busy.noop()[0])
                    reply = b""
                    while not reply.endswith(b"Timeout\r\n") and (chunk := silent.recv(4096)):
                        reply += chunk
                    return reply, codes

        reply, codes = await asyncio.to_thread(talk)
        assert reply.splitlines()[-1].startswith(b"421 4.4.2 ")
        assert codes == [250] * 6


async def test_submission_scram_sha256(running: Running) -> None:
    def talk() -> tuple[int, bytes]:
        client = ScramClient("bob@example.org", PASSWORD)
        with smtplib.SMTP("127.0.0.1", running.port("submission")) as c:
            c.starttls(context=client_tls())
            c.ehlo()
            code, challenge = c.docmd("AUTH", "SCRAM-SHA-256")
            while code == 334:
                answer = client.step(base64.b64decode(challenge))
                code, challenge = c.docmd(base64.b64encode(answer).decode())
            return code, challenge

    code, text = await asyncio.to_thread(talk)
    assert code == 235, text
