"""POP3: RETR of 1,000 messages in one session, courrier against stock Dovecot, same run.

    python -m bench.pop3_bench [--messages 1000] [--rounds 5] [--record]

Both servers get the same generated mailbox as the IMAP benchmark (:mod:`bench.dovecot`: 2–8 KiB
messages), in which one message in 20 also has lines starting with "." so that dot-stuffing is
exercised. Dovecot (Debian's ``dovecot-pop3d``) runs as a private instance from a temporary
directory with POP3 beside IMAP (Maildir written as its LDA would, ``pop3_uidl_format =
%08Xu%08Xv``, passwd-file with an argon2id hash of courrier's parameters, no TLS); courrier gets
its copy by IMAP MULTIAPPEND and allows USER/PASS on loopback. Filling is not measured.

This module owns the POP3 side: a small client over a blocking socket that reads each response
whole (status line, and for a multi-line one everything up to the ".CRLF" terminator) without
parsing it, the session timed in each round, the check of what came back, and the table. One
session per server and round: USER + PASS (LOGIN: courrier remembers a verified password for 15
minutes, Dovecot checks the hash each time), STAT, LIST, UIDL, RETR of every message one command
at a time, then again pipelined (all commands sent at once, RFC 2449 §6.6; only if both servers
advertise PIPELINING in CAPA), TOP n 0 of every message one at a time, QUIT without DELE so that
every round finds the same maildrop. Each is timed from its first byte sent to the last byte of
its (last) response. A round runs once untimed on each server first; then rounds alternate
between the servers and the table gives the medians.

Every response is checked after the timing: LIST sizes, RETR content (dot-stuffing removed) and
TOP n 0 (the header and its empty line) must be the stored messages' bytes exactly, on both
servers; a mismatch is printed, noted in bold under the table, and the exit status is 2.
Needs root (Dovecot's private instance drops to its users).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.dovecot import (
    PASSWORD,
    Courrier,
    Dovecot,
    Message,
    Server,
    mailbox,
    process_tree,
    table_head,
    table_row,
    wait_port,
    wait_quiet,
)
from bench.results import record

_COMPACT_AT = 1 << 20  # consumed input octets dropped from the client's buffer past this

# -- the client -------------------------------------------------------------------------------


class POP3Error(RuntimeError):
    pass


class POP3Client:
    """One POP3 connection over a blocking socket; responses are read whole, not parsed.

    A multi-line response ends at the first CRLF "." CRLF from its status line's own CRLF on
    (dot-stuffing makes sure no line of content is a lone "."): one ``find`` per received chunk.
    """

    def __init__(self, port: int, name: str) -> None:
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.greeting = self.response(multiline=False)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError(f"{self.name}: connection closed by the server")
        self.buf += chunk

    def send(self, lines: Sequence[str]) -> None:
        """Commands, CRLF added, in one write."""
        self.sock.sendall("".join(f"{line}\r\n" for line in lines).encode())

    def response(self, *, multiline: bool) -> bytes:
        """The next response, status line included; ``-ERR`` raises :class:`POP3Error`."""
        if self.pos >= _COMPACT_AT:
            del self.buf[: self.pos]
            self.pos = 0
        start = self.pos
        while (eol := self.buf.find(b"\r\n", start)) < 0:
            self._recv()
        if not self.buf.startswith(b"+OK", start):
            self.pos = eol + 2
            line = bytes(self.buf[start:eol]).decode(errors="replace")
            raise POP3Error(f"{self.name}: {line}")
        if multiline:
            scan = eol
            while (end := self.buf.find(b"\r\n.\r\n", scan)) < 0:
                scan = max(scan, len(self.buf) - 4)
                self._recv()
            end += 5
        else:
            end = eol + 2
        self.pos = end
        return bytes(self.buf[start:end])

    def command(self, line: str, *, multiline: bool = False) -> bytes:
        self.send([line])
        return self.response(multiline=multiline)

    def quit(self) -> None:
        """QUIT, then wait for the server to hang up (courrier frees the maildrop lock then)."""
        self.command("QUIT")
        with contextlib.suppress(OSError):
            while self.sock.recv(65536):
                pass
        self.close()


def content(response: bytes) -> bytes:
    """A multi-line response's content: status line and terminator off, dot-stuffing undone."""
    body = response[response.index(b"\r\n") + 2 : -3]
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")


# -- the session ------------------------------------------------------------------------------

