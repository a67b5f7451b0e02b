"""mbsync (Debian's isync) keeps a local Maildir and courrier's IMAP store in step, both ways."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import subprocess
from pathlib import Path

import pytest

from courrier.security.certificates import certificate_paths
from courrier.store import Flag
from tests.store.helpers import make_message
from tests.support.server import PASSWORD, Running, inbox


@pytest.fixture(autouse=True)
def _mbsync_installed() -> None:
    assert shutil.which("mbsync"), "mbsync is needed: apt-get install isync (.ci/run does)"


def config(running: Running, maildir: Path) -> str:
    cert, _ = certificate_paths(running.server.settings)
    return f"""\
IMAPAccount courrier
Host 127.0.0.1
Port {running.port("imaps")}
User bob@example.org
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {cert}

IMAPStore remote
Account courrier

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel everything
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""


def send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.sendmail("alice@example.net", ["bob@example.org"], raw)


async def mbsync(rc: Path) -> None:
    done = await asyncio.create_subprocess_exec(
        "mbsync", "-c", str(rc), "-a", stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await done.communicate()
    assert done.returncode == 0, out.decode()


async def test_mbsync_round_trip(running: Running, tmp_path: Path) -> None:
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(config(running, maildir))
    for n in (1, 2):
        await asyncio.to_thread(send, running.port("smtp"), make_message(n))
    await mbsync(rc)
    pulled = sorted((maildir / "INBOX" / "cur").iterdir()) + sorted(
        (maildir / "INBOX" / "new").iterdir()
    )
    assert len(pulled) == 2
    # Maildir files have Unix line ends (mbsync converts both ways, and adds its X-TUID).
    texts = [p.read_bytes() for p in pulled]
    assert all(b"\r" not in t and t.startswith(b"Return-Path: <alice@example.net>") for t in texts)
    assert sorted(t.split(b"\n\n", 1)[1] for t in texts) == [
        b"This is message number 1.\n",
        b"This is message number 2.\n",
    ]
    assert (maildir / "Sent").is_dir() and (maildir / "Trash").is_dir()
    # Local changes go up: a new message in Archive, one message flagged, one deleted.
    archive_new = maildir / "Archive" / "new"
    (archive_new / "1700000000.1.local").write_bytes(make_message(3).replace(b"\r\n", b"\n"))
    first, second = pulled
    first.rename(first.parent.parent / "cur" / (first.name.split(":2,")[0] + ":2,FS"))
    second.unlink()
    await mbsync(rc)
    account = await running.store.get_account("bob@example.org")
    assert account is not None
    archive = await running.store.mailbox(account.id, "Archive")
    (stored,) = await running.store.list_messages(archive.id)
    assert (await running.store.read_message(stored.id)).endswith(b"message number 3.\r\n")
    box = await running.store.mailbox(account.id, "INBOX")
    (left,) = await running.store.list_messages(box.id)
    assert left.flags & Flag.FLAGGED and left.flags & Flag.SEEN
    assert len(await inbox(running.store, "bob@example.org")) == 1
