"""Settings: defaults, TOML, environment overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from courrier import config


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = config.load(env={}, overrides={"server.data_dir": str(tmp_path)})
    assert settings.store.backend == "sqlite"
    assert settings.port("imaps") == 993 and settings.port("smtp") == 25
    assert settings.addresses("smtp") == ["0.0.0.0"]
    assert settings.source == "defaults"


def test_port_offset_moves_every_standard_port() -> None:
    settings = config.load(env={"COURRIER_SERVER_PORT_OFFSET": "10000"})
    assert {name: settings.port(name) for name in config.STANDARD_PORTS} == {
        "smtp": 10025,
        "submission": 10587,
        "submissions": 10465,
        "imap": 10143,
        "imaps": 10993,
        "pop3": 10110,
        "pop3s": 10995,
        "dns": 10053,
        "http": 10080,
        "https": 10443,
    }


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[server]\nhostname = "mx.example.org"\nport_offset = 5\n'
        '[store]\ninline_blob_max = "64k"\n'
        '[accounts]\ndefault_quota = "2G"\n'
        '[listeners.imaps]\nport = 1993\naddress = ["127.0.0.2"]\n'
    )
    settings = config.load(
        path,
        env={
            "COURRIER_DNS_RESOLVERS": "127.0.0.2:5353, [::1]:53",
            "COURRIER_SERVER_PORT_OFFSET": "7",
        },
        overrides={"server.hostname": "mail.example.org"},
    )
    assert settings.server.hostname == "mail.example.org"
    assert settings.server.port_offset == 7
    assert settings.store.inline_blob_max == 64 * 1024
    assert settings.accounts.default_quota == 2 << 30
    assert settings.dns.resolvers == ["127.0.0.2:5353", "[::1]:53"]
    assert settings.port("imaps") == 1993 and settings.addresses("imaps") == ["127.0.0.2"]
    assert settings.port("imap") == 150
    assert settings.source == str(path)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            '[store]\nbackend = "mysql"',
            {},
            "store.backend: must be one of 'sqlite', 'postgresql', not 'mysql'",
        ),
        ('[server]\nport_offset = "ten"', {}, "server.port_offset: must be an integer"),
        (
            '[server]\nhostnme = "x"',
            {},
            "server.hostnme: unknown setting (did you mean 'server.hostname'?)",
        ),
        ("[nosuch]\nx = 1", {}, "nosuch: unknown setting"),
        (
            '[store]\nbackend = "postgresql"',
            {},
            "store.url: required when store.backend is 'postgresql'",
        ),
        ('[accounts]\ndefault_quota = "lots"', {}, "accounts.default_quota: must be a size"),
        ('[dns]\nresolvers = ["1.2.3.4:x"]', {}, "dns.resolvers: '1.2.3.4:x' has a bad port"),
        (
            "[listeners.smtp]\nport = 70000",
            {},
            "listeners.smtp.port: 70000 is not a valid TCP port",
        ),
        ('[tls]\ncert_file = "/x.pem"', {}, "tls.cert_file and tls.key_file: set both or neither"),
        ("[server\n", {}, "not valid TOML"),
        (
            '[queue]\nrelay_security = "ssl"',
            {},
            "queue.relay_security: must be 'starttls' or 'tls'",
        ),
        ('[queue]\nrelayhost = "smtp.example.net:x"', {}, "queue.relayhost: "),
        ("[queue]\nretry_min = 600\nretry_max = 60", {}, "queue.retry_max: must be at least"),
        ("", {"COURRIER_SERVER_NOPE": "1"}, "COURRIER_SERVER_NOPE: no setting"),
        (
            "",
            {"COURRIER_LISTENERS_SMTP_ENABLED": "maybe"},
            "listeners.smtp.enabled: must be true or false",
        ),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as info:
        config.load(path, env=env)
    assert message in str(info.value)


def test_dns_secondaries_and_tsig_keys() -> None:
    secret = "c2VjcmV0IGtleSBmb3IgdHJhbnNmZXJz"
    settings = config.load(
        env={
            "COURRIER_DNS_SECONDARIES": "192.0.2.53, [2001:db8::53]:5353",
            "COURRIER_DNS_TSIG_KEYS": f"xfr.example.org.:HMAC-SHA256:{secret}",
        }
    )
    secondaries = [config.parse_secondary(s) for s in settings.dns.secondaries]
    assert secondaries == [("192.0.2.53", 53), ("2001:db8::53", 5353)]
    (key,) = [config.parse_tsig_key(k) for k in settings.dns.tsig_keys]
    assert key == ("xfr.example.org.", "hmac-sha256", b"secret key for transfers")


@pytest.mark.parametrize(
    ("setting", "values", "message"),
    [
        ("secondaries", ["ns2.example.net"], "'ns2.example.net' is not an IP address[:port]"),
        ("secondaries", ["192.0.2.53:x"], "'192.0.2.53:x' has a bad port"),
        ("tsig_keys", ["xfr:hmac-sha256"], "'xfr'… is not name:algorithm:base64secret"),
        ("tsig_keys", ["xfr:hmac-md5:c2VjcmV0"], "xfr: the algorithm must be one of hmac-sha1"),
        ("tsig_keys", ["xfr:hmac-sha256:not base64!"], "xfr: the secret is not base64"),
        (
            "tsig_keys",
            ["a:hmac-sha256:c2VjcmV0", "A.:hmac-sha1:c2VjcmV0"],
            "two keys have the same name",
        ),
    ],
)
def test_dns_transfer_settings_errors(setting: str, values: list[str], message: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load(env={}, overrides={f"dns.{setting}": values})
    assert str(info.value).startswith(f"dns.{setting}: ") and message in str(info.value)
    assert "not base64!" not in str(info.value)  # a secret is never shown


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="no such configuration file"):
        config.load(tmp_path / "absent.toml", env={})


def test_data_dir_config_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "courrier.toml").write_text('[server]\nhostname = "found.example"\n')
    settings = config.load(env={}, overrides={"server.data_dir": str(tmp_path)})
    assert settings.server.hostname == "found.example"
