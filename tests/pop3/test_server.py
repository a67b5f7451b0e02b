"""The POP3 listeners over real sockets with Python's poplib: both TLS modes, login rules, every
command, SASL, the maildrop lock, limits, and POP3 next to SMTP and IMAP on the same mailbox
(keep, delete, a dropped connection, an IDLE-ing IMAP client seeing the POP3 deletions)."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import poplib
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.store.helpers import make_message
from tests.support.scram import ScramClient
from tests.support.server import PASSWORD, Running, client_tls, inbox, start_server

USER = "bob@example.org"


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Blocking clients run in a thread: the server runs on this test's event loop."""
    return await asyncio.to_thread(fn)


def smtp_send(running: Running, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", running.port("smtp")) as s:
        s.sendmail("alice@example.net", [USER], raw)


def pop3s(running: Running, password: str = PASSWORD) -> poplib.POP3_SSL:
    c = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls(), timeout=30)
    c.user(USER)
    c.pass_(password)
    return c


def imaps(running: Running) -> imaplib.IMAP4_SSL:
    c = imaplib.IMAP4_SSL("127.0.0.1", running.port("imaps"), ssl_context=client_tls())
    c.login(USER, PASSWORD)
    return c


def retr(c: poplib.POP3, n: int) -> bytes:
    """RETR n, back to the message's bytes (poplib strips line ends and unstuffs dots)."""
    _, lines, _ = c.retr(n)
    return b"".join(line + b"\r\n" for line in lines)


async def stored(running: Running) -> list[bytes]:
    return await inbox(running.store, USER)


async def test_pop3s_every_command(running: Running) -> None:
    messages = [
        make_message(1, body="first\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n"),
        make_message(2, size=300_000),  # several writes; sliced, not copied, by the core
        make_message(3),
    ]
    for raw in messages:
        await asyncio.to_thread(smtp_send, running, raw)
    on_disk = await stored(running)

    def talk() -> dict[str, Any]:
        c = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls())
        r: dict[str, Any] = {"welcome": c.getwelcome(), "capa": c.capa()}
        r["user"] = c.user(USER)
        r["pass"] = c.pass_(PASSWORD)
        r["capa_after"] = c.capa()
        r["stat"] = c.stat()
        r["list"] = c.list()
        r["list2"] = c.list(2)
        r["uidl"] = c.uidl()
        r["uidl3"] = c.uidl(3)
        r["retr"] = [retr(c, n) for n in (1, 2, 3)]
        r["top"] = c.top(1, 1)
        r["noop"] = c.noop()
        r["dele"] = c.dele(2)
        r["stat_after_dele"] = c.stat()
        try:
            c.retr(2)
        except poplib.error_proto as exc:
            r["retr_deleted"] = exc.args[0]
        r["rset"] = c.rset()
        r["dele3"] = c.dele(3)
        r["quit"] = c.quit()
        return r

    r = await in_thread(talk)
    assert r["welcome"] == b"+OK courrier POP3 server ready"
    assert set(r["capa"]) == {
        "TOP",
        "USER",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "AUTH-RESP-CODE",
        "SASL",
        "IMPLEMENTATION",
    }
    assert r["capa"]["SASL"] == ["PLAIN", "SCRAM-SHA-256"] and "STLS" not in r["capa"]
    assert "USER" not in r["capa_after"] and "SASL" not in r["capa_after"]
    sizes = [len(m) for m in on_disk]
    assert r["pass"] == b"+OK Logged in, maildrop has 3 messages (%d octets)" % sum(sizes)
    assert r["stat"] == (3, sum(sizes))
    assert r["list"][1] == [b"%d %d" % (n, size) for n, size in enumerate(sizes, 1)]
    assert r["list2"] == b"+OK 2 %d" % sizes[1]
    account = await running.store.get_account(USER)
    assert account is not None
    box = await running.store.mailbox(account.id, "INBOX")
    assert r["uidl"][1] == [b"%d %d.%d" % (n, box.uidvalidity, n) for n in (1, 2, 3)]
    assert r["uidl3"] == b"+OK 3 %d.3" % box.uidvalidity
    assert r["retr"] == on_disk  # byte for byte, dots and all
    assert all(raw.endswith(sent) for raw, sent in zip(r["retr"], messages, strict=True))
    top_lines = r["top"][1]
    assert top_lines[-2:] == [b"", b"first"]
    assert b"Subject: Message 1" in top_lines and b".leading dot" not in top_lines
    assert r["noop"] == b"+OK"
    assert r["dele"] == b"+OK Message 2 deleted"
    assert r["stat_after_dele"] == (2, sizes[0] + sizes[2])
    assert r["retr_deleted"] == b"-ERR Message 2 already deleted"
    assert r["rset"].startswith(b"+OK Maildrop has 3 messages")
    assert r["quit"] == b"+OK courrier POP3 server signing off (1 messages deleted)"
    assert await stored(running) == on_disk[:2]


