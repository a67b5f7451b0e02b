"""The two mail servers the IMAP and POP3 benchmarks compare, and what both put in them.

Owns: the generated mailbox (:func:`mailbox`), the small IMAP client that the IMAP benchmark
times and that fills courrier by MULTIAPPEND (:class:`Client`), and the two servers' processes:
a private Dovecot instance run from a temporary directory (:class:`Dovecot`: Maildir written as
its LDA would, passwd-file with an argon2id hash, no TLS, plaintext auth allowed; IMAP, and POP3
if asked) and courrier (:class:`Courrier`: ``courrier serve`` with a port offset, plaintext
logins allowed on loopback for IMAP and POP3), with their process trees' CPU time; and how the
results tables write a time. The benchmarks own their commands, timing and report.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import math
import os
import pwd
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DOVECOT_PORT = 31143
DOVECOT_POP3_PORT = 31110
COURRIER_OFFSET = 32000  # IMAP on 32143, POP3 on 32110
PASSWORD = "a long passphrase here"
SUBJECT_WORD = "quarterly"
TEXT_WORD = "zeppelin"

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


def _greeting(port: int) -> bytes:
    """Connect, read the server's first line (IMAP's or POP3's greeting), hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"port {port}: closed before the greeting")
            data += chunk
    return data


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until a server greets on ``port`` (30 s at most, less if ``proc`` exits)."""
    for _ in range(300):
        if proc.poll() is not None:
            break
        try:
            _greeting(port)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


class Server:
    name: str
    user: str
    port: int  # IMAP
    pop3_port: int
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
protocols = {protocols}
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

#: Appended to :data:`_DOVECOT_CONF` for ``Dovecot(pop3=True)``: POP3 beside IMAP; UIDL as
#: Dovecot's documentation recommends for new installations (UID and UIDVALIDITY in hex).
_DOVECOT_POP3 = """\
pop3_uidl_format = %08Xu%08Xv
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


class Dovecot(Server):
    user = "bob"
    port = DOVECOT_PORT
    pop3_port = DOVECOT_POP3_PORT

    def __init__(self, root: Path, idle: int, *, pop3: bool = False) -> None:
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
        pop3_conf = _DOVECOT_POP3.format(pop3_port=self.pop3_port) if pop3 else ""
        self.conf.write_text(
            _DOVECOT_CONF.format(
                root=root,
                protocols="imap pop3" if pop3 else "imap",
                uid=uid,
                gid=gid,
                port=self.port,
                connections=idle + 100,
                processes=idle + 200,
                clients=2 * idle + 1000,
            )
            + pop3_conf
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
            wait_port(self.port, self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"Dovecot did not start; see {self.root}/dovecot.log") from None

    def log_lines(self, needle: str) -> list[str]:
        path = self.root / "dovecot.log"
        if not path.exists():
            return []
        return [line for line in path.read_text(errors="replace").splitlines() if needle in line]

    def complaints(self) -> list[str]:
        """Its logged warnings and errors, but for our own stop."""
        return [
            line
            for line in self.log_lines("Warning") + self.log_lines("Error")
            if "Killed with signal 15" not in line
        ]


class Courrier(Server):
    name = "courrier"
    user = "bob@example.org"
    port = 143 + COURRIER_OFFSET
    pop3_port = 110 + COURRIER_OFFSET

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
                "COURRIER_POP3_PLAINTEXT_ON_LOOPBACK": "true",
                "COURRIER_IMAP_MAX_CONNECTIONS_PER_IP": str(self.idle + 100),
            },
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "courrier.log").open("ab"),
        )
        try:
            wait_port(self.port, self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"courrier did not start; see {self.root}/courrier.log") from None

    def fill(self, messages: Sequence[Message], batch: int = 100) -> None:
        client = self.login()
        for start in range(0, len(messages), batch):
            client.append("INBOX", messages[start : start + batch])
        client.run("LOGOUT")
        client.close()


# -- the servers' processes -------------------------------------------------------------------


def process_tree(root_pid: int) -> list[int]:
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


# -- the report -------------------------------------------------------------------------------


def milliseconds(seconds: float) -> str:
    """A time for a results table: 3 significant figures or so, infinity as "> 60 s"."""
    if seconds == math.inf:
        return "> 60 s"
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def table_head(peer: str) -> list[str]:
    """The header of a table of medians, ``peer`` (Dovecot) against courrier."""
    return [
        f"| command | {peer} ms | courrier ms | courrier ÷ Dovecot | goal | met | response |",
        "|---|---|---|---|---|---|---|",
    ]


def table_row(
    label: str, names: tuple[str, str], times: dict[str, list[float]], goal: float, response: str
) -> str:
    """One row under :func:`table_head`: each server's median over the rounds (each round in
    brackets), courrier's median ÷ the peer's against ``goal``, and ``response`` (a size)."""
    peer, ours = names
    med = {n: statistics.median(times[n]) for n in names}
    ratio = med[ours] / med[peer]
    each = {n: ", ".join(milliseconds(t) for t in times[n]) for n in names}
    return (
        f"| `{label}` | {milliseconds(med[peer])} ({each[peer]}) | {milliseconds(med[ours])} "
        f"({each[ours]}) | {ratio:.2f} | ≤ {goal:g} | {'yes' if ratio <= goal else '**no**'} "
        f"| {response} |"
    )
