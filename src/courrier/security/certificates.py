"""TLS certificates and server contexts: the operator's PEM files, or a self-signed pair.

On first start without ``tls.cert_file``, a self-signed RSA-2048 certificate for the server's
host name is generated into ``<data>/tls/`` (key readable by its owner only). Clients will ask the
user to accept it; an ACME certificate replaces it later.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from courrier.config import Settings

SELF_SIGNED_DAYS = 3650


def certificate_paths(settings: Settings) -> tuple[Path, Path]:
    if settings.tls.cert_file:
        return Path(settings.tls.cert_file), Path(settings.tls.key_file)
    tls_dir = settings.data_path / "tls"
    return tls_dir / "cert.pem", tls_dir / "key.pem"


def generate_self_signed(hostname: str, cert_path: Path, key_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        alt_names.append(x509.DNSName("localhost"))
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_certificate(settings: Settings) -> tuple[Path, Path, bool]:
    """The certificate and key to use; generates a self-signed pair when none exists.

    Returns (certificate path, key path, whether it was just generated).
    """
    cert_path, key_path = certificate_paths(settings)
    if settings.tls.cert_file:
        for path in (cert_path, key_path):
            if not path.is_file():
                raise FileNotFoundError(f"The TLS file {path} does not exist.")
        return cert_path, key_path, False
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path, False
    generate_self_signed(settings.server.hostname, cert_path, key_path)
    return cert_path, key_path, True


def tlsa_value(cert_path: Path) -> str:
    """The DANE-EE TLSA record of the certificate's key (RFC 7672 §3.1.1: usage 3, selector
    1 SPKI, matching 1 SHA-256): it stays true across renewals that keep the key."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return f"3 1 1 {digest.finalize().hex()}"


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server context with TLS 1.2+ (RFC 8996, RFC 8314 §4.1)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def describe(cert_path: Path) -> str:
    """Subject, expiry and SHA-256 fingerprint, for logs and the quickstart summary."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    return (
        f"{cert.subject.rfc4514_string()}, valid until "
        f"{cert.not_valid_after_utc:%Y-%m-%d}, SHA-256 {fingerprint}"
    )
