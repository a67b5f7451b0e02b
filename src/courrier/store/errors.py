"""Errors the store raises; each message is one sentence a user can read."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for store failures."""


class NotFound(StoreError):
    """The domain, account, alias, mailbox or message does not exist."""


class AlreadyExists(StoreError):
    """A domain, account, alias or mailbox of that name already exists."""


class QuotaExceeded(StoreError):
    """Storing the message would take the account over its quota (RFC 9208 OVERQUOTA)."""


class StorageFull(StoreError):
    """The disk (or the database's space) is full: a temporary failure, nothing was written.

    SMTP answers 452 4.3.1 (RFC 3463), IMAP ``NO`` with the reason."""


class InvalidName(StoreError):
    """A name or address is not acceptable."""


class InUse(StoreError):
    """The object cannot be removed because others depend on it."""


class SchemaTooNew(StoreError):
    """The database was written by a newer courrier than this one."""


class StoreClosed(StoreError):
    """The store has been closed."""
