"""Shared helpers for the POP3 tests: a synchronous driver for the sans-IO protocol core."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from courrier.pop3.proto import (
    NEED_DATA,
    AuthResponse,
    AuthStart,
    Closed,
    Entry,
    Event,
    Flush,
    Login,
    Retrieve,
    ServerConfig,
    ServerConnection,
    StartTLS,
    Update,
)

#: The credentials the scripted authenticator accepts (USER/PASS and SASL PLAIN).
USER, PASSWORD = "bob@example.org", "secret words"
GOOD_PLAIN = f"\0{USER}\0{PASSWORD}".encode()

#: The maildrop the driver logs in to: message n has key n.
MESSAGES: dict[int, bytes] = {
    1: b"Subject: one\r\n\r\nfirst line\r\n.second line starts with a dot\r\n",
    2: b"Subject: two\r\nFrom: a@example.net\r\n\r\nl1\r\nl2\r\nl3\r\n",
    3: b"Subject: three\r\n\r\n" + b"x" * 100 + b"\r\n",
}


def maildrop(messages: dict[int, bytes] | None = None) -> list[Entry]:
    found = MESSAGES if messages is None else messages
    return [Entry(key, len(raw), f"1700000000.{key}") for key, raw in found.items()]


def config(**overrides: Any) -> ServerConfig:
    return ServerConfig(**overrides)


def login(event: Login | AuthStart | AuthResponse) -> bytes | bool:
    """Scripted credentials check: a challenge (bytes) for AUTH without initial response, else
    whether the credentials are the good ones."""
    if isinstance(event, Login):
        return event.username == USER and event.password == PASSWORD
    data = event.initial if isinstance(event, AuthStart) else event.data
    if data is None:
        return b""
    return data == GOOD_PLAIN


@dataclass
class Driver:
    """Drives a ServerConnection as the asyncio server does, answering with a fixed policy."""

    conn: ServerConnection
    auth: Callable[[Login | AuthStart | AuthResponse], bytes | bool] = login
    messages: dict[int, bytes] = field(default_factory=lambda: dict(MESSAGES))
    #: What QUIT's removal answers (update_done's argument).
    update_ok: bool = True
    #: Keys whose Retrieve is answered message_gone().
    gone: set[int] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)
    #: Output taken at Flush events, not yet returned by replies().
    flushed: bytearray = field(default_factory=bytearray)

    @classmethod
    def start(
        cls, cfg: ServerConfig | None = None, *, plaintext_allowed: bool = False, **policy: Any
    ) -> Driver:
        return cls(ServerConnection(cfg or config(), plaintext_allowed=plaintext_allowed), **policy)

    @classmethod
    def logged_in(cls, cfg: ServerConfig | None = None, **policy: Any) -> Driver:
        """A driver on an implicit-TLS connection, logged in, output drained."""
        driver = cls.start(cfg or config(implicit_tls=True), **policy)
        driver.feed(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
        driver.output()
        return driver

    def feed(self, *chunks: bytes) -> list[Event]:
        """Each chunk is one read; returns the events they produced."""
        start = len(self.events)
        for chunk in chunks:
            self.conn.receive_data(chunk)
            self.pump()
        return self.events[start:]

    def eof(self) -> list[Event]:
        start = len(self.events)
        self.conn.receive_eof()
        self.pump()
        return self.events[start:]

    def pump(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return
            if self.events and isinstance(self.events[-1], Closed) and event == self.events[-1]:
                return
            self.events.append(event)
            if isinstance(event, Login | AuthStart | AuthResponse):
                answer = self.auth(event)
                if isinstance(answer, bytes):
                    conn.auth_challenge(answer)
                elif answer:
                    conn.accept_login(maildrop(self.messages))
                else:
                    conn.refuse_login("AUTH")
            elif isinstance(event, StartTLS):
                conn.tls_started()
            elif isinstance(event, Retrieve):
                if event.entry.key in self.gone:
                    conn.message_gone()
                else:
                    conn.send_message(self.messages[event.entry.key])
            elif isinstance(event, Update):
                conn.update_done(self.update_ok)
            elif isinstance(event, Flush):
                self.flushed += conn.data_to_send()
            elif isinstance(event, Closed):
                return

    def output(self) -> bytes:
        """Everything sent since the last call."""
        data = bytes(self.flushed) + self.conn.data_to_send()
        self.flushed.clear()
        return data

    def replies(self) -> list[str]:
        """The lines sent since the last call, CRLF removed."""
        data = self.output()
        assert data == b"" or data.endswith(b"\r\n"), data
        return data.decode("utf-8", "replace").split("\r\n")[:-1]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
