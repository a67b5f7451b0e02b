"""HTTPS fetches of a diagnosis (an MTA-STS policy, a BIMI logo): resolve the host through the
check's DNS, GET with a verifying TLS context, never raise — a failure is a sentence."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from courrier.diag.lookups import Lookups
from courrier.queue import https

__all__ = ["Access", "Fetched", "fetch"]


@dataclass(frozen=True, slots=True)
class Access:
    """How fetches are made: the port when a URL has none (443), extra trusted CAs, the
    time allowed for each."""

    port: int = 443
    ca_file: str = ""
    seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Fetched:
    response: https.Response | None = None
    #: Why there is no response: no address, connection, TLS or HTTP failure.
    problem: str = ""
    #: The failure was the certificate (TLS handshake), not the connection.
    tls: bool = False


async def fetch(
    lookups: Lookups,
    host: str,
    path: str,
    access: Access,
    *,
    port: int | None = None,
    limit: int = 1 << 20,
) -> Fetched:
    addresses, failed = await lookups.addresses(host)
    if not addresses:
        return Fetched(problem=f"{host} has no address" + (f" ({failed})" if failed else ""))
    context = ssl.create_default_context(cafile=access.ca_file or None)
    try:
        async with asyncio.timeout(access.seconds):
            response = await https.get(
                addresses[0], port or access.port, host, path, context, limit=limit
            )
    except https.TLSError as exc:
        return Fetched(problem=str(exc), tls=True)
    except https.HTTPError as exc:
        return Fetched(problem=str(exc))
    except TimeoutError:
        return Fetched(problem=f"https://{host}{path} did not answer within {access.seconds:g} s")
    return Fetched(response)
