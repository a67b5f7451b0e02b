"""Shared helpers for the SMTP tests: a synchronous driver for the sans-IO protocol core."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from courrier.smtp.proto import (
    NEED_DATA,
    AuthResponse,
    AuthStart,
    Closed,
    Event,
    MailFrom,
    MessageReceived,
    RcptTo,
    ServerConfig,
    ServerConnection,
    StartTLS,
)

Reply = tuple[int, str, str]

#: The PLAIN credentials the scripted authenticator accepts.
GOOD_PLAIN = b"\0alice\0secret"


def config(**overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {"hostname": "mx.example.test", "max_message_size": 10_000}
    values.update(overrides)
    return ServerConfig(**values)


def authenticate(event: AuthStart | AuthResponse) -> bytes | tuple[bool, str | None]:
    """A scripted SASL PLAIN: challenge when no initial response, else check GOOD_PLAIN."""
    data = event.initial if isinstance(event, AuthStart) else event.data
    if data is None:
        return b""
    return (True, "alice") if data == GOOD_PLAIN else (False, None)


@dataclass
class Driver:
    """Drives a ServerConnection like the asyncio server does, answering with a fixed policy."""

    conn: ServerConnection
    mail: Callable[[MailFrom], Reply] = lambda e: (250, "2.1.0", "Ok")
    rcpt: Callable[[RcptTo], Reply] = lambda e: (250, "2.1.5", "Ok")
    message: Callable[[MessageReceived], Reply] = lambda e: (250, "2.0.0", "Ok: queued")
    auth: Callable[[AuthStart | AuthResponse], bytes | tuple[bool, str | None]] = authenticate
    events: list[Event] = field(default_factory=list)

    @classmethod
    def start(cls, cfg: ServerConfig | None = None, **policy: Any) -> Driver:
        return cls(ServerConnection(cfg or config()), **policy)

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
            if isinstance(event, MailFrom):
                conn.reply(*self.mail(event))
            elif isinstance(event, RcptTo):
                conn.reply(*self.rcpt(event))
            elif isinstance(event, MessageReceived):
                conn.reply(*self.message(event))
            elif isinstance(event, StartTLS):
                conn.tls_started()
            elif isinstance(event, AuthStart | AuthResponse):
                answer = self.auth(event)
                if isinstance(answer, bytes):
                    conn.auth_challenge(answer)
                else:
                    conn.auth_result(*answer)
            elif isinstance(event, Closed):
                return

    def replies(self) -> list[str]:
        """Reply lines queued since the last call, CRLF removed."""
        data = self.conn.data_to_send()
        assert data == b"" or data.endswith(b"\r\n"), data
        return data.decode().split("\r\n")[:-1]

    def codes(self) -> list[int]:
        """The codes of the complete replies queued since the last call."""
        return [int(line[:3]) for line in self.replies() if line[3] == " "]


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)