LOGIN = "USER + PASS"
STAT = "STAT"
LIST = "LIST"
UIDL = "UIDL"
RETR = "RETR 1 … RETR {n}, one at a time"
RETR_PIPELINED = "RETR 1 … RETR {n}, pipelined"
TOP = "TOP 1 0 … TOP {n} 0, one at a time"
#: The table's rows ({n}: the number of messages), in order; RETR_PIPELINED only if both
#: servers advertise PIPELINING.
ROWS = (LOGIN, STAT, LIST, UIDL, RETR, RETR_PIPELINED, TOP)
GOAL = 1.0  # courrier ÷ Dovecot, every row


@dataclass(frozen=True, slots=True)
class Timed:
    seconds: float
    responses: list[bytes]  # as received, status lines and terminators included

    @property
    def octets(self) -> int:
        return sum(len(r) for r in self.responses)


def _timed(fn: Callable[[], list[bytes]]) -> Timed:
    started = time.perf_counter()
    responses = fn()
    return Timed(time.perf_counter() - started, responses)


def pipelining(server: Server) -> bool:
    """Whether the server advertises PIPELINING (RFC 2449 §6.6) before login."""
    client = POP3Client(server.pop3_port, server.name)
    try:
        caps = client.command("CAPA", multiline=True).split(b"\r\n")[1:-2]
        client.quit()
    finally:
        client.close()
    return any(cap.upper() == b"PIPELINING" for cap in caps)


def one_round(server: Server, count: int, pipelined: bool) -> dict[str, Timed]:
    """One session: each command of :data:`ROWS` timed; QUIT without DELE."""
    out: dict[str, Timed] = {}
    client = POP3Client(server.pop3_port, server.name)
    numbers = range(1, count + 1)

    def login() -> list[bytes]:
        return [client.command(f"USER {server.user}"), client.command(f"PASS {PASSWORD}")]

    def one_at_a_time(verb: str) -> Callable[[], list[bytes]]:
        return lambda: [client.command(verb % n, multiline=True) for n in numbers]

    def pipeline() -> list[bytes]:
        client.send([f"RETR {n}" for n in numbers])
        return [client.response(multiline=True) for _ in numbers]

    try:
        out[LOGIN] = _timed(login)
        out[STAT] = _timed(lambda: [client.command("STAT")])
        found = int(out[STAT].responses[0].split()[1])
        if found != count:
            raise POP3Error(f"{server.name}: STAT says {found} messages, {count} were stored")
        out[LIST] = _timed(lambda: [client.command("LIST", multiline=True)])
        out[UIDL] = _timed(lambda: [client.command("UIDL", multiline=True)])
        out[RETR] = _timed(one_at_a_time("RETR %d"))
        if pipelined:
            out[RETR_PIPELINED] = _timed(pipeline)
        out[TOP] = _timed(one_at_a_time("TOP %d 0"))
        client.quit()
    finally:
        client.close()
    return out


def check(name: str, run: dict[str, Timed], messages: Sequence[Message]) -> list[str]:
    """What in one round's responses differs from the stored messages (nothing, normally)."""
    problems: list[str] = []

    def compare(label: str, got: Sequence[bytes], wanted: Sequence[bytes]) -> None:
        wrong = [n for n, (g, w) in enumerate(zip(got, wanted, strict=True), 1) if g != w]
        if wrong:
            problems.append(
                f"{name}: {label.format(n=len(wanted))}: {len(wrong)} of {len(wanted)} differ "
                f"from the stored messages (first: message {wrong[0]})"
            )

    sizes = [line.split()[1] for line in content(run[LIST].responses[0]).splitlines()]
    compare(LIST, sizes, [str(len(m.data)).encode() for m in messages])
    ids = [line.split()[1] for line in content(run[UIDL].responses[0]).splitlines()]
    if len(ids) != len(messages) or len(set(ids)) != len(ids):
        problems.append(f"{name}: UIDL: {len(set(ids))} distinct ids for {len(messages)}")
    for label in (RETR, RETR_PIPELINED):
        if label in run:
            compare(label, [content(r) for r in run[label].responses], [m.data for m in messages])
    headers = [m.data[: m.data.index(b"\r\n\r\n") + 4] for m in messages]
    compare(TOP, [content(r) for r in run[TOP].responses], headers)
    return problems


# -- the mailbox ------------------------------------------------------------------------------