async def test_pop3_stls_and_no_password_before_tls(running: Running) -> None:
    def talk() -> dict[str, Any]:
        c = poplib.POP3("127.0.0.1", running.port("pop3"))
        r: dict[str, Any] = {"capa": c.capa()}
        try:
            c.user(USER)
        except poplib.error_proto as exc:
            r["user"] = exc.args[0]
        try:
            c._shortcmd("AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode())  # type: ignore[attr-defined]
        except poplib.error_proto as exc:
            r["auth"] = exc.args[0]
        r["stls"] = c.stls(context=client_tls())
        r["tls"] = isinstance(c.sock, ssl.SSLSocket)
        r["capa_tls"] = c.capa()
        c.user(USER)
        r["pass"] = c.pass_(PASSWORD)
        r["quit"] = c.quit()
        return r

    r = await in_thread(talk)
    assert "STLS" in r["capa"] and "USER" not in r["capa"]
    assert r["capa"]["SASL"] == ["SCRAM-SHA-256"]
    refusal = b"-ERR [AUTH] Plaintext authentication disallowed without TLS, use STLS first"
    assert r["user"] == refusal and r["auth"] == refusal
    assert r["stls"] == b"+OK Begin TLS negotiation" and r["tls"]
    assert "STLS" not in r["capa_tls"] and "USER" in r["capa_tls"]
    assert r["pass"].startswith(b"+OK Logged in") and r["quit"].startswith(b"+OK")


async def test_plaintext_on_loopback(tmp_path: Path) -> None:
    async with start_server(tmp_path / "data", **{"pop3.plaintext_on_loopback": True}) as running:
        raw = make_message(1, body=".\r\n.dot\r\n", size=200_000)
        await asyncio.to_thread(smtp_send, running, raw)

        def talk() -> tuple[dict[str, Any], bytes, bytes]:
            c = poplib.POP3("127.0.0.1", running.port("pop3"))
            capa = c.capa()
            c.user(USER)
            reply = c.pass_(PASSWORD)
            fetched = retr(c, 1)
            c.quit()
            return capa, reply, fetched

        capa, reply, fetched = await in_thread(talk)
        assert [fetched] == await stored(running)
    assert "USER" in capa and capa["SASL"] == ["PLAIN", "SCRAM-SHA-256"]
    assert reply.startswith(b"+OK Logged in")


@pytest.mark.parametrize("mechanism", ["PLAIN", "PLAIN-CHALLENGE", "SCRAM-SHA-256"])
async def test_auth(running: Running, mechanism: str) -> None:
    await in_thread(lambda: smtp_send(running, make_message(1)))

    def talk() -> tuple[bytes, tuple[int, int]]:
        c = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls())
        plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        if mechanism == "PLAIN":  # RFC 5034 §4: with an initial response
            reply: bytes = c._shortcmd("AUTH PLAIN " + plain)  # type: ignore[attr-defined]
        elif mechanism == "PLAIN-CHALLENGE":
            c._putcmd("AUTH PLAIN")  # type: ignore[attr-defined]
            assert c._getline()[0] == b"+ "  # type: ignore[attr-defined]
            reply = c._shortcmd(plain)  # type: ignore[attr-defined]
        else:
            client = ScramClient(USER, PASSWORD)
            first = base64.b64encode(client.step(b"")).decode()
            c._putcmd("AUTH SCRAM-SHA-256 " + first)  # type: ignore[attr-defined]
            while True:
                line: bytes = c._getline()[0]  # type: ignore[attr-defined]
                if not line.startswith(b"+ "):
                    break
                # The last challenge is the server-final message; its answer is empty.
                answer = client.step(base64.b64decode(line[2:]))
                c._putcmd(base64.b64encode(answer).decode())  # type: ignore[attr-defined]
            reply = line
            assert client.stage == 3  # the server proved it knows the password
        stat = c.stat()
        c.quit()
        return reply, stat

    reply, stat = await in_thread(talk)
    assert reply.startswith(b"+OK Logged in") and stat[0] == 1


