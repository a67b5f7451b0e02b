"""`courrier send-test` as a user runs it against a running courrier: submission with AUTH over
STARTTLS and over implicit TLS (the message arrives in the mailbox; the transcript shows the
conversation, never the password), a wrong password (exit 1 and the 535), a certificate the
system does not trust (refused unless told which CA), and the recipient domain's MX found
through a stand-in DNS when no server is given."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.test_cli import courrier
from tests.support.pki import Authority
from tests.support.server import PASSWORD, Running, inbox, start_server
from tests.support.spfzone import ZoneServer


@dataclass
class Lab:
    running: Running
    ca_file: str


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    authority = Authority()
    # "localhost": what a user gives --server on the server itself.
    cert, key = authority.issue("mx.example.org", "localhost").write(tmp_path / "tls", "mx")
    ca_file = str(authority.write_root(tmp_path / "ca.pem"))
    async with start_server(
        tmp_path / "data", **{"tls.cert_file": str(cert), "tls.key_file": str(key)}
    ) as running:
        yield Lab(running, ca_file)


async def send_test(*args: str, stdin: str = "") -> tuple[int, str, str]:
    # A process of its own, waited for in a thread: the server answers from this event loop.
    done = await asyncio.to_thread(courrier, "send-test", "--timeout", "10", *args, stdin=stdin)
    return done.returncode, done.stdout, done.stderr


async def arrived(lab: Lab, subject: str) -> bool:
    for _ in range(50):
        if any(subject.encode() in m for m in await inbox(lab.running.store, "bob@example.org")):
            return True
        await asyncio.sleep(0.1)
    return False


def submission(lab: Lab, *more: str, server: str = "") -> list[str]:
    port = lab.running.port("submission")
    return [
        "--server", server or f"localhost:{port}", "--to", "bob@example.org",
        "--from", "bob@example.org", "--auth", "bob@example.org", "--password-stdin", *more,
    ]  # fmt: skip


async def test_submission_with_auth_over_starttls(lab: Lab) -> None:
    code, out, err = await send_test(
        *submission(lab, "--starttls", "--ca-file", lab.ca_file, "--subject", "Hello over 587"),
        stdin=PASSWORD + "\n",
    )
    assert code == 0, out + err
    lines = out.splitlines()
    port = lab.running.port("submission")
    assert lines[0] == f"=== Trying localhost:{port}..."
    assert lines[1].startswith("=== Connected to localhost")
    assert lines[2].startswith("<-  220 ")
    assert " -> EHLO localhost" in lines and " -> STARTTLS" in lines
    tls = lines.index(" -> STARTTLS") + 2
    assert lines[tls].startswith("=== TLS started with cipher TLSv1.")
    assert "=== TLS certificate subject CN=mx.example.org" in lines
    assert any(line.endswith("checked for localhost") for line in lines), out
    assert " ~> AUTH PLAIN ***" in lines and "<~  235 " in " ".join(lines)
    assert " ~> Subject: Hello over 587" in lines
    assert any(line.startswith(" ~> Message-ID: <") for line in lines)
    assert lines[-1] == "=== Connection closed with remote host."
    assert PASSWORD not in out and "YWxpY2" not in out
    assert await arrived(lab, "Hello over 587")

    # Implicit TLS (RFC 8314): TLS before the greeting, the port of submissions given.
    port = lab.running.port("submissions")
    code, out, err = await send_test(
        *submission(lab, "--tls", "--ca-file", lab.ca_file, "--subject", "Hello over 465",
                    server=f"localhost:{port}"),
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[2].startswith("=== TLS started with cipher TLSv1.")
    assert any(line.startswith("<~  220 ") for line in lines) and " -> EHLO" not in out
    assert await arrived(lab, "Hello over 465")


async def test_wrong_password_fails_with_the_servers_refusal(lab: Lab) -> None:
    code, out, err = await send_test(
        *submission(lab, "--starttls", "--ca-file", lab.ca_file), stdin="not the password\n"
    )
    assert code == 1
    assert any(line.startswith("<~  535 ") for line in out.splitlines()), out
    assert err.startswith("courrier: not sent: authentication failed: 535"), err
    assert "not the password" not in out + err
    assert " ~> QUIT" in out.splitlines()


async def test_certificate_is_checked_unless_told_otherwise(lab: Lab) -> None:
    # The test CA is not among the system's: a checked STARTTLS refuses it.
    code, out, err = await send_test(*submission(lab, "--starttls"), stdin=PASSWORD + "\n")
    assert code == 1
    assert "certificate verify failed" in err.lower(), err
    assert "give --ca-file" in err
    assert "AUTH" not in out
    code, out, err = await send_test(
        *submission(lab, "--starttls", "--insecure"), stdin=PASSWORD + "\n"
    )
    assert code == 0, out + err
    assert any(line.endswith(", not checked") for line in out.splitlines()), out


async def test_without_server_the_recipients_mx_is_used(lab: Lab) -> None:
    zone = ZoneServer(
        {"example.org": [{"MX": [10, "mx.example.org"]}], "mx.example.org": [{"A": "127.0.0.1"}]}
    )
    with zone.serving() as resolver:
        code, out, err = await send_test(
            "--to", "bob@example.org", "--from", "tester@elsewhere.test", "--subject", "By MX",
            "--resolver", resolver, "--port", str(lab.running.port("smtp")),
        )  # fmt: skip
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == f"=== Trying mx.example.org [127.0.0.1]:{lab.running.port('smtp')}..."
    # Neither --tls nor --starttls: STARTTLS because it is offered, the certificate unchecked.
    assert " -> STARTTLS" in lines and any(line.endswith(", not checked") for line in lines)
    assert " ~> RCPT TO:<bob@example.org>" in lines
    assert await arrived(lab, "By MX")


async def test_usage_errors() -> None:
    for args, message in (
        (["--to", "bob"], "'bob' is not a mail address"),
        (["--to", "b@x.test", "--password-stdin"], "--password-stdin goes with --auth"),
        (["--to", "b@x.test", "--header", "no colon"], "is not 'Name: value'"),
    ):
        code, _, err = await send_test(*args)
        assert (code, message in err) == (2, True), err
    code, _, err = await send_test("--to", "b@x.test", "--tls", "--starttls")
    assert code == 2 and "not allowed with" in err
