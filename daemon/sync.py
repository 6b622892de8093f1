"""Mirror one mailbox into the store: apply a connector's change stream, folder by folder.

For each folder the connector lists, the sync reads the cursor saved by the last
Checkpoint and applies what `connector.changes(folder, cursor)` yields, each change in
its own transaction::

    Reset       -> drop the folder's locations and cursor (and messages left in no folder)
    Fetched     -> store the batch: messages, their addresses, their place in the folder
    Present     -> drop the folder's locations not in the set (and orphaned messages)
    Checkpoint  -> save the cursor; everything before it is already committed

A crash anywhere therefore resumes from the last checkpoint, and re-fetching what was
stored after it is harmless: the store's upserts are idempotent.

The sync opens the connector's session (`with connector:`) and closes it at the end, so
a failure to connect or log in is recorded like any other. The outcome is recorded on
the account (`last_success_at`, or `last_error`), then connector errors propagate to
the caller, which decides about retries. Message text is never logged nor put in an
error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import assert_never

from connectors.base import (
    Change,
    Checkpoint,
    ConnectorError,
    Fetched,
    Present,
    RemoteFolder,
    Reset,
    SyncConnector,
)
from daemon.store import Store, StoredFolder

__all__ = ["ProgressCallback", "SyncSummary", "describe_error", "sync_account"]

# Called after each stored batch with the folder's name and its messages fetched so far.
ProgressCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class SyncSummary:
    """What one sync of one account did. `duration` is in seconds."""

    account: str
    folders: int
    fetched: int
    removed: int
    resets: int
    duration: float


def sync_account(
    store: Store,
    account_name: str,
    kind: str,
    connector: SyncConnector,
    *,
    on_progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] | None = None,
) -> SyncSummary:
    """Bring the store's copy of the account up to date through `connector`.

    Records the outcome on the account; a `ConnectorError` (or any other failure) is
    re-raised after that. `clock` gives the current time (default: the system's, UTC).
    """
    run = _Run(store, connector, on_progress, clock or _utc_now)
    started = time.monotonic()
    account_id = store.ensure_account(account_name, kind)
    try:
        with connector:
            remote_folders = {folder.name: folder for folder in connector.folders()}
            stored_folders = store.sync_folders(account_id, list(remote_folders.values()))
            for folder in stored_folders:
                run.sync_folder(remote_folders[folder.name], folder)
    except Exception as exc:
        _record_failure(store, account_name, exc, run.now())
        raise
    store.record_sync_result(account_name, finished_at=run.now())
    return SyncSummary(
        account=account_name,
        folders=len(stored_folders),
        fetched=run.fetched,
        removed=run.removed,
        resets=run.resets,
        duration=time.monotonic() - started,
    )


def describe_error(exc: BaseException) -> str:
    """The short text stored as an account's last error.

    A connector's own message is kept (connectors never put message text in one);
    anything else is a bug here and only its type is kept.
    """
    if isinstance(exc, ConnectorError):
        detail = " ".join(str(exc).split())
        return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"internal error ({type(exc).__name__})"


@dataclass
class _Run:
    """One sync in progress: where it writes, what it reads, what it has done so far."""

    store: Store
    connector: SyncConnector
    on_progress: ProgressCallback | None
    now: Callable[[], datetime]
    fetched: int = 0
    removed: int = 0
    resets: int = 0

    def sync_folder(self, remote: RemoteFolder, folder: StoredFolder) -> None:
        fetched_here = 0
        for change in self.connector.changes(remote, folder.cursor):
            fetched = self.apply(folder, change)
            if fetched:
                fetched_here += fetched
                if self.on_progress is not None:
                    self.on_progress(folder.name, fetched_here)

    def apply(self, folder: StoredFolder, change: Change) -> int:
        """Apply one change in its own transaction; returns how many messages it fetched."""
        match change:
            case Fetched(messages=batch):
                self.store.apply_fetched(folder, batch)
                self.fetched += len(batch)
                return len(batch)
            case Present(remote_ids=remote_ids):
                self.removed += self.store.apply_present(folder, remote_ids)
            case Checkpoint(cursor=cursor):
                self.store.save_cursor(folder.id, cursor, synced_at=self.now())
            case Reset():
                self.removed += self.store.apply_reset(folder)
                self.resets += 1
            case _:
                assert_never(change)
        return 0


def _record_failure(store: Store, account_name: str, exc: Exception, at: datetime) -> None:
    try:
        store.record_sync_result(account_name, finished_at=at, error=describe_error(exc))
    except Exception as record_exc:
        # The database is failing too; the caller hears of the original error.
        exc.add_note(f"recording the failure failed too: {type(record_exc).__name__}")


def _utc_now() -> datetime:
    return datetime.now(UTC)