async def test_auth_wrong_password_and_cancel(running: Running) -> None:
    def talk() -> list[bytes]:
        c = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls())
        out = []
        bad = base64.b64encode(f"\0{USER}\0not the password".encode()).decode()
        for command in ("AUTH PLAIN " + bad, "AUTH SCRAM-SHA-256"):
            c._putcmd(command)  # type: ignore[attr-defined]
            line: bytes = c._getline()[0]  # type: ignore[attr-defined]
            if line.startswith(b"+ "):
                c._putcmd("*")  # type: ignore[attr-defined]
                line = c._getline()[0]  # type: ignore[attr-defined]
            out.append(line)
        c.quit()
        return out

    assert await in_thread(talk) == [
        b"-ERR [AUTH] Authentication failed",
        b"-ERR Authentication cancelled",
    ]


async def test_failed_logins_are_slowed_then_disconnected(running: Running) -> None:
    def talk() -> tuple[list[bytes], float, str]:
        c = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls())
        errors = []
        start = time.perf_counter()
        for _ in range(3):
            c.user(USER)
            try:
                c.pass_("not the password")
            except poplib.error_proto as exc:
                errors.append(exc.args[0])
        elapsed = time.perf_counter() - start
        try:
            c.noop()
            after = "answered"
        except (poplib.error_proto, OSError) as exc:
            after = str(exc)
        return errors, elapsed, after

    errors, elapsed, after = await in_thread(talk)
    assert errors == [
        b"-ERR [AUTH] Authentication failed",
        b"-ERR [AUTH] Authentication failed",
        b"-ERR [AUTH] Authentication failed; too many failures, closing connection",
    ]
    assert elapsed >= 0.5 + 1.0 + 1.5 - 0.1  # the delay grows with each failure
    assert after != "answered"


async def test_second_pop3_session_is_refused_in_use(running: Running) -> None:
    await in_thread(lambda: smtp_send(running, make_message(1)))

    def talk() -> dict[str, Any]:
        first = pop3s(running)
        r: dict[str, Any] = {}
        # The lock is one for both listeners: 995 and 110 after STLS.
        second = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls())
        second.user(USER)
        try:
            second.pass_(PASSWORD)
        except poplib.error_proto as exc:
            r["in_use"] = exc.args[0]
        third = poplib.POP3("127.0.0.1", running.port("pop3"))
        third.stls(context=client_tls())
        third.user(USER)
        try:
            third.pass_(PASSWORD)
        except poplib.error_proto as exc:
            r["in_use_110"] = exc.args[0]
        # IMAP is not locked out.
        imap = imaps(running)
        r["imap_select"] = imap.select("INBOX")
        imap.logout()
        r["first_stat"] = first.stat()
        first.quit()
        # Once the first session is over, the maildrop is free again (same connection).
        second.user(USER)
        r["after_quit"] = second.pass_(PASSWORD)
        second.quit()
        third.quit()
        return r

    r = await in_thread(talk)
    refusal = b"-ERR [IN-USE] Maildrop already in use by another POP3 session"
    assert r["in_use"] == refusal and r["in_use_110"] == refusal
    assert r["imap_select"] == ("OK", [b"1"])
    assert r["first_stat"][0] == 1
    assert r["after_quit"].startswith(b"+OK Logged in")


