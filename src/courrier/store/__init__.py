"""The store: the only code that talks to SQLite, PostgreSQL or the blob directory.

``open_store(settings)`` gives a :class:`Store` on the configured backend; everything else in
courrier reads and writes through it.
"""

from __future__ import annotations

from courrier.config import Settings
from courrier.store.api import Store, Target
from courrier.store.errors import (
    AlreadyExists,
    InUse,
    InvalidName,
    NotFound,
    QuotaExceeded,
    SchemaTooNew,
    StorageFull,
    StoreClosed,
    StoreError,
)
from courrier.store.models import (
    Account,
    Alias,
    Appended,
    Change,
    ChangeKind,
    DkimKey,
    Domain,
    Flag,
    LeasedMessage,
    LeasedRecipient,
    Mailbox,
    MailboxView,
    Message,
    MessageState,
    RecipientResult,
    Relay,
)

__all__ = [
    "Account",
    "Alias",
    "AlreadyExists",
    "Appended",
    "Change",
    "ChangeKind",
    "DkimKey",
    "Domain",
    "Flag",
    "InUse",
    "InvalidName",
    "LeasedMessage",
    "LeasedRecipient",
    "Mailbox",
    "MailboxView",
    "Message",
    "MessageState",
    "NotFound",
    "QuotaExceeded",
    "RecipientResult",
    "Relay",
    "SchemaTooNew",
    "StorageFull",
    "Store",
    "StoreClosed",
    "StoreError",
    "Target",
    "open_store",
]


async def open_store(settings: Settings) -> Store:
    """Open the store the settings name (creating and migrating the database as needed)."""
    s = settings.store
    if s.backend == "postgresql":
        return await Store.open_postgres(s.url, max_batch=s.max_batch, readers=s.readers)
    return await Store.open_sqlite(
        settings.data_path,
        inline_blob_max=s.inline_blob_max,
        max_batch=s.max_batch,
        readers=s.readers,
    )
