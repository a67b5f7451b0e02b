"""Transactions on DKIM keys: one row per selector of a hosted domain.

Which key signs and which are still published is decided from the times by
:mod:`courrier.mailauth.keys`; here keys are only added, listed and removed.
"""

from __future__ import annotations

from collections.abc import Sequence

from courrier.store.directory import get_domain
from courrier.store.errors import AlreadyExists, NotFound
from courrier.store.models import DkimKey
from courrier.store.tx import Row, Tx, many, one, rows, run

_COLUMNS = (
    "k.id, d.name, k.selector, k.algorithm, k.private_key, k.public_key, k.created_at, k.active_at"
)


def _key(r: Row) -> DkimKey:
    return DkimKey(
        int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), int(r[6]), int(r[7])
    )


def add_keys(domain: str, keys: Sequence[DkimKey], now: int) -> Tx[None]:
    """Store new selectors of ``domain`` (the ``id`` and ``domain`` of ``keys`` are ignored)."""
    found = yield from get_domain(domain)
    if found is None:
        raise NotFound(f"The domain {domain} does not exist.")
    taken = yield rows("SELECT selector FROM dkim_keys WHERE domain_id = ?", found.id)
    clash = {str(r[0]) for r in taken} & {k.selector for k in keys}
    if clash:
        raise AlreadyExists(f"{domain} already has the selector(s) {', '.join(sorted(clash))}.")
    yield many(
        "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, public_key, "
        "created_at, active_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (found.id, k.selector, k.algorithm, k.private_key, k.public_key, now, k.active_at)
            for k in keys
        ],
    )


def list_keys(domain: str | None = None) -> Tx[list[DkimKey]]:
    """Keys of one domain, or of all, by domain then age."""
    where, params = ("WHERE d.name = ? ", (domain,)) if domain else ("", ())
    found = yield rows(
        f"SELECT {_COLUMNS} FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
        f"{where}ORDER BY d.name, k.active_at, k.id",
        *params,
    )
    return [_key(r) for r in found]


def remove_key(domain: str, selector: str) -> Tx[None]:
    row = yield one(
        "SELECT k.id FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
        "WHERE d.name = ? AND k.selector = ?",
        domain,
        selector,
    )
    if row is None:
        raise NotFound(f"{domain} has no DKIM selector {selector}.")
    yield run("DELETE FROM dkim_keys WHERE id = ?", row[0])