async def test_seed_002_keep_then_delete_then_dropped_connection(running: Running) -> None:
    """Mail sent over SMTP, fetched over POP3 with "keep": still there for IMAP; fetched with
    delete: gone for IMAP right after QUIT; DELE then a dropped connection: nothing lost."""
    sent = [make_message(n, subject=f"Seed {n}") for n in (1, 2)]
    for raw in sent:
        await asyncio.to_thread(smtp_send, running, raw)

    def keep() -> tuple[list[bytes], list[bytes], tuple[str, list[Any]], list[Any]]:
        c = pop3s(running)
        uidl = c.uidl()[1]
        fetched = [retr(c, n) for n in (1, 2)]
        c.quit()
        again = pop3s(running)
        uidl_again = again.uidl()[1]
        again.quit()
        assert uidl_again == uidl  # "leave on server" clients never download twice
        imap = imaps(running)
        selected = imap.select("INBOX")
        bodies = imap.fetch("1:*", "(BODY.PEEK[])")[1]
        imap.logout()
        return uidl, fetched, selected, bodies

    uidl, fetched, selected, bodies = await in_thread(keep)
    assert [line.split()[0] for line in uidl] == [b"1", b"2"]
    assert [raw.endswith(s) for raw, s in zip(fetched, sent, strict=True)] == [True, True]
    assert selected == ("OK", [b"2"])
    assert [b[1] for b in bodies if isinstance(b, tuple)] == fetched

    def dropped() -> None:
        c = pop3s(running)
        c.dele(1)
        c.dele(2)
        c.sock.close()  # no QUIT: RFC 1939 §6, no UPDATE state

    await in_thread(dropped)
    assert await stored(running) == fetched
    await wait_until_unlocked(running)

    def delete() -> tuple[bytes, tuple[str, list[Any]]]:
        c = pop3s(running)
        for n in (1, 2):
            retr(c, n)
            c.dele(n)
        bye: bytes = c.quit()
        imap = imaps(running)  # right after the +OK: no delay, no polling
        selected = imap.select("INBOX")
        imap.logout()
        return bye, selected

    bye, selected_after = await in_thread(delete)
    assert bye == b"+OK courrier POP3 server signing off (2 messages deleted)"
    assert selected_after == ("OK", [b"0"])
    assert await stored(running) == []


async def wait_until_unlocked(running: Running) -> None:
    """The server notices a dropped connection asynchronously; wait for the lock to go."""
    for _ in range(100):
        try:
            await in_thread(lambda: pop3s(running).quit())
            return
        except poplib.error_proto as exc:
            assert b"IN-USE" in exc.args[0]
            await asyncio.sleep(0.05)
    raise AssertionError("the maildrop lock was not released after the connection dropped")


async def test_imap_sessions_see_the_pop3_deletions(running: Running) -> None:
    for n in (1, 2, 3):
        await asyncio.to_thread(smtp_send, running, make_message(n))

    def talk() -> tuple[list[bytes], list[Any]]:
        idler, nooper = imaps(running), imaps(running)
        idler.select("INBOX")
        nooper.select("INBOX")
        tag = idler._new_tag()
        idler.send(tag + b" IDLE\r\n")
        assert idler.readline().startswith(b"+")
        c = pop3s(running)
        c.dele(1)
        c.dele(3)
        c.quit()
        pushed = [idler.readline(), idler.readline()]
        idler.send(b"DONE\r\n")
        while not idler.readline().startswith(tag):
            pass
        idler.logout()
        nooper.noop()
        expunged = nooper.untagged_responses.pop("EXPUNGE", [])
        nooper.logout()
        return pushed, expunged

    pushed, expunged = await in_thread(talk)
    # Messages 1 and 3, pushed while idling (the order is the IMAP server's choice).
    assert pushed in ([b"* 3 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"], [b"* 1 EXPUNGE\r\n"] * 2)
    assert expunged in ([b"3", b"1"], [b"1", b"1"])
    (left,) = await stored(running)
    assert left.endswith(make_message(2))


