"""Self-signed certificate on first start, reused afterwards; the operator's files when given."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from courrier import config
from courrier.security.certificates import ensure_certificate, server_context


def test_self_signed_once_then_reused(tmp_path: Path) -> None:
    settings = config.load(
        env={}, overrides={"server.data_dir": str(tmp_path), "server.hostname": "mail.example.test"}
    )
    cert, key, generated = ensure_certificate(settings)
    assert generated and cert == tmp_path / "tls" / "cert.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mail.example.test" in names.get_values_for_type(x509.DNSName)
    assert parsed.public_key().key_size == 2048  # type: ignore[union-attr]
    before = cert.read_bytes()
    assert ensure_certificate(settings)[2] is False
    assert cert.read_bytes() == before


def test_tls_handshake_with_the_generated_certificate(tmp_path: Path) -> None:
    settings = config.load(
        env={}, overrides={"server.data_dir": str(tmp_path), "server.hostname": "localhost"}
    )
    cert, key, _ = ensure_certificate(settings)
    server_ctx = server_context(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"hello")

    thread = threading.Thread(target=serve_one)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(cert))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(5) == b"hello"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    thread.join()
    listener.close()


def test_missing_operator_files_are_reported(tmp_path: Path) -> None:
    settings = config.load(
        env={},
        overrides={
            "tls.cert_file": str(tmp_path / "c.pem"),
            "tls.key_file": str(tmp_path / "k.pem"),
        },
    )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ensure_certificate(settings)
