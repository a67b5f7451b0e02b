"""The blob area: message contents too big to keep inside the database, one file each.

Files are named by content hash plus a random token, so two writers of the same content never
share a file and a file is removed only by the transaction that drops its row. A file is written
and fsync'd (with its directory) before the transaction that references it is queued.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from courrier.store.errors import StorageFull


def sync_directory(path: Path) -> None:
    """fsync a directory so that a file created in it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobArea:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, digest: str, data: bytes) -> str:
        """Write ``data`` durably; return its path relative to the area."""
        relative = f"{digest[:2]}/{digest[2:4]}/{digest}.{secrets.token_hex(4)}"
        path = self.root / relative
        new_dirs = [p for p in (path.parent.parent, path.parent) if not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            path.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise StorageFull("The disk is full; nothing was written.") from exc
            raise
        finally:
            os.close(fd)
        sync_directory(path.parent)
        for created in reversed(new_dirs):
            sync_directory(created.parent)
        return relative

    def read(self, relative: str) -> bytes:
        return (self.root / relative).read_bytes()

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink(missing_ok=True)

    def files(self) -> set[str]:
        """Every file in the area, as relative paths."""
        if not self.root.exists():
            return set()
        return {str(p.relative_to(self.root)) for p in self.root.glob("*/*/*") if p.is_file()}
