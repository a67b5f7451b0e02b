"""Password hashing and policy: argon2id for logins, SCRAM-SHA-256 keys for SASL SCRAM.

Hashing and checking are deliberately slow (argon2id, 64 MiB); the async helpers run them in a
worker thread so the event loop never stalls. Next to the argon2id hash we keep the SCRAM-SHA-256
verifier (RFC 5802 §3, RFC 7677) so that clients can authenticate without sending the password;
its format is Dovecot's: ``iterations,salt,StoredKey,ServerKey`` in base64.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: RFC 7677 §4: at least 4096 iterations.
SCRAM_ITERATIONS = 4096

_hasher = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1)

#: The most common passwords of the public breach lists, refused outright.
_COMMON = frozenset(
    [
        "123456",
        "123456789",
        "12345678",
        "password",
        "qwerty123",
        "qwerty",
        "1q2w3e4r",
        "111111",
        "1234567890",
        "000000",
        "abc123",
        "password1",
        "iloveyou",
        "123123",
        "1234567",
        "dragon",
        "monkey",
        "letmein",
        "football",
        "baseball",
        "welcome",
        "admin",
        "administrator",
        "passw0rd",
        "master",
        "sunshine",
        "princess",
        "azerty",
        "azertyuiop",
        "motdepasse",
        "changeme",
        "secret",
        "trustno1",
        "qwertyuiop",
        "987654321",
        "superman",
    ]
)


class WeakPassword(ValueError):
    """The password breaks the policy; the message says how."""


@dataclass(frozen=True, slots=True)
class Credentials:
    password_hash: str
    scram_sha256: str


def check_policy(password: str, *, min_length: int, address: str = "") -> None:
    """Refuse empty, short, common or address-derived passwords."""
    if not password:
        raise WeakPassword("The password is empty.")
    if len(password) < min_length:
        raise WeakPassword(f"The password is too short: use at least {min_length} characters.")
    if password != password.strip():
        raise WeakPassword("The password starts or ends with a space.")
    if len(set(password)) < 4:
        raise WeakPassword("The password repeats too few different characters.")
    lowered = password.lower()
    if lowered in _COMMON or lowered.rstrip(string.digits + "!.") in _COMMON:
        raise WeakPassword("The password is one of the most common passwords.")
    local = address.partition("@")[0].lower()
    if local and len(local) >= 3 and local in lowered:
        raise WeakPassword("The password contains the address's user name.")


def generate_password(length: int = 20) -> str:
    """A random password from letters and digits, easy to type and ~119 bits for 20 characters."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def scram_sha256(
    password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    """The SCRAM-SHA-256 verifier of RFC 5802 §3 for a (SASLprep'd) password."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"{iterations},{b64(salt).decode()},{b64(stored_key).decode()},{b64(server_key).decode()}"
    )


def make_credentials(password: str) -> Credentials:
    return Credentials(_hasher.hash(password), scram_sha256(password))


def verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def make_credentials_async(password: str) -> Credentials:
    return await asyncio.to_thread(make_credentials, password)


async def verify_async(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(verify, password_hash, password)


class LoginCache:
    """Successful password checks, remembered for a while (Dovecot's ``auth_cache``).

    An argon2id check costs ~150 ms of CPU by design; a mail client logs in on several
    connections and again after every network change. A hit needs the same address, the same
    stored hash (a password change invalidates it) and an HMAC of the password under a key
    that lives only in this process's memory; entries expire after ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 900.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: collections.OrderedDict[str, tuple[bytes, str, float]] = (
            collections.OrderedDict()
        )

    def _mac(self, password: str) -> bytes:
        return hmac.digest(self._key, password.encode("utf-8", "surrogatepass"), "sha256")

    def hit(self, address: str, password_hash: str, password: str) -> bool:
        entry = self._entries.get(address)
        if entry is None:
            return False
        mac, stored_hash, expires = entry
        if expires < time.monotonic() or stored_hash != password_hash:
            del self._entries[address]
            return False
        return hmac.compare_digest(mac, self._mac(password))

    def remember(self, address: str, password_hash: str, password: str) -> None:
        self._entries[address] = (self._mac(password), password_hash, time.monotonic() + self.ttl)
        self._entries.move_to_end(address)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
