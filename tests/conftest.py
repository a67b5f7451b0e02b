"""Shared fixtures: a throwaway PostgreSQL cluster per test session, and a store on each backend."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop
from hypothesis import settings

from courrier.store import Store
from tests.support.pgcluster import PostgresCluster, running_cluster
from tests.support.server import running

__all__ = ["running"]  # a server on free ports, for the protocol tests

# Property tests judge behaviour, not speed: on a loaded CI machine a per-example deadline
# only makes them flaky.
settings.register_profile("courrier", deadline=None)
settings.load_profile("courrier")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_opener(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., Any]:
    """A function opening a Store on this test's database (the same one at every call)."""
    if backend == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database()

        async def open_pg(**kwargs: Any) -> Store:
            return await Store.open_postgres(url, **kwargs)

        return open_pg

    async def open_sqlite(**kwargs: Any) -> Store:
        return await Store.open_sqlite(tmp_path / "data", **kwargs)

    return open_sqlite


@pytest.fixture
async def store(store_opener: Callable[..., Any]) -> AsyncIterator[Store]:
    opened: Store = await store_opener()
    try:
        yield opened
    finally:
        await opened.close()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The tests run on the event loop the server runs on (`courrier` uses uvloop)."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (mounting needs root, as on the CI machines)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs (the tests run as root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
