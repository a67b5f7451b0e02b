"""A test PKI made with ``cryptography``: a root CA, an intermediate, and server certificates
for any names, written as PEM files for servers (``tls.cert_file``) and clients
(``queue.tls_ca_file``). Also the TLSA record data (RFC 6698 §2.1) that matches a certificate."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    #: The chain the server sends after its own certificate (intermediates, then the CA).
    chain: tuple[x509.Certificate, ...] = ()

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """``stem.pem`` (the certificate then the chain) and ``stem.key``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *self.chain))
        cert_path.write_bytes(pem)
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    def tlsa(self, usage: int, selector: int, mtype: int, *, of: int = 0) -> str:
        """TLSA rdata in zone-file text for certificate ``of`` (0: this one, 1…: the chain)."""
        cert = (self.cert, *self.chain)[of]
        data = (
            cert.public_bytes(serialization.Encoding.DER)
            if selector == 0
            else cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        digest = {0: data, 1: hashlib.sha256(data).digest(), 2: hashlib.sha512(data).digest()}
        return f"{usage} {selector} {mtype} {digest[mtype].hex()}"


class Authority:
    """A root CA and an intermediate CA under it; server certificates come from the latter."""

    def __init__(self, name: str = "Courrier Test Root") -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca(name, self.root_key, self.root_key, None)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self._ca(
            name + " Intermediate", self.intermediate_key, self.root_key, self.root
        )

    def _ca(
        self,
        name: str,
        key: ec.EllipticCurvePrivateKey,
        issuer_key: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(days=1))
            .not_valid_after(_NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    def issue(self, *names: str, expired: bool = False) -> Issued:
        """A server certificate for ``names`` (``expired``: its validity ended yesterday)."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = _NOW - datetime.timedelta(days=10 if expired else 1)
        end = _NOW - datetime.timedelta(days=1) if expired else _NOW + datetime.timedelta(days=30)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate_key.public_key()
                ),
                False,
            )
            .sign(self.intermediate_key, hashes.SHA256())
        )
        return Issued(cert, key, (self.intermediate, self.root))

    def write_root(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return path
