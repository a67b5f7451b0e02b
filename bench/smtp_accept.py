"""SMTP accept rate: courrier against stock Postfix, same machine, same run, same client.

    python -m bench.smtp_accept [--messages 10000] [--clients 1,10,50] [--repeat 3] [--record]

The client is Postfix's ``smtp-source`` (Debian's ``postfix`` package): one connection per
4 KiB message, N connections at a time, to one local recipient. Postfix runs as a private
instance from a temporary directory (its default queue, which fsyncs each message, and virtual
delivery into a Maildir); its 250 means "queued". courrier's 250 means "in the mailbox", fsync'd.
Server CPU is the machine's busy CPU time during the run minus the client's own (the machine
is shared: compare the two servers within one run). Both servers run side by side and each
round times Postfix then courrier at every client count; the table gives medians of the rounds.
Both log every message (courrier at its default level, into a file). Needs root (Postfix drops
to its user).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.results import record

ROOT = Path(__file__).resolve().parents[1]
POSTFIX_PORT = 2525
COURRIER_OFFSET = 30000
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
myhostname = bench.example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = example.org
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:bob/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
"""


def busy_cpu_seconds() -> float:
    """User + system + irq time of the whole machine so far (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def run_client(port: int, messages: int, clients: int) -> tuple[float, float]:
    """(seconds, server CPU seconds) for one smtp-source run."""
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, start = busy_cpu_seconds(), time.perf_counter()
    subprocess.run(
        [
            "smtp-source",
            "-l",
            "4096",
            "-m",
            str(messages),
            "-s",
            str(clients),
            "-f",
            "alice@example.net",
            "-t",
            "bob@example.org",
            f"127.0.0.1:{port}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    cpu = busy_cpu_seconds() - cpu0
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after_children.ru_utime - before_children.ru_utime) + (
        after_children.ru_stime - before_children.ru_stime
    )
    return elapsed, max(cpu - client, 0.0)


@contextlib.contextmanager
def postfix_instance(root: Path) -> Iterator[int]:
    import pwd

    entry = pwd.getpwnam("postfix")
    etc = root / "etc"
    etc.mkdir()
    for sub in ("queue", "data", "mail"):
        (root / sub).mkdir()
    os.chown(root / "data", entry.pw_uid, entry.pw_gid)
    os.chown(root / "mail", entry.pw_uid, entry.pw_gid)
    master = Path("/etc/postfix/master.cf").read_text().splitlines()
    lines = []
    for line in master:
        fields = line.split()
        if fields[:2] == ["smtp", "inet"]:
            line = f"127.0.0.1:{POSTFIX_PORT} inet n - n - - smtpd"
        elif len(fields) >= 8 and not line.startswith("#") and fields[4] == "y":
            fields[4] = "n"  # no chroot: the instance lives in a temp dir
            line = " ".join(fields)
        lines.append(line)
    (etc / "master.cf").write_text("\n".join(lines) + "\n")
    (etc / "main.cf").write_text(_MAIN_CF.format(root=root, uid=entry.pw_uid, gid=entry.pw_gid))
    default = Path("/etc/postfix/main.cf")
    # postfix -c needs the default instance to list our directory.
    text = default.read_text() if default.exists() else "compatibility_level = 3.6\n"
    if str(etc) not in text:
        default.write_text(text.rstrip("\n") + f"\nalternate_config_directories = {etc}\n")
    subprocess.run(["postfix", "-c", str(etc), "start"], check=True)
    try:
        _wait_port(POSTFIX_PORT)
        yield POSTFIX_PORT
    finally:
        subprocess.run(["postfix", "-c", str(etc), "stop"], check=False)


@contextlib.contextmanager
def courrier_instance(root: Path, *, checks: bool = True) -> Iterator[int]:
    data = root / "data"
    courrier = [sys.executable, "-m", "courrier"]
    subprocess.run(
        [*courrier, "domain", "add", "example.org", "--data", str(data)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [*courrier, "user", "add", "bob@example.org", "--password-stdin", "--data", str(data)],
        input=b"a long passphrase here\n",
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [*courrier, "serve", "--data", str(data), "--port-offset", str(COURRIER_OFFSET)],
        env={
            **os.environ,
            "COURRIER_SERVER_LISTEN": "127.0.0.1",
            # smtp-source's 50 clients all come from 127.0.0.1 (Postfix's anvil has no limit
            # for mynetworks either).
            "COURRIER_SMTP_MAX_CONNECTIONS_PER_IP": "500",
            # SPF, DKIM, DMARC and ARC of each message (the system's resolver answers), which
            # the stock Postfix does not do: --no-checks compares the bare MTAs.
            "COURRIER_MAILAUTH_ENABLED": "true" if checks else "false",
        },
        stdout=subprocess.DEVNULL,
        stderr=(root / "courrier.log").open("wb"),
    )
    try:
        _wait_port(25 + COURRIER_OFFSET)
        yield 25 + COURRIER_OFFSET
    finally:
        server.terminate()
        server.wait(timeout=60)


def _wait_port(port: int) -> None:
    for _ in range(200):
        try:
            asyncio.run(_probe(port))
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


async def _probe(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians are shown)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--no-checks", action="store_true", help="courrier without its inbound SPF/DKIM/DMARC"
    )
    args = parser.parse_args()
    if shutil.which("smtp-source") is None:
        print("smtp-source not found: apt-get install postfix", file=sys.stderr)
        return 1
    clients = [int(c) for c in args.clients.split(",")]
    root = Path(tempfile.mkdtemp(prefix="bench-smtp-", dir=ROOT))
    root.chmod(0o755)  # Postfix's daemons run as its own user
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    names = ("Postfix 3.7", "courrier")
    try:
        postfix_root = Path(tempfile.gettempdir()) / "courrier-bench-postfix"
        shutil.rmtree(postfix_root, ignore_errors=True)
        postfix_root.mkdir(mode=0o755)
        with (
            postfix_instance(postfix_root) as postfix,
            courrier_instance(root / "c", checks=not args.no_checks) as courrier,
        ):
            for _ in range(args.repeat):
                for c in clients:
                    for name, port in zip(names, (postfix, courrier), strict=True):
                        runs.setdefault((name, c), []).append(run_client(port, args.messages, c))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        f"{args.messages:,} messages of 4 KiB, one connection each, smtp-source; "
        f"medians of {args.repeat} rounds; courrier "
        + ("without inbound checks" if args.no_checks else "checking SPF, DKIM, DMARC, ARC"),
        "",
        "| server | clients | msg/s (each round) | server CPU ms/msg | courrier ÷ Postfix |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        for c in clients:
            rates = [args.messages / seconds for seconds, _ in runs[name, c]]
            rate = statistics.median(rates)
            cpu = statistics.median(cpu for _, cpu in runs[name, c])
            postfix_rate = statistics.median(
                args.messages / seconds for seconds, _ in runs[names[0], c]
            )
            ratio = f"{rate / postfix_rate:.2f}" if name == "courrier" else ""
            each = ", ".join(f"{r:,.0f}" for r in rates)
            lines.append(
                f"| {name} | {c} | {rate:,.0f} ({each}) | {cpu / args.messages * 1000:.2f} "
                f"| {ratio} |"
            )
    report = "\n".join(lines)
    print(report)
    if args.record:
        record("SMTP accept", "bench.smtp_accept", "same run.", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