async def test_maildrop_is_the_inbox_at_login(running: Running) -> None:
    for n in (1, 2):
        await asyncio.to_thread(smtp_send, running, make_message(n))

    def talk() -> dict[str, Any]:
        c = pop3s(running)
        r: dict[str, Any] = {}
        # Meanwhile: IMAP expunges message 1, SMTP delivers message 3.
        imap = imaps(running)
        imap.select("INBOX")
        imap.store("1", "+FLAGS", "(\\Deleted)")
        imap.expunge()
        imap.logout()
        smtp_send(running, make_message(3))
        r["stat"] = c.stat()  # numbers are stable for the session
        try:
            c.retr(1)
        except poplib.error_proto as exc:
            r["retr_gone"] = exc.args[0]
        r["retr2"] = retr(c, 2)
        r["dele_gone"] = c.dele(1)
        r["quit"] = c.quit()
        later = pop3s(running)
        r["later_stat"] = later.stat()
        later.quit()
        return r

    r = await in_thread(talk)
    assert r["stat"][0] == 2
    assert r["retr_gone"] == b"-ERR Message 1 was removed by another session"
    assert r["retr2"].endswith(make_message(2))
    assert r["dele_gone"] == b"+OK Message 1 deleted"
    assert r["quit"] == b"+OK courrier POP3 server signing off (1 messages deleted)"
    assert r["later_stat"][0] == 2  # messages 2 and 3


async def test_bad_commands_and_long_lines(running: Running) -> None:
    def talk() -> list[bytes]:
        sock = client_tls().wrap_socket(
            socket.create_connection(("127.0.0.1", running.port("pop3s")))
        )
        stream = sock.makefile("rb")
        lines = [stream.readline()]
        sock.sendall(b"NOOP " + b"x" * 300 + b"\r\nSTAT\r\n")
        lines += [stream.readline(), stream.readline()]
        sock.sendall(b"FROB\r\n" * 10)
        while line := stream.readline():
            lines.append(line)
        sock.close()
        return lines

    lines = await in_thread(talk)
    assert lines[:3] == [
        b"+OK courrier POP3 server ready\r\n",
        b"-ERR Line too long\r\n",
        b"-ERR STAT is not allowed before login\r\n",
    ]
    assert lines[-1] == b"-ERR Unknown command FROB; too many errors, closing connection\r\n"
    assert len(lines) == 3 + 8  # the tenth error closes the connection


async def test_pipelining(running: Running) -> None:
    for n in (1, 2):
        await asyncio.to_thread(smtp_send, running, make_message(n))

    def talk() -> bytes:
        sock = client_tls().wrap_socket(
            socket.create_connection(("127.0.0.1", running.port("pop3s")))
        )
        batch = f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nRETR 2\r\nQUIT\r\n"
        sock.sendall(batch.encode())  # RFC 2449 §6.6: all at once
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
        sock.close()
        return got

    got = await in_thread(talk)
    assert got.count(b"\r\n.\r\n") == 2 and got.endswith(
        b"+OK courrier POP3 server signing off\r\n"
    )


async def test_timeouts_close_without_deleting(tmp_path: Path) -> None:
    overrides = {"pop3.idle_timeout": 1, "pop3.login_timeout": 1}
    async with start_server(tmp_path / "data", **overrides) as running:
        await in_thread(lambda: smtp_send(running, make_message(1)))

        def talk() -> tuple[str, str]:
            silent = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls())
            c = pop3s(running)
            c.dele(1)
            time.sleep(1.5)
            outcomes = []
            for client in (silent, c):
                try:
                    client.noop()
                    outcomes.append("answered")
                except (poplib.error_proto, OSError) as exc:
                    outcomes.append(str(exc))
            return outcomes[0], outcomes[1]

        before_login, after_login = await in_thread(talk)
        assert "EOF" in before_login and "EOF" in after_login  # closed, no response (§3)
        assert len(await stored(running)) == 1


async def test_connection_limit(tmp_path: Path) -> None:
    async with start_server(tmp_path / "data", **{"pop3.max_connections_per_ip": 1}) as running:

        def talk() -> str:
            first = poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls())
            try:
                poplib.POP3_SSL("127.0.0.1", running.port("pop3s"), context=client_tls())
                refused = "admitted"
            except poplib.error_proto as exc:
                refused = exc.args[0].decode()
            first.quit()
            return refused

        assert await in_thread(talk) == "-ERR [SYS/TEMP] Too many connections, try again later"
