"""Connection limits shared by the protocol listeners: per client address and in all, how long
a client may keep us waiting, and the loopback test behind their ``plaintext_on_loopback``
settings.

A listener asks :meth:`ConnectionLimits.admit` before greeting a client and calls
:meth:`ConnectionLimits.release` when the conversation is over (Postfix's
``smtpd_client_connection_count_limit``, Dovecot's ``mail_max_userip_connections``). It reads
through :class:`ReadTimeout`, which ends a read the client leaves unanswered for too long.
"""

from __future__ import annotations

import asyncio
import ipaddress


def is_loopback(peer: str) -> bool:
    """Whether a client address is the machine itself (plaintext logins may be allowed there)."""
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


class ConnectionLimits:
    def __init__(self, per_ip: int, total: int) -> None:
        self.per_ip = per_ip
        self.total = total
        self._by_ip: dict[str, int] = {}
        self._open = 0

    def admit(self, ip: str) -> bool:
        """Count a new connection from ``ip``; False (and nothing counted) when over a limit."""
        if self._open >= self.total or self._by_ip.get(ip, 0) >= self.per_ip:
            return False
        self._open += 1
        self._by_ip[ip] = self._by_ip.get(ip, 0) + 1
        return True

    def release(self, ip: str) -> None:
        self._open -= 1
        left = self._by_ip[ip] - 1
        if left:
            self._by_ip[ip] = left
        else:
            del self._by_ip[ip]

    @property
    def open(self) -> int:
        return self._open


class ReadTimeout:
    """Waits for a client with a time limit, for every command of a connection.

    ``asyncio.timeout`` around each read schedules and cancels a timer per command (about 4 µs,
    a tenth of what a POP3 RETR costs the server). This keeps one timer per connection instead
    and re-arms it only when it fires: then, if the connection is still waiting and its time is
    up, the waiting read ends in :class:`TimeoutError`; otherwise the timer moves to the
    current deadline (or is dropped while no read waits; the next read sets it again). Time
    spent handling a command never counts. :meth:`close` drops the timer with the connection.
    """

    __slots__ = ("_deadline", "_expired", "_handle", "_loop", "_task")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[object] | None = None
        #: When the read now waiting times out; None while no read waits.
        self._deadline: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    async def read(self, reader: asyncio.StreamReader, size: int, seconds: float) -> bytes:
        """``reader.read(size)``, or TimeoutError after ``seconds`` without anything to read."""
        deadline = self._deadline = self._loop.time() + seconds
        self._task = asyncio.current_task()  # not always the same: IMAP IDLE reads in a task
        handle = self._handle
        if handle is None or handle.when() > deadline:
            if handle is not None:
                handle.cancel()
            self._handle = self._loop.call_at(deadline, self._fire)
        try:
            return await reader.read(size)
        except asyncio.CancelledError:
            if self._expired and self._task is not None and self._task.uncancel() == 0:
                self._expired = False
                raise TimeoutError from None
            raise
        finally:
            self._deadline = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._task = None

    def _fire(self) -> None:
        self._handle = None
        deadline = self._deadline
        if deadline is None:
            return
        if self._loop.time() < deadline:
            self._handle = self._loop.call_at(deadline, self._fire)
        elif self._task is not None:
            self._expired = True
            self._task.cancel()
