"""`courrier domain relay`: a smarthost for one domain's mail, set, shown and cleared."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import courrier


def test_domain_relay_set_show_clear(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert courrier("domain", "add", "example.org", "--data", data).returncode == 0
    shown = courrier("domain", "relay", "example.org", "--data", data)
    assert shown.stdout.strip() == "Mail from example.org goes straight to each recipient's MX."

    set_ = courrier(
        "domain",
        "relay",
        "example.org",
        "--host",
        "SMTP.SendGrid.net",
        "--username",
        "apikey",
        "--password-stdin",
        "--data",
        data,
        stdin="SG.secret\n",
    )
    assert set_.returncode == 0, set_.stderr
    assert "smtp.sendgrid.net:587 (starttls, AUTH as apikey)" in set_.stdout
    listed = json.loads(courrier("domain", "relay", "example.org", "--json", "--data", data).stdout)
    # The password is kept for AUTH but never shown.
    assert listed == {
        "host": "smtp.sendgrid.net",
        "port": 587,
        "security": "starttls",
        "verify": True,
        "username": "apikey",
    }

    bad = courrier("domain", "relay", "example.org", "--host", "mx:http", "--data", data)
    assert (bad.returncode, bad.stderr.strip()) == (2, "courrier: 'mx:http' is not host[:port].")
    half = courrier(
        "domain", "relay", "example.org", "--host", "h", "--username", "u", "--data", data
    )
    assert half.returncode == 2 and "both a username and a password" in half.stderr
    other = courrier("domain", "relay", "nowhere.example", "--host", "h", "--data", data)
    assert other.returncode == 2 and "not hosted here" in other.stderr

    cleared = courrier("domain", "relay", "example.org", "--clear", "--data", data)
    assert "straight to each recipient's MX" in cleared.stdout
    assert (
        json.loads(courrier("domain", "relay", "example.org", "--json", "--data", data).stdout)
        is None
    )
