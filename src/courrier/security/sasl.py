"""Server side of the SASL mechanisms PLAIN, LOGIN and SCRAM-SHA-256, as sans-IO exchanges.

Shared by SMTP AUTH (RFC 4954), IMAP AUTHENTICATE (RFC 9051 §6.2.2) and POP3 AUTH (RFC 5034):
the protocol core carries the (base64-decoded) client messages here and sends back what an
exchange returns. Nothing here touches the store: when an exchange needs the account, it says
so (:class:`NeedPassword` for PLAIN/LOGIN, :class:`NeedVerifier` for SCRAM) and the caller
answers with :meth:`Exchange.password_checked` or :meth:`Exchange.verifier`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-256")


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send this to the client and wait for its answer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class NeedPassword:
    """Check ``password`` for ``username``; ``authzid`` is who to act as ("" = same)."""

    username: str
    password: str
    authzid: str


@dataclass(frozen=True, slots=True)
class NeedVerifier:
    """Look up the SCRAM-SHA-256 verifier of ``username`` (``""`` if there is none)."""

    username: str
    authzid: str


@dataclass(frozen=True, slots=True)
class Success:
    """Authenticated as ``identity``; ``final`` is data to send with the success (SCRAM)."""

    identity: str
    final: bytes | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str


Step = Challenge | NeedPassword | NeedVerifier | Success | Failure


class Exchange:
    """One authentication attempt. Feed client messages to :meth:`step` in order."""

    def __init__(self, mechanism: str, *, nonce: str | None = None) -> None:
        self.mechanism = mechanism.upper()
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        self._stage = 0
        self._username = ""
        self._authzid = ""
        self._server_nonce = nonce or secrets.token_urlsafe(18)
        self._scram: _Scram | None = None

    def start(self, initial: bytes | None) -> Step:
        """The first step: with the initial response (SASL-IR, RFC 4959) if the client sent one."""
        if initial is not None:
            return self.step(initial)
        if self.mechanism == "LOGIN":
            self._stage = 1
            return Challenge(b"Username:")
        return Challenge(b"")

    def step(self, data: bytes) -> Step:
        if self.mechanism == "PLAIN":
            return self._plain(data)
        if self.mechanism == "LOGIN":
            return self._login(data)
        return self._scram_step(data)

    # -- PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) ------------------------

    def _plain(self, data: bytes) -> Step:
        parts = data.split(b"\0")
        if len(parts) != 3 or not parts[1]:
            return Failure("malformed PLAIN response")
        try:
            authzid, username, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            return Failure("PLAIN response is not UTF-8")
        return NeedPassword(username, password, authzid)

    def _login(self, data: bytes) -> Step:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return Failure("LOGIN response is not UTF-8")
        if self._stage <= 1:
            self._username, self._stage = text, 2
            return Challenge(b"Password:")
        return NeedPassword(self._username, text, "")

    def password_checked(self, ok: bool, identity: str) -> Step:
        """The caller's verdict on a :class:`NeedPassword`."""
        return Success(identity) if ok else Failure("invalid credentials")

    # -- SCRAM-SHA-256 (RFC 5802, RFC 7677) ----------------------------------------------

    def _scram_step(self, data: bytes) -> Step:
        if self._scram is None:
            return self._scram_first(data)
        if self._stage == 3:
            # The client's empty answer to server-final (RFC 5802 §5; SMTP sends it as a 334).
            return Success(self._username) if data == b"" else Failure("unexpected data")
        return self._scram_final(data)

    def _scram_first(self, data: bytes) -> Step:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return Failure("SCRAM message is not UTF-8")
        # gs2-header: channel binding flag, optional authzid; we offer no channel binding.
        flag, _, rest = text.partition(",")
        authz, _, bare = rest.partition(",")
        if flag not in ("n", "y") or not bare:
            return Failure("unsupported or malformed gs2 header")
        attrs = _attributes(bare)
        if "m" in attrs or "n" not in attrs or "r" not in attrs:
            return Failure("malformed client-first-message")
        username = _unescape(attrs["n"])
        authzid = _unescape(authz[2:]) if authz.startswith("a=") else ""
        self._scram = _Scram(
            gs2_header=f"{flag},{authz},",
            client_first_bare=bare,
            nonce=attrs["r"] + self._server_nonce,
        )
        self._username, self._authzid = username, authzid
        return NeedVerifier(username, authzid)

    def verifier(self, stored: str) -> Step:
        """Answer a :class:`NeedVerifier` with the stored ``iterations,salt,StoredKey,ServerKey``.

        An unknown user gets a made-up challenge, so the exchange fails only at the proof and
        does not reveal which accounts exist (RFC 5802 §5.1 allows either).
        """
        assert self._scram is not None
        try:
            iterations_text, salt_b64, stored_b64, server_b64 = stored.split(",")
            self._scram.iterations = int(iterations_text)
            self._scram.salt = base64.b64decode(salt_b64, validate=True)
            self._scram.stored_key = base64.b64decode(stored_b64, validate=True)
            self._scram.server_key = base64.b64decode(server_b64, validate=True)
        except (ValueError, binascii.Error):
            self._scram.iterations, self._scram.salt = 4096, secrets.token_bytes(16)
            self._scram.stored_key = self._scram.server_key = b""
        salt = base64.b64encode(self._scram.salt).decode()
        self._scram.server_first = f"r={self._scram.nonce},s={salt},i={self._scram.iterations}"
        return Challenge(self._scram.server_first.encode())

    def _scram_final(self, data: bytes) -> Step:
        scram = self._scram
        assert scram is not None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return Failure("SCRAM message is not UTF-8")
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        attrs = _attributes(without_proof)
        channel = base64.b64encode(scram.gs2_header.encode()).decode()
        if not sep or attrs.get("c") != channel or attrs.get("r") != scram.nonce:
            return Failure("SCRAM client-final-message does not match")
        if not scram.stored_key:
            return Failure("invalid credentials")
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except binascii.Error:
            return Failure("malformed proof")
        auth_message = f"{scram.client_first_bare},{scram.server_first},{without_proof}".encode()
        signature = hmac.digest(scram.stored_key, auth_message, "sha256")
        if len(proof) != len(signature):
            return Failure("invalid credentials")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), scram.stored_key):
            return Failure("invalid credentials")
        server_signature = hmac.digest(scram.server_key, auth_message, "sha256")
        self._stage = 3
        return Challenge(b"v=" + base64.b64encode(server_signature))


@dataclass(slots=True)
class _Scram:
    gs2_header: str
    client_first_bare: str
    nonce: str
    server_first: str = ""
    iterations: int = 0
    salt: bytes = b""
    stored_key: bytes = b""
    server_key: bytes = b""


def _attributes(message: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in message.split(","):
        key, sep, value = item.partition("=")
        if sep and len(key) == 1:
            found.setdefault(key, value)
    return found


def _unescape(name: str) -> str:
    """RFC 5802 §5.1: ``=2C`` is a comma and ``=3D`` an equals sign in user names."""
    return name.replace("=2C", ",").replace("=3D", "=")
