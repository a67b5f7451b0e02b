"""DKIM signatures per second: courrier's signer against dkimpy and OpenSSL's raw speed.

    python -m bench.dkim_bench [--seconds 3] [--size 4096] [--record]

Signs one 4 KiB message (the body hash included: a signature is the whole job done at
submission) over and over for ``--seconds`` with RSA-2048 and with Ed25519 (RFC 8463), one
core. The references, measured in the same run: dkimpy 1.1.8's ``dkim.sign`` with the same key
(what a Python mail server would use; its RSA is pure Python), and ``openssl speed`` for the
bare private-key operation, the ceiling for any signer on this machine.
"""

from __future__ import annotations

import argparse
import base64
import re
import subprocess
import time
from collections.abc import Callable

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from tests.store.helpers import make_message

from bench.results import record
from courrier.mailauth import dkim as ours


def rate(job: Callable[[], object], seconds: float) -> float:
    job()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(10):
            job()
        count += 10
    return count / elapsed


def openssl_speed(seconds: int) -> dict[str, float]:
    """Signatures/s of ``openssl speed`` for rsa2048 and ed25519."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(seconds), "rsa2048", "ed25519"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    speeds: dict[str, float] = {}
    rsa_line = re.search(r"^rsa\s+2048 bits\s+\S+s\s+\S+s\s+([\d.]+)", out, re.M)
    ed_line = re.search(r"^\s*253 bits EdDSA \(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)", out, re.M)
    if rsa_line:
        speeds["rsa"] = float(rsa_line.group(1))
    if ed_line:
        speeds["ed25519"] = float(ed_line.group(1))
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    message = make_message(1, size=args.size)
    rsa_key = rsa.generate_private_key(65537, 2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    keys = {
        "rsa": ours.SigningKey("example.org", "r", ours.RSA, rsa_key),
        "ed25519": ours.SigningKey("example.org", "e", ours.ED25519, ed_key),
    }
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    ed_seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )

    dkimpy_keys = {
        "rsa": (rsa_pem, b"rsa-sha256"),
        "ed25519": (base64.b64encode(ed_seed), b"ed25519-sha256"),
    }
    raw = openssl_speed(max(1, int(args.seconds)))
    rows = []
    for name, key in keys.items():
        mine = rate(lambda key=key: ours.sign(message, [key], 1_790_000_000), args.seconds)
        pem, algorithm = dkimpy_keys[name]
        theirs = rate(
            lambda pem=pem, algorithm=algorithm: dkim.sign(
                message,
                b"s",
                b"example.org",
                pem,
                signature_algorithm=algorithm,
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
            ),
            args.seconds,
        )
        rows.append((name, mine, theirs, raw.get(name, float("nan"))))
    both = rate(lambda: ours.sign(message, list(keys.values()), 1_790_000_000), args.seconds)

    lines = [
        "| algorithm | courrier sig/s | dkimpy sig/s | courrier ÷ dkimpy | openssl speed sig/s | "
        "courrier ÷ openssl |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, mine, theirs, ceiling in rows:
        label = "RSA-2048" if name == "rsa" else "Ed25519"
        lines.append(
            f"| {label} | {mine:,.0f} | {theirs:,.0f} | {mine / theirs:.1f}× | {ceiling:,.0f} | "
            f"{mine / ceiling:.2f} |"
        )
    lines.append(f"| both (what submission does) | {both:,.0f} messages/s | | | | |")
    report = "\n".join(lines)
    print(report)
    if args.record:
        record(
            "DKIM signatures per second",
            "bench.dkim_bench",
            f"one core, a {args.size}-octet message signed whole (body hash included), "
            "relaxed/relaxed",
            report,
        )


if __name__ == "__main__":
    main()
