"""Real POP3 clients against courrier's pop3s port: Debian's fetchmail and getmail6, each
downloading with "keep" (the messages stay, and a second run fetches nothing new) and with
delete (the messages are gone from the server), into local files a user would look at."""

from __future__ import annotations

import asyncio
import os
import shutil
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from courrier.security.certificates import certificate_paths
from tests.store.helpers import make_message
from tests.support.server import PASSWORD, Running, inbox

USER = "bob@example.org"
#: A message whose lines would trip a careless server: a lone dot, leading dots, a long one.
TRICKY = make_message(2, body=".\r\n..\r\n.leading dot\r\nplain\r\n" + "x" * 900 + "\r\n")

#: fetchmail's MDA: one file per message, named by a counter, written whole then renamed.
DELIVER = """\
import os, sys
out = sys.argv[1]
data = sys.stdin.buffer.read()
n = len([name for name in os.listdir(out) if name.endswith(".eml")]) + 1
tmp = os.path.join(out, f".{n}.tmp")
with open(tmp, "wb") as f:
    f.write(data)
os.rename(tmp, os.path.join(out, f"{n:03d}.eml"))
"""


def send(running: Running, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", running.port("smtp")) as s:
        s.sendmail("alice@example.net", [USER], raw)


async def deliver_two(running: Running) -> list[bytes]:
    for raw in (make_message(1), TRICKY):
        await asyncio.to_thread(send, running, raw)
    stored = await inbox(running.store, USER)
    assert len(stored) == 2
    return stored


async def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    done = await asyncio.create_subprocess_exec(
        *argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    out, _ = await asyncio.wait_for(done.communicate(), 120)
    assert done.returncode is not None
    return done.returncode, out.decode(errors="replace")


# --- fetchmail ----------------------------------------------------------------------------


def fetchmail_rc(running: Running, home: Path, out: Path, *, keep: bool) -> Path:
    cert, _ = certificate_paths(running.server.settings)
    script = home / "deliver.py"
    script.write_text(DELIVER)
    rc = home / "fetchmailrc"
    rc.write_text(
        f"""\
set no syslog
set invisible
poll 127.0.0.1 with proto POP3 port {running.port("pop3s")}
    user "{USER}" there with password "{PASSWORD}" is "{os.environ.get("USER", "root")}" here
    ssl sslcertck sslcertfile "{cert}" sslcommonname "{running.server.settings.server.hostname}"
    {"keep" if keep else "fetchall no keep"}
    mda "{sys.executable} {script} {out}"
"""
    )
    rc.chmod(0o600)  # fetchmail refuses a run control file others can read
    return rc


async def fetchmail(home: Path) -> tuple[int, str]:
    # FETCHMAILHOME keeps the UID list (.fetchids) and the lock file in the test's directory.
    return await run(
        ["fetchmail", "--nosyslog", "-v", "-f", str(home / "fetchmailrc")],
        env={"FETCHMAILHOME": str(home)},
    )


@pytest.fixture
def fetchmail_installed() -> None:
    assert shutil.which("fetchmail"), "fetchmail is needed: apt-get install fetchmail (.ci/run)"


def local(out: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(out.glob("*.eml"))]


def as_delivered(stored: bytes) -> bytes:
    """What a Unix MDA gets: the message with LF line ends."""
    return stored.replace(b"\r\n", b"\n")


@pytest.mark.usefixtures("fetchmail_installed")
async def test_fetchmail_keep(running: Running, tmp_path: Path) -> None:
    stored = await deliver_two(running)
    home, out = tmp_path / "fetchmail", tmp_path / "mail"
    home.mkdir()
    out.mkdir()
    fetchmail_rc(running, home, out, keep=True)
    code, log = await fetchmail(home)
    assert code == 0, log
    assert local(out) == [as_delivered(m) for m in stored], log
    # Left on the server, and known by UIDL: a second run downloads nothing (exit 1: no mail).
    assert await inbox(running.store, USER) == stored
    code, log = await fetchmail(home)
    assert code == 1 and "2 messages (2 seen)" in log and "RETR" not in log, log
    assert len(local(out)) == 2
    # A new message is the only one fetched next time.
    await asyncio.to_thread(send, running, make_message(3))
    code, log = await fetchmail(home)
    assert code == 0, log
    assert len(local(out)) == 3 and local(out)[2].endswith(as_delivered(make_message(3)))


@pytest.mark.usefixtures("fetchmail_installed")
async def test_fetchmail_delete(running: Running, tmp_path: Path) -> None:
    stored = await deliver_two(running)
    home, out = tmp_path / "fetchmail", tmp_path / "mail"
    home.mkdir()
    out.mkdir()
    fetchmail_rc(running, home, out, keep=False)
    code, log = await fetchmail(home)
    assert code == 0, log
    assert local(out) == [as_delivered(m) for m in stored], log
    assert await inbox(running.store, USER) == []


# --- getmail6 -----------------------------------------------------------------------------


def getmail_rc(running: Running, home: Path, out: Path, *, delete: bool) -> None:
    cert, _ = certificate_paths(running.server.settings)
    script = home / "deliver.py"
    script.write_text(DELIVER)
    # An external MDA rather than a Maildir destination: getmail will not write a Maildir as
    # root (the tests run as root on CI) without switching to a user who could not reach the
    # test's directory; allow_root_commands lets it run the MDA.
    (home / "getmailrc").write_text(
        f"""\
[retriever]
type = SimplePOP3SSLRetriever
server = 127.0.0.1
port = {running.port("pop3s")}
username = {USER}
password = {PASSWORD}
ca_certs = {cert}

[destination]
type = MDA_external
path = {sys.executable}
arguments = ("{script}", "{out}")
allow_root_commands = true

[options]
verbose = 2
read_all = false
delete = {"true" if delete else "false"}
message_log_syslog = false
# Without its own Received and Delivered-To lines, getmail hands over the message unchanged.
received = false
delivered_to = false
"""
    )


async def getmail(home: Path) -> tuple[int, str]:
    return await run(["getmail", f"--getmaildir={home}", f"--rcfile={home / 'getmailrc'}"])


@pytest.fixture
def getmail_installed() -> None:
    assert shutil.which("getmail"), "getmail is needed: apt-get install getmail6 (.ci/run)"


@pytest.mark.usefixtures("getmail_installed")
async def test_getmail_keep(running: Running, tmp_path: Path) -> None:
    stored = await deliver_two(running)
    home, out = tmp_path / "getmail", tmp_path / "mail"
    home.mkdir()
    out.mkdir()
    getmail_rc(running, home, out, delete=False)
    code, log = await getmail(home)
    assert code == 0, log
    assert local(out) == [as_delivered(m) for m in stored], log
    assert await inbox(running.store, USER) == stored
    # read_all = false: what was seen (by UIDL) is not downloaded again.
    code, log = await getmail(home)
    assert code == 0, log
    assert "0 messages" in log and len(local(out)) == 2, log


@pytest.mark.usefixtures("getmail_installed")
async def test_getmail_delete(running: Running, tmp_path: Path) -> None:
    stored = await deliver_two(running)
    home, out = tmp_path / "getmail", tmp_path / "mail"
    home.mkdir()
    out.mkdir()
    getmail_rc(running, home, out, delete=True)
    code, log = await getmail(home)
    assert code == 0, log
    assert local(out) == [as_delivered(m) for m in stored], log
    assert await inbox(running.store, USER) == []