def with_dot_lines(messages: Sequence[Message], seed: int = 2) -> list[Message]:
    """The messages, one in 20 with lines that start with "." inserted into its body."""
    rng = random.Random(seed)
    lines = (b"...", b".", b". Indented with a dot.", b"..hidden", b".signature follows")
    out = []
    for n, m in enumerate(messages):
        if n % 20 == 7:
            head, body = m.data.split(b"\r\n\r\n", 1)
            rows = body.split(b"\r\n")
            for line in rng.sample(lines, 2):
                rows.insert(rng.randrange(len(rows)), line)
            m = dataclasses.replace(m, data=head + b"\r\n\r\n" + b"\r\n".join(rows))
        out.append(m)
    return out


# -- the report -------------------------------------------------------------------------------


def report(
    names: tuple[str, str],
    runs: dict[str, list[dict[str, Timed]]],
    args: argparse.Namespace,
    contents: str,
    notes: list[str],
) -> str:
    peer, ours = names
    n = f"{args.messages:,}"
    lines = [
        f"{n} messages in INBOX ({contents}), one user, no TLS, one POP3 session per server and "
        f"round; ms from a command's first byte sent to the last byte of its (last) response; "
        f"warm medians of {args.rounds} rounds (each round in brackets), servers alternating",
        "",
        *table_head(peer),
    ]
    for row in ROWS:
        if row not in runs[peer][-1] or row not in runs[ours][-1]:
            continue
        times = {s: [r[row].seconds for r in runs[s]] for s in names}
        octets = [runs[s][-1][row].octets for s in names]
        size = " / ".join(dict.fromkeys(f"{o / 1024:,.0f} KiB" for o in octets))
        response = size if max(octets) >= 10240 else ""
        lines.append(table_row(row.format(n=args.messages), names, times, GOAL, response))
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def _log(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (medians shown)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.messages < 1:
        parser.error("--messages: at least 1")
    if os.geteuid() != 0 or shutil.which("dovecot") is None:
        print("needs root and Dovecot: apt-get install dovecot-pop3d", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="courrier-bench-pop3-"))
    root.chmod(0o755)  # Dovecot's processes run as its users
    notes: list[str] = []
    problems: list[str] = []
    runs: dict[str, list[dict[str, Timed]]] = {}
    try:
        messages = with_dot_lines(mailbox(args.messages))
        lengths = [len(m.data) for m in messages]
        contents = (
            f"{sum(lengths) / 2**20:.1f} MiB, {min(lengths) / 1024:.1f}–"
            f"{max(lengths) / 1024:.1f} KiB each"
        )
        dovecot = Dovecot(root / "dovecot", 0, pop3=True)
        courrier = Courrier(root / "courrier", 0)
        servers: tuple[Server, Server] = (dovecot, courrier)
        names = (dovecot.name, courrier.name)
        with contextlib.ExitStack() as stack:
            for server in servers:
                stack.callback(server.stop)
            dovecot.fill(messages)
            for server in servers:
                server.start()
                assert server.proc is not None
                wait_port(server.pop3_port, server.proc)
            started = time.perf_counter()
            courrier.fill(messages)
            _log(f"courrier filled by MULTIAPPEND in {time.perf_counter() - started:.1f} s")
            os.sync()
            assert courrier.proc is not None
            wait_quiet(process_tree(courrier.proc.pid))  # its full-text indexer catches up
            both = all(pipelining(server) for server in servers)
            if not both:
                notes.append("PIPELINING not advertised by both servers: RETR timed one at a time")
            for server in servers:
                problems += check(server.name, one_round(server, args.messages, both), messages)
                _log(f"{server.name}: warm-up round done")
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for server in order:
                    run = one_round(server, args.messages, both)
                    problems += check(server.name, run, messages)
                    runs.setdefault(server.name, []).append(run)
                    time.sleep(0.5)
                _log(f"round {r + 1}/{args.rounds} done")
        warnings = dovecot.complaints()
        if warnings:
            notes.append(f"Dovecot logged {len(warnings)} warnings/errors, first: {warnings[0]}")
    finally:
        if args.keep:
            _log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    problems = list(dict.fromkeys(problems))
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    notes = [f"**MISMATCH: {p}**" for p in problems] + notes
    text = report(names, runs, args, contents, notes)
    print(text)
    if args.record:
        record(
            "POP3 RETR of 1,000 messages in one session",
            "bench.pop3_bench",
            f"same run, {names[0]} (Maildir, POP3 beside IMAP) beside courrier.",
            text,
        )
    return 2 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
