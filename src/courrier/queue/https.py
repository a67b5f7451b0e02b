"""A small HTTPS GET for MTA-STS policies (RFC 8461 §3.3): one request, one bounded answer.

What this module owns: an HTTP/1.1 response parser with no sockets (:class:`ResponseParser`:
status line, header fields, a body by ``Content-Length``, chunked or to the end of the
connection, never more than a limit) and :func:`get`, its asyncio shell: connect to a given
address with a given TLS context and name (certificate checked by the context), send
``GET`` with ``Connection: close``, read until the answer is whole or the time is up. No
redirects are followed (§3.3): a 3xx is returned like any other status.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

__all__ = ["HTTPError", "Response", "ResponseParser", "TLSError", "get"]

_MAX_HEAD = 16 * 1024


class HTTPError(Exception):
    """No usable answer: connection, timeout, or bytes that are not HTTP/1.x."""


class TLSError(HTTPError):
    """The TLS handshake failed (certificate not trusted, wrong name, expired…)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    #: Field names in lower case; a repeated field keeps its last value.
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class ResponseParser:
    """Bytes in (:meth:`feed`, :meth:`eof`), a :class:`Response` out when complete. A body
    larger than ``limit`` is an :class:`HTTPError`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._head: tuple[int, dict[str, str]] | None = None
        self._body = bytearray()
        self.response: Response | None = None

    def feed(self, data: bytes) -> Response | None:
        self._buffer += data
        return self._advance(False)

    def eof(self) -> Response:
        found = self._advance(True)
        if found is None:
            raise HTTPError("the connection closed before the answer was complete")
        return found

    def _advance(self, eof: bool) -> Response | None:
        if self.response is not None:
            return self.response
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    raise HTTPError("the answer's header is too long")
                return None
            self._head = _parse_head(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
        status, headers = self._head
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._chunked(status, headers)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise HTTPError(f"bad Content-Length {length!r}")
            if int(length) > self.limit:
                raise HTTPError(f"the body is larger than {self.limit} octets")
            if len(self._buffer) < int(length):
                return None if not eof else self._short()
            return self._done(status, headers, bytes(self._buffer[: int(length)]))
        if len(self._buffer) > self.limit:
            raise HTTPError(f"the body is larger than {self.limit} octets")
        return self._done(status, headers, bytes(self._buffer)) if eof else None

    def _chunked(self, status: int, headers: dict[str, str]) -> Response | None:
        while True:
            end = self._buffer.find(b"\r\n")
            if end < 0:
                return None
            size_text = bytes(self._buffer[:end]).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HTTPError(f"bad chunk size {size_text!r}") from None
            if size == 0:
                # Trailers are not wanted: the body is complete.
                return self._done(status, headers, bytes(self._body))
            if len(self._buffer) < end + 2 + size + 2:
                return None
            self._body += self._buffer[end + 2 : end + 2 + size]
            del self._buffer[: end + 2 + size + 2]
            if len(self._body) > self.limit:
                raise HTTPError(f"the body is larger than {self.limit} octets")

    def _short(self) -> Response:
        raise HTTPError("the connection closed before the body was complete")

    def _done(self, status: int, headers: dict[str, str], body: bytes) -> Response:
        self.response = Response(status, headers, body)
        return self.response


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HTTPError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HTTPError(f"bad header line {line[:80]!r}")
        headers[name.lower()] = value.strip(" \t")
    return int(parts[1]), headers


def request(host: str, port: int, path: str) -> bytes:
    """The GET request for ``path`` on ``host``."""
    authority = host if port == 443 else f"{host}:{port}"
    return (
        f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: courrier\r\n"
        "Accept: text/plain\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


async def get(
    address: str,
    port: int,
    host: str,
    path: str,
    context: ssl.SSLContext,
    *,
    limit: int,
) -> Response:
    """GET ``https://host:port/path`` from ``address``; the certificate is checked by
    ``context`` against ``host``. :class:`TLSError` when the handshake fails. The caller
    bounds the time (RFC 8461 §3.3 asks for a timeout)."""
    try:
        try:
            reader, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=host
            )
        except ssl.SSLError as exc:
            raise TLSError(f"TLS with {host} failed: {exc}") from exc
        try:
            writer.write(request(host, port, path))
            parser = ResponseParser(limit)
            while True:
                data = await reader.read(65536)
                if not data:
                    return parser.eof()
                found = parser.feed(data)
                if found is not None:
                    return found
        finally:
            writer.close()
    except OSError as exc:
        raise HTTPError(f"cannot fetch https://{host}{path}: {exc}") from exc
