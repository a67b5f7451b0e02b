"""Outbound relay throughput: courrier against stock Postfix, same machine, same run, same sink.

    python -m bench.relay_bench [--messages 10000] [--rounds 3] [--record] [--no-dns]
                                [--commit REV] [--courrier-env KEY=VALUE ...] [--py-spy FILE]

What is timed is the *relay path only*: the queue already holds N messages and delivery is
then switched on; the clock runs until the queue is empty and the sink has them all.

* **Messages**: N distinct messages of 4 KiB (headers included), one recipient each,
  ``user{i}@sink.test`` — one destination domain, so each MTA's per-destination parallelism is
  what counts (Postfix: ``default_destination_concurrency_limit`` 20, starting at
  ``initial_destination_concurrency`` 5; courrier: ``queue.concurrency`` 20, ``queue.batch``
  200). Both run with their defaults; ``--courrier-env`` adds settings for a tuned run.
* **Sink**: Postfix's ``smtp-sink`` (C, one process, PIPELINING, no STARTTLS, no CHUNKING) on
  127.0.0.9:2600, started afresh for each drain with ``-c`` (live counters, read from its
  stdout: the end of the clock) and ``-D`` (every transaction appended to a dump file). After
  each drain the dump is checked: exactly the N expected recipients, each once, and N
  ``X-Bench-Id`` headers — a drain that loses or duplicates mail fails the run.
* **Fill** (untimed): the same client for both (``smtplib``, 8 connections, many messages
  per connection, identical bytes). Postfix: a private instance started from a temporary
  directory as in ``bench.smtp_accept`` (its default queue; no chroot), mail injected over
  SMTP from ``mynetworks``; ``check_client_access static:HOLD`` puts every message on hold,
  so nothing is scheduled while the queue fills. courrier: ``courrier serve`` from a
  temporary data directory with ``queue.deliver = false`` and ``smtp.sent_copy = false`` (no
  Sent copies: they only slow the fill), mail submitted on 587+offset with STARTTLS and AUTH
  as ``alice@example.org`` — the normal submission path (DKIM signing included, when set).
* **Delivery on** (untimed part): Postfix: ``postsuper -H ALL`` moves the held files to the
  deferred queue, where nothing looks at them before ``queue_run_delay`` (300 s); the clock
  starts, then ``postqueue -f``. (A run fails if the sink has anything before the clock.)
  courrier: the server is stopped and started again with ``queue.deliver = true``,
  ``queue.outbound_port = 2600`` and ``dns.resolvers`` pointing at a DNS stand-in
  (``tests/support/dnsstub.py`` in a process of its own) that answers ``sink.test MX 10
  mx.sink.test.`` and ``mx.sink.test A 127.0.0.9``; the clock starts when
  its last SMTP/IMAP/POP3 listener accepts connections (the queue runner is started right
  after the listeners are bound), so Python's start-up is not counted.
* **Routing is not symmetric, on purpose**: Postfix gets ``transport_maps`` ``sink.test →
  smtp:[127.0.0.9]:2600`` (no DNS at all; Postfix has no resolver of its own and would ask
  the system's on port 53), courrier resolves MX, then AAAA and A of the MX host, for every
  message, as it would on the Internet (it has no DNS cache). The stand-in's CPU is shown
  separately and counted for neither MTA; its latency is part of courrier's time.
  ``--no-dns`` addresses the recipients to the domain literal ``[127.0.0.9]`` instead: no
  lookup by either MTA (Postfix's ``transport_maps`` has that key too, for the port), which
  compares the queues and SMTP clients alone.
* **End**: the sink's counter reaches N, then the queue is seen empty (Postfix: no file left
  under ``incoming``, ``active``, ``deferred``, ``hold``, ``maildrop``; courrier: no row left
  in its ``queue`` table, read from the SQLite file), polled every 10 ms. The MTA logs are
  read too (``status=sent`` lines for the drain, and ``deferred``/``bounced`` must be 0).
* **CPU**: each MTA runs in a cgroup of its own (cgroup v1 ``cpuacct``, or v2 ``cpu.stat``),
  so the figure is the CPU of *all* its processes during the drain — Postfix's master,
  qmgr, smtp clients, scache, postlog, and those that exited meanwhile; courrier's one process
  and its threads. This is fairer than the whole machine's busy time minus the client's (as
  ``bench.smtp_accept`` does) on a shared machine, and it also gives the sink's and the DNS
  stand-in's CPU, reported beside. Needs root (cgroups; Postfix drops to its user).
* **Connections**: the sink's session counter once the MTA has closed its idle cached
  connections (without the bench's own probe): Postfix reuses connections to a busy
  destination (``smtp_connection_cache_on_demand``), courrier opens one per message.
* **Rounds**: ``--rounds`` (3) rounds, each filling and draining both, the order alternating
  between rounds; the table gives medians and each round's rate. The machine has two cores
  and is shared: read the ratios, not the absolute figures. Both MTAs log every delivery
  (courrier at its default level into a file, Postfix through postlog into a file).
* **Which courrier**: the work tree's ``src/``, or with ``--commit REV`` a snapshot of that
  commit's (``git archive``, run through ``PYTHONPATH``), so that edits made in the tree while
  the bench runs are not measured; the table names the commit. From the work tree, a run
  during which ``src/`` changed is refused.
* ``--py-spy FILE``: record courrier's first drain with py-spy (``--nonblocking``, raw
  collapsed stacks) for profiling; its numbers are then skewed a little.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pwd
import re
import shutil
import smtplib
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path

from bench.results import record

ROOT = Path(__file__).resolve().parents[1]
SINK_ADDRESS = "127.0.0.9"
SINK_PORT = 2600
POSTFIX_PORT = 2526
COURRIER_OFFSET = 31000
#: The listeners courrier binds before it starts its queue runner (server.listeners()).
COURRIER_PORTS = (25, 587, 465, 143, 993, 110, 995)
DOMAIN = "sink.test"
#: The recipients' domain with ``--no-dns``: a domain literal, no lookup by either MTA.
LITERAL = f"[{SINK_ADDRESS}]"
SENDER = "alice@example.org"
PASSWORD = "a long passphrase here"
MESSAGE_SIZE = 4096
FILL_CONNECTIONS = 8
POLL = 0.01

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
# Everything accepted goes on hold: the queue fills, nothing is scheduled.
smtpd_recipient_restrictions = check_client_access static:HOLD, permit_mynetworks,
    reject_unauth_destination
transport_maps = inline:{{ {{{domain} = smtp:[{sink}]:{port}}},
    {{[{sink}] = smtp:[{sink}]:{port}}} }}
alias_maps =
alias_database =
"""


