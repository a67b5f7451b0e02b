"""`courrier domain dns` and `courrier dkim` as an operator runs them: the DKIM records to
publish, and a rotation that shows the new records before they sign."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.test_cli import courrier


def test_domain_dns_shows_dkim_records_and_rotation(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert courrier("domain", "add", "example.org", "--data", data).returncode == 0
    keys = json.loads(courrier("dkim", "list", "--json", "--data", data).stdout)
    assert sorted(k["algorithm"] for k in keys) == ["ed25519-sha256", "rsa-sha256"]
    assert {k["state"] for k in keys} == {"active"}

    records = json.loads(courrier("domain", "dns", "example.org", "--json", "--data", data).stdout)
    dkim = {r["name"]: r["value"] for r in records if "._domainkey." in r["name"]}
    assert dkim == {k["record_name"]: k["record"] for k in keys}
    assert all(v.startswith("v=DKIM1; k=") for v in dkim.values())

    # The zone-file form splits the RSA key into strings of at most 255 octets (RFC 1035).
    zone = courrier("domain", "dns", "example.org", "--data", data).stdout
    rsa_line = next(line for line in zone.splitlines() if "k=rsa" in line)
    strings = re.findall(r'"([^"]*)"', rsa_line)
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert "".join(strings) == next(v for v in dkim.values() if "k=rsa" in v)

    rotated = courrier("dkim", "rotate", "example.org", "--data", data)
    assert rotated.returncode == 0, rotated.stderr
    assert "Publish now" in rotated.stdout and "._domainkey.example.org." in rotated.stdout
    after = json.loads(courrier("dkim", "list", "example.org", "--json", "--data", data).stdout)
    states = sorted(k["state"] for k in after)
    assert states == ["active", "active", "pending", "pending"]  # old sign until the delay
    records = json.loads(courrier("domain", "dns", "example.org", "--json", "--data", data).stdout)
    assert sum("._domainkey." in r["name"] for r in records) == 4  # all four published

    now = courrier("dkim", "rotate", "example.org", "--delay", "0", "--json", "--data", data)
    newest = {k["selector"] for k in json.loads(now.stdout)}
    after = json.loads(courrier("dkim", "list", "--json", "--data", data).stdout)
    assert {k["selector"] for k in after if k["state"] == "active"} == newest
    # The pair of the first rotation never signed: replaced, not kept pending.
    assert sorted(k["state"] for k in after) == ["active", "active", "retiring", "retiring"]

    missing = courrier("dkim", "rotate", "nowhere.example", "--data", data)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "courrier: The domain nowhere.example is not hosted here."
