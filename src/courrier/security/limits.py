"""Connection limits shared by the protocol listeners: per client address and in all, and
the loopback test behind their ``plaintext_on_loopback`` settings.

A listener asks :meth:`ConnectionLimits.admit` before greeting a client and calls
:meth:`ConnectionLimits.release` when the conversation is over (Postfix's
``smtpd_client_connection_count_limit``, Dovecot's ``mail_max_userip_connections``).
"""

from __future__ import annotations

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
