"""IMAP on a 10,000-message mailbox: courrier against stock Dovecot, same machine, same run.

    python -m bench.imap_bench [--messages 10000] [--rounds 5] [--idle 2000] [--record]

Both servers get the same generated mailbox (2–8 KiB messages with varied senders, subjects and
dates; one in 100 bodies holds the word the TEXT search looks for). Dovecot (Debian's
``dovecot-imapd``) runs as a private instance from a temporary directory: Maildir, written
directly as its LDA would (``cur/`` files with ``,S=,W=`` sizes), ``mail_fsync = always``,
COPY by hard links (its default), a passwd-file with an argon2id hash of courrier's parameters
(m=64 MiB, t=3), no TLS on either side (courrier allows plaintext on loopback). courrier gets its
copy by MULTIAPPEND. Filling is not measured. LOGIN compares two policies: courrier remembers a
verified password for 15 minutes, Dovecot checks the hash at every LOGIN (its ``auth_cache``,
off by default, would cache the passdb lookup, not the check).

Each command is timed from the first byte sent to the tagged reply, by a small client that reads
the whole response (literals included) without parsing it. One row is not in the issue: SEARCH
TEXT of a two-word string, which courrier's full-text index can narrow (a lone word, which may
begin inside a word of the text, it cannot). Every command runs once untimed on
each server first (Dovecot fills its cache, courrier's full-text indexer catches up); then rounds
alternate between the servers and the table gives the medians. STORE is undone after each round
(its ``-FLAGS`` is not timed); COPY goes into a new mailbox, MOVE takes that copy into another
one, and both are deleted afterwards, so INBOX is the same in every round.

IDLE: after a restart of each server, N connections (``--idle``) LOGIN, each SELECTs an empty
mailbox of its own and IDLEs; later they all DONE, SELECT INBOX and IDLE again. Memory is the
server's RSS, and PSS (shared pages split between the processes that share them), summed over its
process tree, minus the same before the N connections, divided by N, in both states. Push: a
separate connection APPENDs one message at a time (``--deliveries`` into the idlers' own
mailboxes, then ``--herd`` into INBOX, where each delivery wakes all N sessions in both servers);
latency runs from sending the APPEND to the ``* n EXISTS`` at one idler, a different one each
time. Dovecot runs one process per IMAP connection (its default) and learns of new mail through
inotify, one instance per process: the kernel's per-user limit is raised for the run.
Needs root (Dovecot's private instance drops to its users).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import email.utils
import math
import os
import pwd
import random
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.results import record

DOVECOT_PORT = 31143
COURRIER_OFFSET = 32000  # IMAP on 32143
PASSWORD = "a long passphrase here"
SUBJECT_WORD = "quarterly"
TEXT_WORD = "zeppelin"
INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")

# -- the mailbox ------------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = _names(
    "Alice Bruno Chloé Daniel Emma Farid Grace Hugo Inès Jonas Karin Léa Marco Nadia Oscar "
    "Paula Quentin Rosa Samir Tess Ugo Vera Wen Xavier Yasmin Zoé"
)
_LAST = _names(
    "Martin Bernard Dubois Thomas Robert Petit Durand Leroy Moreau Simon Laurent Lefebvre "
    "Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard Andre Mercier Blanc"
)
_DOMAINS = _names(
    "example.net example.com mail.example.de lists.example.org corp.example exemple.fr "
    "post.example.co.uk news.example.io"
)
_WORDS = _names(
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when if "
    "more no out so what up said about other into than its time only could new them these "
    "some may first any like now my such our over man me even most made after also did many "
    "before must through back years where much your way well down should because each just "
    "those people how too little state good very make world still own see men work long get "
    "here between both life being under never day same another know while last might us "
    "great old year off come since against go came right used take three meeting budget "
    "report draft invoice project release schedule server backup review contract agenda "
    "holiday travel payment order delivery update question answer proposal summary team "
    "client office support account password migration network feature test deadline"
)
_SUBJECTS = (
    "Re: {w} {w} for {d}",
    "{W} {w} and {w}",
    "Fwd: {W} {w}",
    "[{list}] {W} {w} {w} {w}",
    "{W} update: {w} {w}",
    "Question about the {w} {w}",
    "=?utf-8?q?R=C3=A9union_{w}?= {w}",
)
_ZONES = (0, 60, 120, -300, -480, 330, 540)


@dataclass(frozen=True, slots=True)
class Message:
    data: bytes  # CRLF line ends, as IMAP serves it
    date: datetime.datetime
    flags: tuple[str, ...]


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _paragraphs(rng: random.Random, size: int, word: str | None) -> str:
    lines: list[str] = []
    length = 0
    while length < size:
        words = _words(rng, rng.randint(8, 12))
        line = ("> " if rng.random() < 0.1 else "") + words[0].upper() + words[1:] + "."
        lines.append(line)
        length += len(line) + 2
        if rng.random() < 0.15:
            lines.append("")
    if word is not None:
        at = rng.randrange(len(lines))
        lines.insert(at, f"We should talk about the {word} before the {rng.choice(_WORDS)}.")
    return "\r\n".join(lines) + "\r\n"


def _subject(rng: random.Random, date: datetime.datetime, domain: str) -> str:
    out = []
    for piece in re.split(r"(\{\w+\})", rng.choice(_SUBJECTS)):
        if piece == "{w}":
            piece = rng.choice(_WORDS)
        elif piece == "{W}":
            piece = rng.choice(_WORDS).capitalize()
        elif piece == "{d}":
            piece = f"{date:%B}"
        elif piece == "{list}":
            piece = domain.split(".")[0]
        out.append(piece)
    return "".join(out)


def mailbox(count: int, seed: int = 1) -> list[Message]:
    """``count`` distinct messages, oldest first; 1 % hold TEXT_WORD, 2 % SUBJECT_WORD."""
    rng = random.Random(seed)
    text_hits = set(rng.sample(range(count), max(count // 100, 1)))
    subject_hits = set(rng.sample(range(count), max(count // 50, 1)))
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC).timestamp()
    stamps = sorted(rng.uniform(start, start + 2 * 365 * 86400) for _ in range(count))
    out = []
    for n, stamp in enumerate(stamps):
        zone = datetime.timezone(datetime.timedelta(minutes=rng.choice(_ZONES)))
        date = datetime.datetime.fromtimestamp(int(stamp), zone)
        first, last, domain = rng.choice(_FIRST), rng.choice(_LAST), rng.choice(_DOMAINS)
        address = f"{first.lower()}.{last.lower()}@{domain}".replace("é", "e").replace("è", "e")
        subject = _subject(rng, date, domain)
        if n in subject_hits:
            subject += f" ({SUBJECT_WORD} figures)"
        if first.isascii():
            name_field = f'"{first} {last}"'
        else:  # RFC 2047
            encoded = "".join(f"={b:02X}" for b in first.encode())
            name_field = f"=?utf-8?q?{encoded}?= {last}"
        head = [
            f"Return-Path: <{address}>",
            f"Received: from mx{rng.randint(1, 9)}.{domain} (mx.{domain} "
            f"[198.51.100.{rng.randint(1, 254)}]) by mail.example.org with ESMTPS id "
            f"{rng.getrandbits(48):012x} for <bob@example.org>; "
            f"{email.utils.format_datetime(date)}",
            f"From: {name_field} <{address}>",
            "To: Bob Example <bob@example.org>",
        ]
        if rng.random() < 0.3:
            head.append(f"Cc: {rng.choice(_FIRST)} <team-{rng.randint(1, 20)}@example.org>")
        head += [
            f"Subject: {subject}",
            f"Date: {email.utils.format_datetime(date)}",
            f"Message-ID: <{rng.getrandbits(64):016x}.{n}@{domain}>",
        ]
        if subject.startswith("Re:"):
            head.append(f"In-Reply-To: <{rng.getrandbits(64):016x}@{domain}>")
        head.append("MIME-Version: 1.0")
        size = rng.randint(2048, 8192) - sum(len(h) + 2 for h in head) - 120
        word = TEXT_WORD if n in text_hits else None
        if rng.random() < 0.1:
            boundary = f"=_bench_{rng.getrandbits(40):010x}"
            text = _paragraphs(rng, max(size // 2 - 150, 200), word)
            html = "<html><body><p>" + text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>"
            head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
            body = (
                f"This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                f"{text}\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                f"{html}\r\n--{boundary}--\r\n"
            )
        else:
            head.append("Content-Type: text/plain; charset=utf-8; format=flowed")
            body = _paragraphs(rng, max(size, 200), word)
        head.append("Content-Transfer-Encoding: 8bit")
        data = ("\r\n".join(head) + "\r\n\r\n" + body).encode()
        flags: tuple[str, ...] = ()
        if rng.random() < 0.8:
            flags = ("\\Answered", "\\Seen") if rng.random() < 0.1 else ("\\Seen",)
        out.append(Message(data, date, flags))
    return out


# -- the client -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    status: str
    data: bytes  # the whole response, untagged lines, literals and tagged line
    seconds: float

    def search_hits(self) -> int:
        for line in self.data.split(b"\r\n"):
            if line.startswith(b"* SEARCH"):
                return len(line.split()) - 2
        return 0


class IMAPError(RuntimeError):
    pass


class Client:
    """One IMAP connection over a blocking socket; responses are scanned, not parsed.

    The scan looks for the next literal (``{n}`` at a line end, whose n octets it skips) or the
    tagged line, with one regular-expression search each, so a 10,000-line response costs the
    client a few milliseconds at most.
    """

    def __init__(self, port: int, name: str = "") -> None:
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=900)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(b"\r\n")  # a line start is always preceded by CRLF
        self.pos = 2
        self.tags = 0
        self.idling: bytes | None = None  # the IDLE command's tag while in it
        self.greeting = self.line()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            last = bytes(self.buf[-200:]).decode(errors="replace").strip()
            raise ConnectionError(f"{self.name}: connection closed by the server after {last!r}")
        self.buf += chunk

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n", self.pos)) < 0:
            self.recv()
        line = bytes(self.buf[self.pos : end])
        self.pos = end + 2
        return line

    def send(self, command: bytes | str) -> bytes:
        """Send ``tag command`` (CRLF added); the tag is returned."""
        if self.pos > 2:
            del self.buf[: self.pos - 2]
            self.pos = 2
        self.tags += 1
        tag = f"T{self.tags}".encode()
        if isinstance(command, str):
            command = command.encode()
        self.sock.sendall(tag + b" " + command + b"\r\n")
        return tag

    def _scan(self, tag: bytes, scan: int) -> tuple[re.Match[bytes] | None, int]:
        """The tagged line if complete in the buffer, else where to scan from next time."""
        pattern = re.compile(rb"\{(\d+)\+?\}\r\n|\r\n" + tag + rb" ([A-Z]+)[^\r\n]*\r\n")
        while True:
            match = pattern.search(self.buf, scan)
            if match is None:
                # A partial literal marker or tagged line starts at the last CRLF or later.
                return None, max(scan, self.buf.rfind(b"\r\n", scan))
            if match.group(1) is None:
                return match, scan
            end = match.end() + int(match.group(1))
            if end > len(self.buf):
                return None, end
            scan = end

    def reply(self, tag: bytes, started: float) -> Reply:
        scan = self.pos - 2
        while True:
            if scan <= len(self.buf):
                match, scan = self._scan(tag, scan)
                if match is not None:
                    break
            self.recv()
        seconds = time.perf_counter() - started
        data = bytes(self.buf[self.pos : match.end()])
        self.pos = match.end()
        return Reply(match.group(2).decode(), data, seconds)

    def try_reply(self, tag: bytes, started: float) -> Reply | None:
        match, _ = self._scan(tag, self.pos - 2)
        if match is None:
            return None
        data = bytes(self.buf[self.pos : match.end()])
        self.pos = match.end()
        return Reply(match.group(2).decode(), data, time.perf_counter() - started)

    def run(self, command: bytes | str, *, check: bool = True) -> Reply:
        started = time.perf_counter()
        reply = self.reply(self.send(command), started)
        if check and reply.status != "OK":
            text = command if isinstance(command, str) else command[:60].decode(errors="replace")
            tail = reply.data[-300:].decode(errors="replace").strip()
            raise IMAPError(f"{self.name}: {text}: {tail}")
        return reply

    def append(self, mailbox: str, messages: Sequence[Message]) -> Reply:
        """One APPEND (MULTIAPPEND, RFC 3502) with non-synchronising literals (RFC 7888)."""
        parts = [f"APPEND {mailbox}".encode()]
        for m in messages:
            date = m.date.strftime("%d-%b-%Y %H:%M:%S %z")
            parts.append(f' ({" ".join(m.flags)}) "{date}" {{{len(m.data)}+}}\r\n'.encode())
            parts.append(m.data)
        return self.run(b"".join(parts))


# -- the servers ------------------------------------------------------------------------------


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            break
        try:
            Client(port).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


class Server:
    name: str
    user: str
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def login(self) -> Client:
        client = Client(self.port, self.name)
        client.run(f'LOGIN {self.user} "{PASSWORD}"')
        return client


_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mail_fsync = always
first_valid_uid = {uid}
first_valid_gid = {gid}
default_internal_user = dovecot
default_login_user = dovenull
default_process_limit = {processes}
default_client_limit = {clients}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
protocol imap {{
  mail_max_userip_connections = {connections}
}}
service imap {{
  process_limit = {processes}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class Dovecot(Server):
    user = "bob"
    port = DOVECOT_PORT

    def __init__(self, root: Path, idle: int) -> None:
        from courrier.security.passwords import make_credentials

        version = subprocess.run(
            ["dovecot", "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        self.name = f"Dovecot {version}"
        self.root = root
        self.owner = pwd.getpwnam("mail")
        uid, gid = self.owner.pw_uid, self.owner.pw_gid
        for sub in ("run", "state", "home"):
            (root / sub).mkdir(parents=True)
        self.maildir = root / "mail" / self.user
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        for path in (root / "mail", self.maildir, *self.maildir.iterdir(), root / "home"):
            os.chown(path, uid, gid)
        self.conf = root / "dovecot.conf"
        self.conf.write_text(
            _DOVECOT_CONF.format(
                root=root,
                uid=uid,
                gid=gid,
                port=self.port,
                connections=idle + 100,
                processes=idle + 200,
                clients=2 * idle + 1000,
            )
        )
        # The same argon2id parameters as courrier's own hash (Dovecot checks it via libsodium).
        secret = make_credentials(PASSWORD).password_hash
        (root / "passwd").write_text(
            f"{self.user}:{{ARGON2ID}}{secret}:{uid}:{gid}::{root}/home::\n"
        )

    def fill(self, messages: Sequence[Message]) -> None:
        """Maildir files as Dovecot's LDA names them; the file's mtime is the internal date."""
        letters = {"\\Answered": "R", "\\Seen": "S", "\\Flagged": "F"}
        cur = self.maildir / "cur"
        uid, gid = self.owner.pw_uid, self.owner.pw_gid
        for n, m in enumerate(messages):
            data = m.data.replace(b"\r\n", b"\n")
            stamp = int(m.date.timestamp())
            flags = "".join(sorted(letters[f] for f in m.flags))
            path = cur / f"{stamp}.M{n}P1.bench,S={len(data)},W={len(m.data)}:2,{flags}"
            path.write_bytes(data)
            os.chown(path, uid, gid)
            os.utime(path, (stamp, stamp))

    def start(self) -> None:
        log = (self.root / "dovecot.out").open("ab")
        self.proc = subprocess.Popen(
            ["dovecot", "-c", str(self.conf), "-F"], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_port(self.port, self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"Dovecot did not start; see {self.root}/dovecot.log") from None

    def log_lines(self, needle: str) -> list[str]:
        path = self.root / "dovecot.log"
        if not path.exists():
            return []
        return [line for line in path.read_text(errors="replace").splitlines() if needle in line]


class Courrier(Server):
    name = "courrier"
    user = "bob@example.org"
    port = 143 + COURRIER_OFFSET

    def __init__(self, root: Path, idle: int) -> None:
        self.root = root
        self.data = root / "data"
        self.idle = idle
        courrier = [sys.executable, "-m", "courrier"]
        subprocess.run(
            [*courrier, "domain", "add", "example.org", "--data", str(self.data)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [*courrier, "user", "add", self.user, "--password-stdin", "--data", str(self.data)],
            input=PASSWORD.encode() + b"\n",
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "courrier", "serve"),
                *("--data", str(self.data), "--port-offset", str(COURRIER_OFFSET)),
            ],
            env={
                **os.environ,
                "COURRIER_SERVER_LISTEN": "127.0.0.1",
                "COURRIER_IMAP_PLAINTEXT_ON_LOOPBACK": "true",
                "COURRIER_IMAP_MAX_CONNECTIONS_PER_IP": str(self.idle + 100),
            },
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "courrier.log").open("ab"),
        )
        try:
            _wait_port(self.port, self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"courrier did not start; see {self.root}/courrier.log") from None

    def fill(self, messages: Sequence[Message], batch: int = 100) -> None:
        client = self.login()
        for start in range(0, len(messages), batch):
            client.append("INBOX", messages[start : start + batch])
        client.run("LOGOUT")
        client.close()


# -- the commands -----------------------------------------------------------------------------

COPY = "COPY 1:* (into a new mailbox)"
MOVE = "MOVE 1:* (that copy, into another)"
#: (label for the table, the command, its goal as courrier ÷ Dovecot)
COMMANDS: tuple[tuple[str, str, float], ...] = (
    ("LOGIN", "", 1.0),
    ("SELECT INBOX", "SELECT INBOX", 1.0),
    (
        "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)",
        "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)",
        1.0,
    ),
    (
        "FETCH 1:* BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]",
        "FETCH 1:* BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]",
        1.0,
    ),
    (f"SEARCH SUBJECT {SUBJECT_WORD}", f"SEARCH SUBJECT {SUBJECT_WORD}", 1.0),
    (f"SEARCH TEXT {TEXT_WORD}", f"SEARCH TEXT {TEXT_WORD}", 0.1),
    # Not in the issue: a phrase whose second word courrier's full-text index can look up (a
    # string's first word may start inside a word of the text, so the index skips it).
    (f'SEARCH TEXT "the {TEXT_WORD}"', f'SEARCH TEXT "the {TEXT_WORD}"', 0.1),
    ("STORE 1:* +FLAGS (\\Flagged)", "STORE 1:* +FLAGS (\\Flagged)", 1.0),
    (COPY, "", 1.0),
    (MOVE, "", 1.0),
    ("FETCH 1:1000 BODY.PEEK[]", "FETCH 1:1000 BODY.PEEK[]", 1.0),
)


def one_round(server: Server, label: str) -> dict[str, Reply]:
    """Every command once, on one connection; INBOX is left as it was found."""
    out: dict[str, Reply] = {}
    client = Client(server.port, server.name)
    out["LOGIN"] = client.run(f'LOGIN {server.user} "{PASSWORD}"')
    for name, command, _ in COMMANDS:
        if not command:
            continue
        out[name] = client.run(command)
        if command.startswith("STORE"):
            client.run(command.replace("+FLAGS", "-FLAGS"))
    copy, moved = f"Copy-{label}", f"Moved-{label}"
    client.run(f"CREATE {copy}")
    client.run(f"CREATE {moved}")
    out[COPY] = client.run(f"COPY 1:* {copy}")
    client.run(f"SELECT {copy}")
    out[MOVE] = client.run(f"MOVE 1:* {moved}")
    client.run("UNSELECT")
    client.run(f"DELETE {copy}")
    client.run(f"DELETE {moved}")
    client.run("LOGOUT")
    client.close()
    return out


# -- IDLE -------------------------------------------------------------------------------------


def _tree(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def tree_memory(root_pid: int) -> tuple[int, int, int]:
    """(RSS bytes, PSS bytes, processes) of ``root_pid`` and all its descendants."""
    pids = _tree(root_pid)
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
    return rss, pss, len(pids)


def tree_cpu(pids: Sequence[int]) -> float:
    """CPU seconds used so far by ``pids`` (the scheduler's own count, in nanoseconds)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except OSError:
            continue
    return total / 1e9


def wait_quiet(pids: Sequence[int], timeout: float = 60.0) -> tuple[float, bool]:
    """Wait until ``pids`` use under 10 % of a core over 0.2 s: their CPU seconds by then, and
    whether they did go quiet within ``timeout``."""
    deadline = time.perf_counter() + timeout
    cpu = tree_cpu(pids)
    while time.perf_counter() < deadline:
        time.sleep(0.2)
        now = tree_cpu(pids)
        if now - cpu < 0.02:
            return now, True
        cpu = now
    return cpu, False


def enter_idle(clients: Sequence[Client], mailboxes: Sequence[str], batch: int = 50) -> None:
    """Each client (ending its IDLE if it is in one) SELECTs its mailbox and IDLEs again."""
    for start in range(0, len(clients), batch):
        group = clients[start : start + batch]
        pending = []
        for client, mailbox in zip(group, mailboxes[start : start + batch], strict=True):
            if client.idling is not None:
                client.sock.sendall(b"DONE\r\n")
            tags = [client.idling, client.send(f"SELECT {mailbox}")]
            client.idling = client.send("IDLE")
            pending.append((client, tags))
        for client, tags in pending:
            for tag in tags:
                if tag is None:
                    continue
                reply = client.reply(tag, time.perf_counter())
                if reply.status != "OK":
                    raise IMAPError(f"{client.name}: idler: {reply.data[-200:]!r}")
            while not client.line().startswith(b"+"):
                pass


def open_idlers(server: Server, count: int, failures: list[str], batch: int = 50) -> list[Client]:
    """``count`` logged-in connections; a LOGIN that fails is tried again on a new connection
    (up to 3 times), and why it failed goes into ``failures``."""
    clients: list[Client] = []
    for start in range(0, count, batch):
        group = [Client(server.port, server.name) for _ in range(min(batch, count - start))]
        tags = [c.send(f'LOGIN {server.user} "{PASSWORD}"') for c in group]
        for client, tag in zip(group, tags, strict=True):
            try:
                reply = client.reply(tag, time.perf_counter())
                if reply.status == "OK":
                    clients.append(client)
                    continue
                failures.append(reply.data[-200:].decode(errors="replace").strip())
            except ConnectionError as exc:
                failures.append(str(exc))
            client.close()
            for attempt in range(3):
                try:
                    clients.append(server.login())
                    break
                except (ConnectionError, IMAPError) as exc:
                    failures.append(str(exc))
                    if attempt == 2:
                        raise
    return clients


def _delivery(n: int) -> bytes:
    date = email.utils.format_datetime(datetime.datetime.now(datetime.UTC))
    head = (
        f"From: Carol <carol@example.net>\r\nTo: Bob <bob@example.org>\r\nSubject: push {n}\r\n"
        f"Date: {date}\r\nMessage-ID: <push-{n}-{time.time_ns()}@example.net>\r\n\r\n"
    )
    return (
        head + "A short message to see how fast an idling client hears of it.\r\n" * 40
    ).encode()


def _saw(client: Client, wanted: bytes) -> bool:
    """Whether ``wanted`` came; if so, what came up to it is dropped."""
    at = client.buf.find(wanted)
    if at < 0:
        return False
    del client.buf[: at + len(wanted) - 2]  # keeps the CRLF before the next line
    client.pos = 2
    return True


@dataclass
class Pushes:
    watched: list[float] = field(default_factory=list)  # APPEND sent → EXISTS at the idler
    everyone: list[float] = field(default_factory=list)  # … at the last of all idlers
    cpu: list[float] = field(default_factory=list)  # server CPU seconds per delivery
    late: int = 0  # deliveries that the idler (or some idler) had not heard of after 60 s
    busy: int = 0  # deliveries after which the server did not go quiet within 60 s


def push(
    server: Server,
    sender: Client,
    idlers: list[Client],
    targets: Sequence[tuple[int, str, int]],
    gap: float,
    *,
    herd: bool,
) -> Pushes:
    """One APPEND at a time; each target is (idler, its mailbox, the EXISTS it must see).

    While the idler is awaited only its socket and the sender's are read, so the client stays
    out of the server's way. With ``herd`` every idler shares the mailbox, and all of them are
    read until each has the EXISTS. Then the server is left to go quiet (its CPU time counted)
    before the next APPEND.
    """
    assert server.proc is not None
    out = Pushes()
    pids = _tree(server.proc.pid)
    every = selectors.DefaultSelector()
    for client in idlers:
        every.register(client.sock, selectors.EVENT_READ, client)
    for k, (index, mailbox, exists) in enumerate(targets):
        watch = idlers[index]
        wanted = b"\r\n* %d EXISTS\r\n" % exists
        data = _delivery(k)
        pair = selectors.DefaultSelector()
        pair.register(watch.sock, selectors.EVENT_READ, watch)
        pair.register(sender.sock, selectors.EVENT_READ, sender)
        cpu = tree_cpu(pids)
        started = time.perf_counter()
        deadline = started + 60
        tag = sender.send(f"APPEND {mailbox} {{{len(data)}+}}\r\n".encode() + data)
        seen: float | None = None
        done: Reply | None = None
        while (seen is None or done is None) and (remaining := deadline - time.perf_counter()) > 0:
            events = pair.select(remaining)
            now = time.perf_counter()
            for key, _ in events:
                key.data.recv()
            if seen is None and _saw(watch, wanted):
                seen = now - started
            if done is None:
                done = sender.try_reply(tag, started)
        pair.close()
        if done is None:
            raise IMAPError(f"{server.name}: APPEND got no reply within 60 s")
        if done.status != "OK":
            raise IMAPError(f"{server.name}: APPEND: {done.data[-200:]!r}")
        out.watched.append(math.inf if seen is None else seen)
        last = math.inf
        if herd:
            waiting = {c for c in idlers if c is not watch or seen is None}
            waiting = {c for c in waiting if not _saw(c, wanted)}
            last = seen or 0.0
            while waiting and (remaining := deadline - time.perf_counter()) > 0:
                events = every.select(remaining)
                now = time.perf_counter()
                for key, _ in events:
                    client = key.data
                    try:
                        client.recv()
                    except ConnectionError:
                        every.unregister(client.sock)
                        continue
                    if client in waiting and _saw(client, wanted):
                        waiting.discard(client)
                        last = now - started
            if waiting:
                last = math.inf
            out.everyone.append(last)
        out.late += seen is None or (herd and last == math.inf)
        after, quiet = wait_quiet(pids)
        out.cpu.append(after - cpu)
        out.busy += not quiet
        if herd or (k + 1) % 50 == 0:
            print(
                f"# {server.name}: delivery {k + 1}/{len(targets)} to {mailbox}: "
                f"{_ms(out.watched[-1])} ms, all {_ms(last) if herd else '–'} ms, "
                f"CPU {_ms(out.cpu[-1])} ms",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(gap)
    every.close()
    return out


@dataclass
class IdleResult:
    connections: int
    processes: tuple[int, int]
    #: (RSS, PSS) growth per connection, idling on a mailbox of their own (empty) / on INBOX
    own_memory: tuple[float, float]
    inbox_memory: tuple[float, float]
    own: Pushes
    inbox: Pushes
    setup_seconds: float
    login_failures: list[str]


def idle_phase(server: Server, count: int, deliveries: int, herd: int, gap: float) -> IdleResult:
    """N idlers on mailboxes of their own, then all on INBOX; memory and pushes in each."""
    assert server.proc is not None
    names = [f"Idle{i}" for i in range(count)]
    admin = server.login()
    for name in names:
        admin.run(f"CREATE {name}")
    admin.run("SELECT INBOX")
    admin.run("UNSELECT")
    time.sleep(2)
    rss0, pss0, procs0 = tree_memory(server.proc.pid)
    started = time.perf_counter()
    failures: list[str] = []
    idlers = open_idlers(server, count, failures)
    enter_idle(idlers, names)
    setup = time.perf_counter() - started
    time.sleep(3)
    rss1, pss1, procs1 = tree_memory(server.proc.pid)
    try:
        picks = [k * count // deliveries % count for k in range(deliveries)]
        seen: dict[int, int] = {}
        targets = []
        for i in picks:
            seen[i] = seen.get(i, 0) + 1
            targets.append((i, names[i], seen[i]))
        own = push(server, admin, idlers, targets, gap, herd=False)
        exists = int(re.findall(rb"\* (\d+) EXISTS", admin.run("SELECT INBOX").data)[-1])
        admin.run("UNSELECT")
        enter_idle(idlers, ["INBOX"] * count)
        time.sleep(3)
        rss2, pss2, _ = tree_memory(server.proc.pid)
        targets = [(k * count // herd % count, "INBOX", exists + k + 1) for k in range(herd)]
        inbox = push(server, admin, idlers, targets, gap, herd=True)
    finally:
        for client in idlers:
            client.close()
        admin.close()
    return IdleResult(
        connections=count,
        processes=(procs0, procs1),
        own_memory=((rss1 - rss0) / count, (pss1 - pss0) / count),
        inbox_memory=((rss2 - rss0) / count, (pss2 - pss0) / count),
        own=own,
        inbox=inbox,
        setup_seconds=setup,
        login_failures=failures,
    )


# -- the report -------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    if seconds == math.inf:
        return "> 60 s"
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def _size(reply: Reply, command: str) -> str:
    if command.startswith("SEARCH"):
        return f"{reply.search_hits()} hits"
    return f"{len(reply.data) / 1024:,.0f} KiB" if len(reply.data) >= 10240 else ""


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(round(p / 100 * (len(ordered) - 1)), len(ordered) - 1)]


def report(
    names: tuple[str, str],
    runs: dict[str, list[dict[str, Reply]]],
    idle: dict[str, IdleResult],
    args: argparse.Namespace,
    contents: str,
    notes: list[str],
) -> str:
    peer, ours = names
    lines = [
        f"{args.messages:,} messages in INBOX ({contents}), "
        f"one user, no TLS; ms from the command's first byte to its tagged reply; warm medians "
        f"of {args.rounds} rounds (each round in brackets), servers alternating",
        "",
        f"| command | {peer} ms | courrier ms | courrier ÷ Dovecot | goal | met | response |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, _, goal in COMMANDS:
        times = {n: [r[label].seconds for r in runs[n]] for n in names}
        med = {n: statistics.median(times[n]) for n in names}
        ratio = med[ours] / med[peer]
        each = {n: ", ".join(_ms(t) for t in times[n]) for n in names}
        sizes = [_size(runs[n][-1][label], label) for n in names]
        size = sizes[0] if sizes[0] == sizes[1] else " / ".join(sizes)
        lines.append(
            f"| `{label}` | {_ms(med[peer])} ({each[peer]}) | {_ms(med[ours])} ({each[ours]}) "
            f"| {ratio:.2f} | ≤ {goal:g} | {'yes' if ratio <= goal else '**no**'} | {size} |"
        )
    if idle:
        some = next(iter(idle.values()))
        n = f"{some.connections:,}"
        lines += [
            "",
            f"IDLE, {n} connections after a restart: LOGIN, SELECT of a mailbox of their own "
            f"(empty), IDLE; then DONE, SELECT INBOX ({args.messages:,} messages), IDLE. Memory: "
            f"the server's process tree, Δ from before the {n} connections, ÷ {n}.",
            "",
            "| server | processes | RSS Δ per connection, own mailbox | PSS Δ, own mailbox "
            "| RSS Δ per connection, on INBOX | PSS Δ, on INBOX |",
            "|---|---|---|---|---|---|",
        ]
        for name in names:
            if name in idle:
                r = idle[name]
                own, inbox = r.own_memory, r.inbox_memory
                lines.append(
                    f"| {name} | {r.processes[0]} → {r.processes[1]} | {own[0] / 1024:,.1f} KiB "
                    f"| {own[1] / 1024:,.1f} KiB | {inbox[0] / 1024:,.1f} KiB "
                    f"| {inbox[1] / 1024:,.1f} KiB |"
                )
        lines += [
            "",
            f"Push: one APPEND at a time from another connection, ms from sending it to the "
            f"`* n EXISTS` at an idler (a different one each time): {args.deliveries} into the "
            f"idlers' own mailboxes, then {args.herd} into INBOX, where all {n} idle and each "
            "delivery wakes them all (*all*: until the last one has it). The next APPEND waits "
            "until the server is quiet (< 10 % of a core) or 60 s have passed; CPU = the server's "
            "CPU time from an APPEND to then. Missed for 60 s counts as > 60 s.",
            "",
            "| server | mailbox | push p50 ms | push p95 ms | push max ms | all p50 ms "
            "| all p95 ms | server CPU ms per delivery |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for mailbox in ("own", "INBOX"):
            for name in names:
                if name not in idle:
                    continue
                pushes = idle[name].own if mailbox == "own" else idle[name].inbox
                watched = pushes.watched or [float("nan")]
                herd = pushes.everyone or [float("nan")]
                late = f" ({pushes.late} late > 60 s)" if pushes.late else ""
                cpu = _ms(statistics.median(pushes.cpu)) if pushes.cpu else ""
                if pushes.busy:
                    cpu += f" (busy > 60 s after {pushes.busy})"
                everyone = (
                    f"{_ms(_percentile(herd, 50))} | {_ms(_percentile(herd, 95))}"
                    if mailbox == "INBOX"
                    else "– | –"
                )
                lines.append(
                    f"| {name} | {mailbox} | {_ms(_percentile(watched, 50))} "
                    f"| {_ms(_percentile(watched, 95))}{late} | {_ms(max(watched))} "
                    f"| {everyone} | {cpu} |"
                )
        if ours in idle:
            r = idle[ours]
            kb = r.inbox_memory[0] / 1000
            p50s = [
                _percentile(p.watched, 50) if p.watched else float("nan") for p in (r.own, r.inbox)
            ]
            lines += [
                "",
                f"Goals for courrier: ≤ 50 KB per idle connection: {kb:,.1f} KB on INBOX, "
                f"{r.own_memory[0] / 1000:,.1f} KB on an empty mailbox "
                f"({'met' if kb <= 50 else '**not met**'}); push p50 ≤ 50 ms: "
                f"{_ms(p50s[0])} ms on own mailboxes, {_ms(p50s[1])} ms on INBOX "
                f"({'met' if max(p50s) <= 0.05 else '**not met**'}).",
            ]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


@contextlib.contextmanager
def inotify_instances(count: int, notes: list[str]) -> Iterator[None]:
    """Dovecot's IDLE uses an inotify instance per process (more while it syncs), all under the
    mail user; the kernel's default of 128 would turn most of them into 30-second polling
    (Dovecot's log says to raise the limit), so it is raised for the run and put back after."""
    before = int(INOTIFY.read_text())
    if before >= count or count <= 0:
        yield
        return
    INOTIFY.write_text(f"{count}\n")
    notes.append(f"fs.inotify.max_user_instances raised from {before} to {count} for the run")
    try:
        yield
    finally:
        INOTIFY.write_text(f"{before}\n")


def _timed(what: str, fn: Callable[..., object], *args: object) -> None:
    started = time.perf_counter()
    fn(*args)
    print(f"# {what}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (medians shown)")
    parser.add_argument("--idle", type=int, default=2000, help="idling connections (0: skip)")
    parser.add_argument(
        "--deliveries", type=int, default=200, help="pushes timed, each idler on its own mailbox"
    )
    parser.add_argument("--herd", type=int, default=20, help="pushes timed, all idlers on INBOX")
    parser.add_argument(
        "--gap", type=float, default=0.1, help="seconds between one delivery's end and the next"
    )
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.messages < 1000:
        parser.error("--messages: at least 1000 (FETCH 1:1000 BODY.PEEK[])")
    if os.geteuid() != 0 or shutil.which("dovecot") is None:
        print("needs root and Dovecot: apt-get install dovecot-imapd", file=sys.stderr)
        return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle + 1000
    if soft < wanted:
        if hard < wanted:
            print(f"ulimit -n is {hard}; --idle {args.idle} needs {wanted}", file=sys.stderr)
            return 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    root = Path(tempfile.mkdtemp(prefix="courrier-bench-imap-"))
    root.chmod(0o755)  # Dovecot's processes run as its users
    notes: list[str] = []
    runs: dict[str, list[dict[str, Reply]]] = {}
    idle: dict[str, IdleResult] = {}
    try:
        messages = mailbox(args.messages)
        lengths = [len(m.data) for m in messages]
        contents = (
            f"{sum(lengths) / 2**20:.1f} MiB, {min(lengths) / 1024:.1f}–"
            f"{max(lengths) / 1024:.1f} KiB each"
        )
        dovecot = Dovecot(root / "dovecot", args.idle)
        courrier = Courrier(root / "courrier", args.idle)
        servers: tuple[Server, Server] = (dovecot, courrier)
        names = (dovecot.name, courrier.name)
        with contextlib.ExitStack() as stack:
            stack.enter_context(inotify_instances(args.idle and 4 * args.idle + 256, notes))
            for server in servers:
                stack.callback(server.stop)
            _timed("Dovecot Maildir written", dovecot.fill, messages)
            dovecot.start()
            courrier.start()
            _timed("courrier filled by MULTIAPPEND", courrier.fill, messages)
            os.sync()
            for server in servers:
                _timed(f"{server.name}: warm-up round", one_round, server, "warm")
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for server in order:
                    runs.setdefault(server.name, []).append(one_round(server, str(r)))
                    time.sleep(0.5)
                print(f"# round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
            sizes = [
                [
                    int(x)
                    for x in re.findall(rb"RFC822\.SIZE (\d+)", runs[n][-1][COMMANDS[2][0]].data)
                ]
                for n in names
            ]
            if sizes[0] != sizes[1]:
                notes.append("the two mailboxes' RFC822.SIZE lists differ (message order?)")
            if args.idle:
                for server in servers:
                    server.restart()
                    print(f"# {server.name}: opening {args.idle} idlers", file=sys.stderr)
                    idle[server.name] = idle_phase(
                        server, args.idle, args.deliveries, args.herd, args.gap
                    )
                    server.stop()
                    print(
                        f"# {server.name}: idle done in {idle[server.name].setup_seconds:.0f} s "
                        "of set-up",
                        file=sys.stderr,
                    )
        for name, result in idle.items():
            if result.login_failures:
                notes.append(
                    f"{name}: {len(result.login_failures)} idler LOGINs failed and were tried "
                    f"again, first: {result.login_failures[0]}"
                )
        warnings = [
            line
            for line in dovecot.log_lines("Warning") + dovecot.log_lines("Error")
            if "Killed with signal 15" not in line  # our own stop
        ]
        if warnings:
            notes.append(f"Dovecot logged {len(warnings)} warnings/errors, first: {warnings[0]}")
    finally:
        if args.keep:
            print(f"# kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    text = report(names, runs, idle, args, contents, notes)
    print(text)
    if args.record:
        record(
            "IMAP on a 10,000-message mailbox",
            "bench.imap_bench",
            f"same run, {names[0]} (Maildir, one process per connection) beside courrier.",
            text,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
