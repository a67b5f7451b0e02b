"""The SMTP listeners on the wire: swaks, raw pipelining, BDAT, smuggling and STARTTLS injection."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess

import pytest

from tests.support.server import PASSWORD, Running, client_tls, inbox

SWAKS = shutil.which("swaks")
needs_swaks = pytest.mark.skipif(
    SWAKS is None, reason="swaks is not installed (.ci/run installs it)"
)


def _swaks(*args: str) -> subprocess.CompletedProcess[str]:
    assert SWAKS is not None
    return subprocess.run(
        [SWAKS, "--server", "127.0.0.1", "--helo", "client.example.net", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_swaks
async def test_swaks_on_the_mx_port(running: Running) -> None:
    done = await asyncio.to_thread(
        _swaks,
        "--port",
        str(running.port("smtp")),
        "--from",
        "alice@example.net",
        "--to",
        "bob@example.org",
        "--header",
        "Subject: swaks test",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (stored,) = await inbox(running.store, "bob@example.org")
    assert b"Subject: swaks test" in stored


def _swaks_as_bob(port: int, tls: str, mechanism: str) -> subprocess.CompletedProcess[str]:
    return _swaks(
        *("--port", str(port), tls, "--auth", mechanism),
        *("--auth-user", "bob@example.org", "--auth-password", PASSWORD),
        *("--from", "bob@example.org", "--to", "bob@example.org"),
    )


@needs_swaks
async def test_swaks_starttls_auth_on_587_files_a_sent_copy(running: Running) -> None:
    done = await asyncio.to_thread(_swaks_as_bob, running.port("submission"), "--tls", "PLAIN")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(await inbox(running.store, "bob@example.org")) == 1
    assert len(await inbox(running.store, "bob@example.org", "Sent")) == 1


@needs_swaks
async def test_swaks_implicit_tls_auth_login_on_465(running: Running) -> None:
    done = await asyncio.to_thread(_swaks_as_bob, running.port("submissions"), "--tlsc", "LOGIN")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(await inbox(running.store, "bob@example.org")) == 1


@needs_swaks
async def test_swaks_relay_attempt_is_refused(running: Running) -> None:
    done = await asyncio.to_thread(
        _swaks,
        "--port",
        str(running.port("smtp")),
        "--from",
        "a@example.net",
        "--to",
        "victim@elsewhere.net",
    )
    assert done.returncode != 0
    assert "554 5.7.1" in done.stdout


def _exchange(port: int, payload: bytes, *, until: bytes, tls_after: bytes | None = None) -> bytes:
    """Send ``payload`` in one write and read replies until ``until`` appears."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock: socket.socket | ssl.SSLSocket = raw
        received = b""
        sock.sendall(payload)
        while until not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            if tls_after is not None and tls_after in received:
                sock = client_tls().wrap_socket(raw, server_hostname="mx.example.org")
                tls_after = None
                sock.sendall(b"EHLO again.example.net\r\nQUIT\r\n")
        return received


async def test_one_write_pipelined_session(running: Running) -> None:
    payload = (
        b"EHLO client.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
        b"RCPT TO:<nobody@example.org>\r\nDATA\r\nSubject: piped\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    )
    replies = await asyncio.to_thread(_exchange, running.port("smtp"), payload, until=b"221 ")
    codes = [
        line[:3] for line in replies.split(b"\r\n") if line[:3].isdigit() and line[3:4] == b" "
    ]
    assert codes == [b"220", b"250", b"250", b"250", b"550", b"354", b"250", b"221"]
    (stored,) = await inbox(running.store, "bob@example.org")
    assert stored.endswith(b"Subject: piped\r\n\r\nbody\r\n")


async def test_bdat_in_several_chunks_and_zero_last(running: Running) -> None:
    payload = (
        b"EHLO client.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
        b"BDAT 19\r\nSubject: chunks\r\n\r\nBDAT 6\r\nbody\r\nBDAT 0 LAST\r\nQUIT\r\n"
    )
    replies = await asyncio.to_thread(_exchange, running.port("smtp"), payload, until=b"221 ")
    assert replies.count(b"250 2.0.0") >= 3
    (stored,) = await inbox(running.store, "bob@example.org")
    assert stored.endswith(b"Subject: chunks\r\n\r\nbody\r\n")


SMUGGLING = [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n"]


@pytest.mark.parametrize("fake_end", SMUGGLING)
async def test_smuggling_gets_nothing_through(running: Running, fake_end: bytes) -> None:
    payload = (
        b"EHLO client.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
        b"DATA\r\nSubject: outer\r\n\r\nouter body"
        + fake_end
        + b"MAIL FROM:<ceo@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n"
    )
    replies = await asyncio.to_thread(_exchange, running.port("smtp"), payload, until=b"221 ")
    assert b"221 " in replies
    stored = await inbox(running.store, "bob@example.org")
    assert stored == []  # the message with a bare CR/LF is refused whole; nothing smuggled


async def test_starttls_injection_is_discarded(running: Running) -> None:
    payload = b"EHLO client.example.net\r\nSTARTTLS\r\nMAIL FROM:<evil@example.net>\r\n"
    replies = await asyncio.to_thread(
        _exchange, running.port("smtp"), payload, until=b"221 ", tls_after=b"220 2.0.0"
    )
    # The injected MAIL was dropped at the switch: after TLS the server only saw EHLO + QUIT.
    assert b"2.1.0" not in replies


async def test_oversize_message_is_refused(running: Running) -> None:
    limit = running.server.settings.smtp.max_message_size
    payload = b"EHLO client.example.net\r\nMAIL FROM:<a@example.net> SIZE=%d\r\nQUIT\r\n" % (
        limit + 1
    )
    replies = await asyncio.to_thread(_exchange, running.port("smtp"), payload, until=b"221 ")
    assert b"552 5.3.4" in replies


async def test_connections_per_ip_are_limited(running: Running) -> None:
    limit = running.server.settings.smtp.max_connections_per_ip
    port = running.port("smtp")
    held = []
    try:
        for _ in range(limit):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert (await reader.readline()).startswith(b"220 ")
            held.append(writer)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await reader.readline()).startswith(b"421 4.7.0")
        assert await reader.read() == b""  # and closed
        writer.close()
        held.pop().close()  # one leaves: once the server has seen it go, a new one is welcome
        greeting = b""
        for _ in range(50):
            await asyncio.sleep(0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            greeting = await reader.readline()
            held.append(writer)
            if greeting.startswith(b"220 "):
                break
            held.pop().close()
        assert greeting.startswith(b"220 ")
    finally:
        for writer in held:
            writer.close()
