"""The RFC 7208 test suite (the SPF council's, as pyspf ships it: test/rfc7208-tests.yml),
every case through :func:`courrier.mailauth.spf.check_spf` and a real DNS server on loopback.

The suite is not copied here (it has its own licence): pyspf's source distribution is
downloaded from PyPI once into the pytest cache and the file read from it. That happens at
collection, since each case is a test of its own (id ``<document>-<name>``). Each document's
zonedata is served by one :class:`tests.support.spfzone.ZoneServer`, started when its first case
runs and stopped at the end of the session.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import spf
import yaml

from courrier import config
from courrier.dns.resolver import make_resolver
from courrier.mailauth.spf import check_spf
from tests.support.spfzone import TIMEOUT, ZoneServer

PYSPF = "pyspf==2.0.14"
SDIST = "pyspf-2.0.14.tar.gz"
MEMBER = "pyspf-2.0.14/test/rfc7208-tests.yml"

#: Resolver lifetimes (seconds): short where a document has queries that never get answered.
LIFETIME = 3.0
LIFETIME_WITH_TIMEOUTS = 0.5

#: Cases that cannot pass, by id, with the reason.
XFAIL: dict[str, str] = {}

_DOCUMENTS = pytest.StashKey[list[dict[str, Any]] | str]()


def suite_file(cache_dir: Path) -> Path:
    """rfc7208-tests.yml in ``cache_dir``, taken from pyspf's sdist (downloaded once)."""
    suite = cache_dir / "rfc7208-tests.yml"
    if suite.exists():
        return suite
    sdist = cache_dir / SDIST
    if not sdist.exists():
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run(
            [*pip, PYSPF, "-d", str(cache_dir)],
            check=True,
            capture_output=True,
            text=True,
        )
    with tarfile.open(sdist) as tar:
        member = tar.extractfile(MEMBER)
        assert member is not None, f"{MEMBER} is not a file in {SDIST}"
        data = member.read()
    partial = suite.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(suite)
    return suite


def documents(pytest_config: pytest.Config) -> list[dict[str, Any]] | str:
    """The suite's documents, or why they could not be had."""
    if _DOCUMENTS not in pytest_config.stash:
        try:
            cache = getattr(pytest_config, "cache", None)
            if cache is not None:
                cache_dir = cache.mkdir("pyspf-sdist")
            else:  # -p no:cacheprovider
                cache_dir = Path(tempfile.gettempdir(), "courrier-pyspf-sdist")
                cache_dir.mkdir(exist_ok=True)
            path = suite_file(cache_dir)
            with path.open("rb") as f:
                pytest_config.stash[_DOCUMENTS] = list(yaml.safe_load_all(f))
        except subprocess.CalledProcessError as exc:
            pytest_config.stash[_DOCUMENTS] = f"pip download {PYSPF} failed:\n{exc.stderr}"
        except (OSError, KeyError, tarfile.TarError, yaml.YAMLError) as exc:
            pytest_config.stash[_DOCUMENTS] = f"cannot read {MEMBER}: {exc!r}"
    return pytest_config.stash[_DOCUMENTS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rfc7208_case" not in metafunc.fixturenames:
        return
    docs = documents(metafunc.config)
    if isinstance(docs, str):  # a failure, not a silent skip
        metafunc.parametrize("rfc7208_case", [pytest.param(docs, id="download")])
        return
    params = []
    for index, doc in enumerate(docs):
        for name, case in doc["tests"].items():
            test_id = f"{index}-{name}"
            marks = []
            if test_id in XFAIL:
                marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[test_id]))
            params.append(pytest.param((index, name, case), id=test_id, marks=marks))
    metafunc.parametrize("rfc7208_case", params)


class Zones:
    """One DNS server per suite document, started on first use."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.servers: dict[int, tuple[ZoneServer, str]] = {}

    def address(self, index: int) -> str:
        if index not in self.servers:
            server = ZoneServer(self.docs[index]["zonedata"])
            self.servers[index] = (server, server.start())
        return self.servers[index][1]

    def lifetime(self, index: int) -> float:
        zonedata = self.docs[index]["zonedata"]
        timeouts = any(
            entry == TIMEOUT or (isinstance(entry, dict) and TIMEOUT in entry.values())
            for entries in zonedata.values()
            for entry in entries
        )
        return LIFETIME_WITH_TIMEOUTS if timeouts else LIFETIME

    def close(self) -> None:
        for server, _ in self.servers.values():
            server.close()


@pytest.fixture(scope="session")
def rfc7208_zones(request: pytest.FixtureRequest) -> Iterator[Zones]:
    docs = documents(request.config)
    assert not isinstance(docs, str), docs
    zones = Zones(docs)
    try:
        yield zones
    finally:
        zones.close()


async def test_rfc7208(rfc7208_case: tuple[int, str, dict[str, Any]] | str, request: Any) -> None:
    if isinstance(rfc7208_case, str):
        pytest.fail(f"the RFC 7208 test suite could not be had: {rfc7208_case}")
    index, name, case = rfc7208_case
    zones: Zones = request.getfixturevalue("rfc7208_zones")
    settings = config.load(env={}, overrides={"dns.resolvers": [zones.address(index)]})
    resolver = make_resolver(settings, timeout=zones.lifetime(index))
    got = await check_spf(
        resolver, client_ip=case["host"], mail_from=case["mailfrom"], helo=case["helo"]
    )
    expected = case["result"] if isinstance(case["result"], list) else [case["result"]]
    about = f"{name} (RFC 7208 {case['spec']}): {case.get('description', '')}"
    assert got.result in expected, f"{about}\n{got}"
    if "explanation" in case:
        # "DEFAULT": the implementation's own explanation for the result (pyspf's test driver
        # sets it to the word DEFAULT; check_spf keeps pyspf's).
        explanation = case["explanation"]
        if explanation == "DEFAULT":
            explanation = spf.EXPLANATIONS[got.result]
        assert got.explanation == explanation, f"{about}\n{got}"
