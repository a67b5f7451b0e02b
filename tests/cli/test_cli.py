"""The `courrier` command as a user runs it: real processes, exit codes, one-sentence errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.pgcluster import PostgresCluster

ROOT = Path(__file__).resolve().parents[2]


def courrier(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "courrier", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.fixture
def data(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def test_domain_user_alias_round_trip(data: str) -> None:
    assert courrier("domain", "add", "Example.ORG", "--data", data).returncode == 0
    listed = courrier("domain", "list", "--json", "--data", data)
    assert json.loads(listed.stdout) == [
        {
            "name": "example.org",
            "accounts": 0,
            "created_at": json.loads(listed.stdout)[0]["created_at"],
        }
    ]
    added = courrier(
        "user",
        "add",
        "Alice@example.org",
        "--password-stdin",
        "--quota",
        "1G",
        "--data",
        data,
        stdin="correct horse battery staple\n",
    )
    assert added.returncode == 0, added.stderr
    assert "alice@example.org" in added.stdout
    users = json.loads(courrier("user", "list", "--json", "--data", data).stdout)
    assert [(u["address"], u["quota_bytes"]) for u in users] == [("alice@example.org", 1 << 30)]
    alias = courrier(
        "alias", "add", "info@example.org", "alice@example.org", "x@other.net", "--data", data
    )
    assert alias.returncode == 0, alias.stderr
    aliases = json.loads(courrier("alias", "list", "--json", "--data", data).stdout)
    assert aliases == [
        {"address": "info@example.org", "targets": ["alice@example.org", "x@other.net"]}
    ]
    assert (
        courrier("alias", "remove", "info@example.org", "x@other.net", "--data", data).returncode
        == 0
    )
    assert (
        courrier(
            "user",
            "passwd",
            "alice@example.org",
            "--password-stdin",
            "--data",
            data,
            stdin="another long passphrase\n",
        ).returncode
        == 0
    )
    assert courrier("user", "remove", "alice@example.org", "--data", data).returncode == 0
    assert json.loads(courrier("user", "list", "--json", "--data", data).stdout) == []
    assert json.loads(courrier("alias", "list", "--json", "--data", data).stdout) == []


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (
            ["user", "add", "not-an-address", "--password-stdin"],
            "long enough pw 1\n",
            2,
            "not an email address",
        ),
        (
            ["user", "add", "bob@unknown.test", "--password-stdin"],
            "long enough pw 1\n",
            2,
            "not hosted here",
        ),
        (["user", "add", "bob@example.org", "--password-stdin"], "\n", 2, "password is empty"),
        (["user", "add", "bob@example.org", "--password-stdin"], "short\n", 2, "too short"),
        (["user", "add", "bob@example.org", "--password-stdin"], "password123\n", 2, "most common"),
        (
            ["user", "add", "b+x@example.org", "--password-stdin"],
            "long enough pw 1\n",
            2,
            "plus-addressing",
        ),
        (
            ["user", "add", "taken@example.org", "--password-stdin"],
            "long enough pw 1\n",
            1,
            "already exists",
        ),
        (["domain", "add", "not a domain"], "", 2, "not a valid domain"),
        (["domain", "add", "example.org"], "", 1, "already exists"),
        (["domain", "remove", "example.org"], "", 1, "still has 1 account"),
        (["alias", "remove", "nobody@example.org"], "", 1, "does not exist"),
        (["user", "frobnicate"], "", 2, "invalid choice"),
    ],
)
def test_bad_input_is_one_clear_sentence(
    data: str, args: list[str], stdin: str, code: int, message: str
) -> None:
    courrier("domain", "add", "example.org", "--data", data)
    courrier(
        "user",
        "add",
        "taken@example.org",
        "--password-stdin",
        "--data",
        data,
        stdin="long enough pw 1\n",
    )
    before = courrier("user", "list", "--json", "--data", data).stdout
    result = courrier(*args, "--data", data, stdin=stdin)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # argparse adds a usage line
    assert courrier("user", "list", "--json", "--data", data).stdout == before  # nothing written


def test_generated_password_is_shown_once(data: str) -> None:
    courrier("domain", "add", "example.org", "--data", data)
    result = courrier("user", "add", "carol@example.org", "--data", data)
    assert result.returncode == 0, result.stderr
    password = result.stdout.split("Password (shown once): ")[1].strip()
    assert len(password) == 20


def test_config_check_names_the_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "courrier.toml"
    config.write_text('[store]\nbackend = "mysql"\n')
    result = courrier("config", "check", "--config", str(config))
    assert result.returncode == 2
    assert "store.backend: must be one of 'sqlite', 'postgresql', not 'mysql'" in result.stderr
    config.write_text('[server]\nhostnme = "x"\n')
    result = courrier("config", "check", "--config", str(config))
    assert result.returncode == 2 and "did you mean 'server.hostname'" in result.stderr
    config.write_text("[server]\nport_offset = 10000\n")
    assert courrier("config", "check", "--config", str(config)).returncode == 0
    bad_env = courrier(
        "config", "check", "--config", str(config), env={"COURRIER_SERVER_PORT_OFFSET": "x"}
    )
    assert bad_env.returncode == 2 and "server.port_offset: must be an integer" in bad_env.stderr


def _free_port_base() -> int:
    """An offset whose 25/53/… ports are free on 127.0.0.1 (rarely matters: nothing binds yet)."""
    for offset in range(20000, 40000, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 25 + offset))
            except OSError:
                continue
            return offset
    raise RuntimeError("no free port range")


def test_quickstart_then_serve_then_provision_while_running(data: str) -> None:
    result = courrier(
        "quickstart",
        "--data",
        data,
        "--domain",
        "lab.example.org",
        "--hostname",
        "mail.lab.example.org",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "postmaster@lab.example.org" in out
    assert "mail.lab.example.org" in out
    assert "lab.example.org.\t3600\tIN\tMX\t10 mail.lab.example.org." in out
    assert "_dmarc.lab.example.org." in out
    assert "IMAP  mail.lab.example.org port 993" in out
    assert (Path(data) / "tls" / "cert.pem").exists()
    again = courrier("quickstart", "--data", data)
    assert again.returncode == 1 and "already set up" in again.stdout

    offset = _free_port_base()
    server = subprocess.Popen(
        [sys.executable, "-m", "courrier", "serve", "--data", data, "--port-offset", str(offset)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if "courrier is running" in line:
                break
        else:
            pytest.fail("server did not start: " + "".join(lines))
        assert courrier("domain", "add", "second.example.org", "--data", data).returncode == 0
        assert (
            courrier(
                "user",
                "add",
                "dan@second.example.org",
                "--password-stdin",
                "--data",
                data,
                stdin="a very good password\n",
            ).returncode
            == 0
        )
        assert (
            courrier(
                "alias", "add", "@second.example.org", "dan@second.example.org", "--data", data
            ).returncode
            == 0
        )
        assert server.poll() is None
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert "stopped" in server.stdout.read()
    finally:
        if server.poll() is None:
            server.kill()
    users = json.loads(courrier("user", "list", "--json", "--data", data).stdout)
    assert {u["address"] for u in users} == {"postmaster@lab.example.org", "dan@second.example.org"}


def test_provisioning_on_postgresql(pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    """Two "nodes" (two CLI runs with their own data dirs) share one PostgreSQL store."""
    env = {
        "COURRIER_STORE_BACKEND": "postgresql",
        "COURRIER_STORE_URL": pg_cluster.create_database(),
    }
    first, second = str(tmp_path / "node1"), str(tmp_path / "node2")
    assert courrier("domain", "add", "example.org", "--data", first, env=env).returncode == 0
    added = courrier(
        "user",
        "add",
        "erin@example.org",
        "--password-stdin",
        "--data",
        second,
        env=env,
        stdin="a long passphrase\n",
    )
    assert added.returncode == 0, added.stderr
    users = json.loads(courrier("user", "list", "--json", "--data", first, env=env).stdout)
    assert [u["address"] for u in users] == ["erin@example.org"]
    bad = courrier(
        "user",
        "list",
        "--data",
        first,
        env={**env, "COURRIER_STORE_URL": "postgresql://nobody@127.0.0.1:1/x"},
    )
    assert bad.returncode == 1 and "Cannot use the PostgreSQL database" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_queue_verbs(data: str) -> None:
    async def enqueue() -> None:
        from courrier.store import Store
        from courrier.store.queue import Outbound, OutboundRecipient

        store = await Store.open_sqlite(Path(data))
        async with store:
            outbound = Outbound("Q1", "a@example.org", (OutboundRecipient("x@elsewhere.net"),), b"")
            await store.deliver(b"Subject: q\r\n\r\nbody\r\n", [], outbound=outbound)

    assert "Mail queue is empty" in courrier("queue", "list", "--data", data).stdout
    asyncio.run(enqueue())
    listed = json.loads(courrier("queue", "list", "--json", "--data", data).stdout)
    assert [
        (q["queue_id"], q["sender"], [r["address"] for r in q["recipients"]]) for q in listed
    ] == [("Q1", "a@example.org", ["x@elsewhere.net"])]
    text = courrier("queue", "list", "--data", data).stdout
    assert "Q1" in text and "x@elsewhere.net" in text and "queued" in text
    shown = courrier("queue", "show", "Q1", "--data", data).stdout
    assert shown.splitlines() == ["Subject: q", "", "body"]
    assert courrier("queue", "show", "Q9", "--data", data).returncode == 1
    as_json = json.loads(courrier("queue", "show", "Q1", "--json", "--data", data).stdout)
    assert as_json["message"] == "Subject: q\r\n\r\nbody\r\n"
    assert [r["state"] for r in as_json["recipients"]] == ["queued"]

    def states() -> list[str]:
        listed = json.loads(courrier("queue", "list", "--json", "--data", data).stdout)
        return [r["state"] for q in listed for r in q["recipients"]]

    held = courrier("queue", "hold", "Q1", "--data", data)
    assert held.returncode == 0 and "1 recipient(s) of Q1 held" in held.stdout
    assert states() == ["hold"]
    assert courrier("queue", "hold", "Q1", "--data", data).returncode == 1  # nothing left to hold
    assert "0 recipient(s)" in courrier("queue", "flush", "--data", data).stdout  # held: skipped
    released = courrier("queue", "release", "Q1", "--json", "--data", data)
    assert json.loads(released.stdout) == {"queue_id": "Q1", "changed": 1}
    assert states() == ["queued"]
    assert (
        "1 recipient(s) of the queue due now" in courrier("queue", "flush", "--data", data).stdout
    )
    deleted = courrier("queue", "delete", "Q1", "--json", "--data", data)
    assert json.loads(deleted.stdout) == {"queue_id": "Q1", "deleted": True}
    gone = courrier("queue", "delete", "Q1", "--data", data)
    assert gone.returncode == 1 and "No queued message Q1" in gone.stdout