# --- CPU accounting ----------------------------------------------------------------------


class CPUGroup:
    """A cgroup whose processes' CPU time (including exited ones) can be read."""

    def __init__(self, name: str) -> None:
        v1 = Path("/sys/fs/cgroup/cpuacct")
        v2 = next(
            (
                p
                for p in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
                if (p / "cgroup.controllers").exists()
            ),
            None,
        )
        if (v1 / "cpuacct.usage").exists():
            self.parent = v1
            self.v2 = False
        elif v2 is not None:
            self.parent = v2
            self.v2 = True
        else:
            raise RuntimeError("no cgroup cpuacct (v1) or cgroup2 hierarchy found")
        self.path = self.parent / f"courrier-relay-bench-{name}-{os.getpid()}"
        self.path.mkdir(exist_ok=True)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the group (the shell moves itself in, then execs)."""
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh", *argv]

    def seconds(self) -> float:
        if self.v2:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, value = line.split()
                if key == "usage_usec":
                    return int(value) / 1e6
            raise RuntimeError("cpu.stat without usage_usec")
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        """Move whatever is left to the parent group and remove this one."""
        for _ in range(50):
            pids = (self.path / "cgroup.procs").read_text().split()
            for pid in pids:
                with contextlib.suppress(OSError):
                    (self.parent / "cgroup.procs").write_text(pid)
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


# --- messages and fill -------------------------------------------------------------------


def message(i: int, domain: str) -> bytes:
    """Message ``i``: 4 KiB, to ``user{i}@domain``."""
    head = (
        f"From: Alice <{SENDER}>\r\n"
        f"To: <user{i}@{domain}>\r\n"
        f"Subject: relay bench message {i}\r\n"
        f"Date: {formatdate(localtime=False)}\r\n"
        f"Message-ID: <relay-{i}-{os.getpid()}@bench.test>\r\n"
        f"X-Bench-Id: {i}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    ).encode()
    line = b"abcdefghijklmnopqrstuvwxyz0123456789" * 2 + b"\r\n"  # 74 bytes
    lines, rest = divmod(MESSAGE_SIZE - len(head), len(line))
    if rest < 2:  # the last line: at least its CRLF (never a bare CR or LF)
        lines, rest = lines - 1, rest + len(line)
    return head + line * lines + b"x" * (rest - 2) + b"\r\n"


def fill(port: int, messages: int, domain: str, *, submission: bool) -> float:
    """Queue ``messages`` messages through ``port``; the seconds it took."""
    errors: list[BaseException] = []
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def connect() -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", port, timeout=120)
        if submission:
            client.starttls(context=context)
            client.login(SENDER, PASSWORD)
        return client

    def worker(first: int) -> None:
        try:
            client = connect()
            for i in range(first, messages, FILL_CONNECTIONS):
                client.sendmail(SENDER, [f"user{i}@{domain}"], message(i, domain))
            client.quit()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(FILL_CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"fill failed: {errors[0]!r}") from errors[0]
    return time.perf_counter() - start


# --- the sink ----------------------------------------------------------------------------


class Sink:
    """``smtp-sink`` on SINK_ADDRESS:SINK_PORT with live counters and a dump file."""

    def __init__(self, dump: Path, cpu: CPUGroup) -> None:
        self.dump = dump
        self.count = 0
        #: SMTP sessions so far (connections the MTA opened).
        self.sessions = 0
        self.process = subprocess.Popen(
            cpu.wrap(
                [
                    "smtp-sink",
                    "-u",
                    "nobody",
                    "-c",
                    "-D",
                    str(dump),
                    f"{SINK_ADDRESS}:{SINK_PORT}",
                    "256",
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_port(SINK_ADDRESS, SINK_PORT)

    def _read(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        fd = self.process.stdout.fileno()
        while chunk := os.read(fd, 4096):
            pending += chunk
            *done, pending = re.split(rb"[\r\n]", pending)
            for line in done:
                found = re.search(rb"mesg=(\d+)", line)
                if found:
                    self.count = int(found[1])
                found = re.search(rb"sess=(\d+)", line)
                if found:
                    self.sessions = int(found[1])

    def connections(self) -> int:
        """Sessions the MTA opened, once its cached ones are closed (Postfix keeps idle
        connections for ``smtp_connection_cache_time_limit``, 2 s); without our probe."""
        deadline = time.monotonic() + 15
        while _established(SINK_PORT) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)  # the counters are written as each session ends
        return self.sessions - 1

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)

    def check(self, messages: int, domain: str) -> None:
        """The dump holds each expected recipient exactly once, and nothing else."""
        data = self.dump.read_bytes()
        recipients = Counter(re.findall(rb"^X-Rcpt-Args: <([^>]*)>", data, re.M))
        expected = {f"user{i}@{domain}".encode() for i in range(messages)}
        missing = expected - recipients.keys()
        extra = recipients.keys() - expected
        twice = [r for r, n in recipients.items() if n > 1]
        ids = len(re.findall(rb"^X-Bench-Id: \d+\r?$", data, re.M))
        if missing or extra or twice or ids != messages:
            raise RuntimeError(
                f"sink dump: {len(missing)} missing, {len(extra)} unexpected, "
                f"{len(twice)} duplicated recipients, {ids} X-Bench-Id headers "
                f"(expected {messages})"
            )


def _established(port: int) -> int:
    """Established TCP connections to local ``port`` (IPv4)."""
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "01":
            n += 1
    return n


def wait_port(host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.005)


# --- the MTAs ----------------------------------------------------------------------------


class Postfix:
    name = "Postfix"

    def __init__(self, root: Path, cpu: CPUGroup) -> None:
        self.root = root
        self.cpu = cpu
        self.etc = root / "etc"
        self._log_offset = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        entry = pwd.getpwnam("postfix")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(mode=0o755)
        self.etc.mkdir()
        for sub in ("queue", "data"):
            (self.root / sub).mkdir()
        os.chown(self.root / "data", entry.pw_uid, entry.pw_gid)
        lines = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            fields = line.split()
            if fields[:2] == ["smtp", "inet"]:
                line = f"127.0.0.1:{POSTFIX_PORT} inet n - n - - smtpd"
            elif len(fields) >= 8 and not line.startswith("#") and fields[4] == "y":
                fields[4] = "n"  # no chroot: the instance lives in a temp dir
                line = " ".join(fields)
            lines.append(line)
        (self.etc / "master.cf").write_text("\n".join(lines) + "\n")
        (self.etc / "main.cf").write_text(
            _MAIN_CF.format(root=self.root, domain=DOMAIN, sink=SINK_ADDRESS, port=SINK_PORT)
        )
        _allow_instance(self.etc)
        subprocess.run(self.cpu.wrap(["postfix", "-c", str(self.etc), "start"]), check=True)
        try:
            wait_port("127.0.0.1", POSTFIX_PORT)
            yield
        finally:
            subprocess.run(["postfix", "-c", str(self.etc), "stop"], check=False)

    def fill(self, messages: int, domain: str) -> float:
        seconds = fill(POSTFIX_PORT, messages, domain, submission=False)
        deadline = time.monotonic() + 120
        while self.held() < messages:  # cleanup may still be writing the last files
            if time.monotonic() > deadline:
                raise RuntimeError(f"Postfix holds {self.held()} of {messages} messages")
            time.sleep(0.05)
        return seconds

    def held(self) -> int:
        return _count_files(self.root / "queue" / "hold")

    def prepare(self) -> None:
        """Delivery still off: the held messages go to the deferred queue."""
        self._log_offset = _size(self.root / "maillog")
        subprocess.run(
            ["postsuper", "-c", str(self.etc), "-H", "ALL"], check=True, stderr=subprocess.DEVNULL
        )

    def kick(self) -> None:
        subprocess.run(["postqueue", "-c", str(self.etc), "-f"], check=True)

    def queued(self) -> int:
        queue = self.root / "queue"
        return sum(
            _count_files(queue / d) for d in ("maildrop", "incoming", "active", "deferred", "hold")
        )

    def finish(self) -> str:
        """The log of the drain (Postfix logs through postlog: give it a moment)."""
        time.sleep(1)
        with (self.root / "maillog").open("rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def log_counts(self, log: str) -> dict[str, int]:
        lines = [line for line in log.splitlines() if " postfix/smtp[" in line]
        return {s: sum(f"status={s}" in line for line in lines) for s in _STATES}


class Courrier:
    name = "courrier"

    def __init__(
        self,
        root: Path,
        cpu: CPUGroup,
        dns: str,
        extra_env: dict[str, str],
        source: Path | None = None,
    ) -> None:
        self.root = root
        self.data = root / "data"
        self.cpu = cpu
        self.dns = dns
        #: A ``src`` directory to run courrier from (``--commit``) instead of the work tree.
        self.env = {**os.environ, **({"PYTHONPATH": str(source)} if source else {})}
        self.extra_env = extra_env
        self.server: subprocess.Popen[bytes] | None = None
        self.log_path = root / "courrier.log"
        self._log_offset = 0
        self.profile: Path | None = None
        self._profiler: subprocess.Popen[bytes] | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        cli = [sys.executable, "-m", "courrier"]
        subprocess.run(
            [*cli, "domain", "add", "example.org", "--data", str(self.data)],
            check=True,
            stdout=subprocess.DEVNULL,
            env=self.env,
        )
        subprocess.run(
            [*cli, "user", "add", SENDER, "--password-stdin", "--data", str(self.data)],
            input=PASSWORD.encode() + b"\n",
            check=True,
            stdout=subprocess.DEVNULL,
            env=self.env,
        )
        try:
            yield
        finally:
            self._stop()

    def _start(self, deliver: bool) -> None:
        env = {
            **self.env,
            "COURRIER_SERVER_LISTEN": "127.0.0.1",
            "COURRIER_SMTP_SENT_COPY": "false",
            "COURRIER_QUEUE_DELIVER": "true" if deliver else "false",
            "COURRIER_QUEUE_OUTBOUND_PORT": str(SINK_PORT),
            "COURRIER_DNS_RESOLVERS": self.dns,
            **self.extra_env,
        }
        self.server = subprocess.Popen(
            self.cpu.wrap(
                [
                    sys.executable,
                    "-m",
                    "courrier",
                    "serve",
                    "--data",
                    str(self.data),
                    "--port-offset",
                    str(COURRIER_OFFSET),
                ]
            ),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("ab"),
        )
        for port in COURRIER_PORTS:
            wait_port("127.0.0.1", port + COURRIER_OFFSET)

    def _stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=60)
            self.server = None

    def fill(self, messages: int, domain: str) -> float:
        self._start(deliver=False)
        try:
            seconds = fill(587 + COURRIER_OFFSET, messages, domain, submission=True)
        finally:
            self._stop()
        if self.queued() != messages:
            raise RuntimeError(f"courrier queued {self.queued()} of {messages} messages")
        return seconds

    def prepare(self) -> None:
        """Start again with delivery on (returns once it is up: start-up is not timed)."""
        self._log_offset = _size(self.log_path)
        self._start(deliver=True)
        if self.profile is not None:
            assert self.server is not None
            self._profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "-o",
                    str(self.profile),
                    "--pid",
                    str(self.server.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.profile = None

    def kick(self) -> None:
        """Nothing: the queue runner looks at the queue as soon as it starts."""

    def queued(self) -> int:
        uri = f"file:{self.data / 'courrier.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
            return int(db.execute("SELECT count(*) FROM queue").fetchone()[0])

    def finish(self) -> str:
        if self._profiler is not None:
            self._profiler.send_signal(2)  # SIGINT: py-spy writes its file
            self._profiler.wait(timeout=60)
            self._profiler = None
        self._stop()
        with self.log_path.open("rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def log_counts(self, log: str) -> dict[str, int]:
        lines = [line for line in log.splitlines() if " relay=" in line]
        return {s: sum(f"status={s}" in line for line in lines) for s in _STATES}


_STATES = ("sent", "deferred", "bounced")


def _allow_instance(etc: Path) -> None:
    """``postfix -c`` wants the default instance to list our directory: add it to the one
    ``alternate_config_directories`` line (merging any others, which would override it)."""
    default = Path("/etc/postfix/main.cf")
    text = default.read_text() if default.exists() else "compatibility_level = 3.6\n"
    key = "alternate_config_directories"
    kept, dirs = [], []
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            dirs += value.replace(",", " ").split()
        else:
            kept.append(line)
    if str(etc) in dirs and text.count(key) == 1:
        return
    dirs = list(dict.fromkeys([*dirs, str(etc)]))
    default.write_text("\n".join([*kept, f"{key} = {' '.join(dirs)}"]) + "\n")


def _count_files(directory: Path) -> int:
    n = 0
    for _, _, files in os.walk(directory):
        n += len(files)
    return n


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# --- one drain ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Drain:
    seconds: float
    cpu: float  # the MTA's CPU seconds
    sink_cpu: float
    dns_cpu: float
    fill_seconds: float
    first_at: float  # seconds from the start to the sink's first message
    sessions: int  # connections the sink saw
    dns_queries: Counter[str]  # by type


def drain(
    mta: Postfix | Courrier,
    messages: int,
    domain: str,
    dumps: Path,
    cpus: dict[str, CPUGroup],
    dns: DNSStandIn,
    label: str,
) -> Drain:
    fill_seconds = mta.fill(messages, domain)
    dump = dumps / f"{label}.dump"
    sink = Sink(dump, cpus["sink"])
    try:
        mta.prepare()
        cpu0 = cpus[mta.name].seconds()
        sink0, dns0 = cpus["sink"].seconds(), cpus["dns"].seconds()
        queries0 = dns.queries()
        start = time.perf_counter()
        if sink.count:
            raise RuntimeError(f"{mta.name} delivered {sink.count} messages before the clock")
        mta.kick()
        first_at = 0.0
        deadline = start + max(300.0, messages / 2)
        while sink.count < messages:
            if not first_at and sink.count:
                first_at = time.perf_counter() - start
            if time.perf_counter() > deadline or sink.process.poll() is not None:
                raise RuntimeError(
                    f"{mta.name}: the sink has {sink.count} of {messages} messages, "
                    f"{mta.queued()} still queued"
                )
            time.sleep(POLL)
        while mta.queued():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{mta.name}: {mta.queued()} messages stay queued")
            time.sleep(POLL)
        seconds = time.perf_counter() - start
        cpu = cpus[mta.name].seconds() - cpu0
        sink_cpu, dns_cpu = cpus["sink"].seconds() - sink0, cpus["dns"].seconds() - dns0
        queries = dns.queries() - queries0
        connections = sink.connections()
    finally:
        sink.stop()
    log = mta.finish()
    sink.check(messages, domain)
    dump.unlink()
    counts = mta.log_counts(log)
    if counts["sent"] != messages or counts["deferred"] or counts["bounced"]:
        raise RuntimeError(f"{mta.name}: its log says {counts} (expected {messages} sent)")
    return Drain(seconds, cpu, sink_cpu, dns_cpu, fill_seconds, first_at, connections, queries)


# --- DNS stand-in ------------------------------------------------------------------------


def serve_dns(address: str) -> None:
    """Serve the stand-in's records on ``address`` until killed; print ``host:port``, then
    on each SIGUSR1 the queries so far by type (a JSON object on one line)."""
    import asyncio
    import json
    import signal

    sys.path.insert(0, str(ROOT))
    from tests.support.dnsstub import DNSStub

    stub = DNSStub(
        {f"{DOMAIN} MX": [f"10 mx.{DOMAIN}."], f"mx.{DOMAIN} A": [SINK_ADDRESS]},
    )

    def dump() -> None:
        print(json.dumps(Counter(rdtype for _, rdtype in stub.queries)), flush=True)

    async def main() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)
        async with stub.serving(address) as where:
            print(where, flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())


class DNSStandIn:
    """The stand-in in a process (and cgroup) of its own."""

    def __init__(self, cpu: CPUGroup) -> None:
        self.cpu = cpu
        self.process = subprocess.Popen(
            cpu.wrap([sys.executable, "-m", "bench.relay_bench", "--serve-dns", "127.0.0.1"]),
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        #: ``host:port``, for ``dns.resolvers``.
        self.address = self.stdout.readline().decode().strip()

    def queries(self) -> Counter[str]:
        """Queries answered so far, by type."""
        import json
        import signal

        self.process.send_signal(signal.SIGUSR1)
        return Counter(json.loads(self.stdout.readline()))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def source_state() -> tuple[str, str]:
    """The commit that courrier runs from (with ``+changes`` when ``src/`` differs from it),
    and a digest of ``src/``: a run during which the code changed is not a measurement."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return (commit + ("+changes" if dirty else "") or "unknown"), digest.hexdigest()


