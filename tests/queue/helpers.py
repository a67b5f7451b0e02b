"""What the queue tests share: server B, the destination of A's mail."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from courrier import provisioning
from tests.support.server import PASSWORD, Running, start_server


@contextlib.asynccontextmanager
async def server_b(tmp_path: Path, **overrides: object) -> AsyncIterator[Running]:
    """B: mx.b.test on 127.0.0.3, hosting b.test with carol@b.test (and example.org);
    ``overrides``: more settings (``tls.cert_file``…)."""
    async with start_server(
        tmp_path / "b",
        **{"server.listen": ["127.0.0.3"], "server.hostname": "mx.b.test", **overrides},
    ) as b:
        await provisioning.add_domain(b.store, "b.test")
        await provisioning.add_user(b.store, b.server.settings, "carol@b.test", PASSWORD)
        yield b
