"""A SCRAM-SHA-256 client (RFC 5802, RFC 7677) for the protocol tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class ScramClient:
    """``step(challenge) -> response`` for each server challenge, in order."""

    def __init__(self, username: str, password: str) -> None:
        self.password = password
        self.first_bare = f"n={username},r={secrets.token_urlsafe(12)}"
        self.stage = 0
        self.server_signature = b""

    def step(self, challenge: bytes) -> bytes:
        self.stage += 1
        if self.stage == 1:
            return ("n,," + self.first_bare).encode()
        if self.stage == 2:
            server_first = challenge.decode()
            fields = dict(x.split("=", 1) for x in server_first.split(","))
            salt = base64.b64decode(fields["s"])
            salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, int(fields["i"]))
            client_key = hmac.digest(salted, b"Client Key", "sha256")
            stored = hashlib.sha256(client_key).digest()
            without_proof = f"c=biws,r={fields['r']}"
            auth = f"{self.first_bare},{server_first},{without_proof}".encode()
            signature = hmac.digest(stored, auth, "sha256")
            proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
            server_key = hmac.digest(salted, b"Server Key", "sha256")
            self.server_signature = hmac.digest(server_key, auth, "sha256")
            return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
        # server-final: v=<signature>; the client checks the server knew the password.
        assert challenge == b"v=" + base64.b64encode(self.server_signature)
        return b""