# --- report ------------------------------------------------------------------------------


def report(
    runs: dict[str, list[Drain]], messages: int, rounds: int, tuned: str, no_dns: bool
) -> str:
    def med(name: str, f: Callable[[Drain], float]) -> float:
        return statistics.median(f(d) for d in runs[name])

    lines = [
        f"{messages:,} messages of 4 KiB, one recipient each, all to "
        + (
            f"user{{i}}@{LITERAL} (no DNS for either MTA)"
            if no_dns
            else f"user{{i}}@{DOMAIN} (courrier: MX and what follows from the DNS stand-in; "
            "Postfix: transport_maps, no DNS)"
        )
        + f", relayed to smtp-sink on loopback; queue filled first, then drained; medians of "
        f"{rounds} rounds"
        + (f"; courrier with {tuned}" if tuned else "; both with default settings"),
        "",
        "| MTA | msg/s (each round) | drain s | MTA CPU ms/msg | sink CPU ms/msg "
        "| DNS queries/msg | DNS stub CPU ms/msg | connections | first msg after s | fill msg/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in runs:
        rates = [messages / d.seconds for d in runs[name]]
        each = ", ".join(f"{r:,.0f}" for r in rates)
        lines.append(
            f"| {name} | {statistics.median(rates):,.0f} ({each}) "
            f"| {med(name, lambda d: d.seconds):.1f} "
            f"| {med(name, lambda d: d.cpu) / messages * 1000:.3f} "
            f"| {med(name, lambda d: d.sink_cpu) / messages * 1000:.3f} "
            f"| {med(name, lambda d: d.dns_queries.total()) / messages:.1f} "
            f"| {med(name, lambda d: d.dns_cpu) / messages * 1000:.3f} "
            f"| {med(name, lambda d: d.sessions):,.0f} "
            f"| {med(name, lambda d: d.first_at):.2f} "
            f"| {statistics.median(messages / d.fill_seconds for d in runs[name]):,.0f} |"
        )
    rate = {n: statistics.median(messages / d.seconds for d in runs[n]) for n in runs}
    cpu = {n: med(n, lambda d: d.cpu) for n in runs}
    lines += [
        "",
        f"courrier ÷ Postfix: msg/s {rate['courrier'] / rate['Postfix']:.2f}, "
        f"CPU per message {cpu['courrier'] / cpu['Postfix']:.2f}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are shown)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--courrier-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra COURRIER_* setting for courrier's drain (a tuned run)",
    )
    parser.add_argument(
        "--no-dns",
        action="store_true",
        help=f"recipients at {LITERAL} (a domain literal): no DNS lookup by either MTA",
    )
    parser.add_argument(
        "--commit",
        metavar="REV",
        help="run courrier from this commit's src/ (a snapshot) rather than the work tree",
    )
    parser.add_argument("--py-spy", type=Path, help="profile courrier's first drain into FILE")
    parser.add_argument("--serve-dns", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_dns:
        serve_dns(args.serve_dns)
        return 0
    for tool in ("smtp-sink", "postfix", "postsuper", "postqueue"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: apt-get install postfix", file=sys.stderr)
            return 1
    extra = dict(item.split("=", 1) for item in args.courrier_env)
    domain = LITERAL if args.no_dns else DOMAIN
    cpus = {name: CPUGroup(name) for name in ("Postfix", "courrier", "sink", "dns")}
    tmp = Path(tempfile.mkdtemp(prefix="bench-relay-", dir=ROOT))
    tmp.chmod(0o755)
    dumps = Path(tempfile.mkdtemp(prefix="courrier-relay-sink-"))
    dumps.chmod(0o777)  # smtp-sink runs as nobody
    runs: dict[str, list[Drain]] = {"Postfix": [], "courrier": []}
    source = source_state()
    commit = None
    if args.commit:  # resolved now: the branch may move while the bench runs
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{args.commit}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    with contextlib.ExitStack() as stack:
        for group in cpus.values():
            stack.callback(group.close)  # last, once every process is gone
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        stack.callback(shutil.rmtree, dumps, ignore_errors=True)
        postfix = Postfix(
            Path(tempfile.gettempdir()) / "courrier-bench-relay-postfix", cpus["Postfix"]
        )
        dns = DNSStandIn(cpus["dns"])
        stack.callback(dns.close)
        with postfix.running():
            snapshot = None
            if commit:
                snapshot = tmp / "snapshot"
                snapshot.mkdir()
                archive = subprocess.run(
                    ["git", "-C", str(ROOT), "archive", commit, "src"],
                    check=True,
                    capture_output=True,
                ).stdout
                subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive, check=True)
                snapshot /= "src"
            courrier = Courrier(tmp / "c", cpus["courrier"], dns.address, extra, snapshot)
            courrier.profile = args.py_spy
            with courrier.running():
                for r in range(args.rounds):
                    order: list[Postfix | Courrier] = [postfix, courrier]
                    if r % 2:
                        order.reverse()
                    for mta in order:
                        result = drain(
                            mta, args.messages, domain, dumps, cpus, dns, f"{mta.name}-{r}"
                        )
                        runs[mta.name].append(result)
                        print(
                            f"round {r + 1} {mta.name}: {args.messages / result.seconds:,.0f} "
                            f"msg/s, {result.cpu / args.messages * 1000:.3f} ms CPU/msg "
                            f"(fill {result.fill_seconds:.0f} s), DNS queries "
                            f"{dict(result.dns_queries)}",
                            file=sys.stderr,
                            flush=True,
                        )
    tuned = ", ".join(args.courrier_env)
    text = report(runs, args.messages, args.rounds, tuned, args.no_dns)
    if commit:
        text += f"\n\ncourrier at {commit[:7]}"
    else:
        text += f"\n\ncourrier at {source[0]} (work tree)"
    print(text)
    if not commit and source_state() != source:
        print("courrier's source changed during the run: not recorded, run again", file=sys.stderr)
        return 1
    if args.record:
        record(
            "Outbound relay",
            "bench.relay_bench",
            "same run; the method is in the module's docstring.",
            text,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
