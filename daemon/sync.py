"""Mirror one mailbox into the store: apply a connector's change stream, folder by folder.

For each folder the connector lists, the sync reads the cursor saved by the last
Checkpoint and applies what `connector.changes(folder, cursor)` yields, each change in
its own transaction (a batch and the Checkpoint right after it share one)::

    Reset       -> drop the folder's locations and cursor (and messages left in no folder)
    Fetched     -> store the batch: messages, their addresses, their place in the folder
    Present     -> drop the folder's locations not in the set (and orphaned messages)
    Checkpoint  -> save the cursor; everything before it is committed, at the latest with it

A crash anywhere therefore resumes from the last checkpoint, and re-fetching what was
stored after it is harmless: the store's upserts are idempotent.

The changes are applied on a writer thread of their own, fed through a small bounded
queue, while this thread reads the next ones from the connector and makes each batch
into rows (`Store.prepare_fetched`): the server, the connector's parsing and the
database (which releases the GIL while it works) then run at the same time instead of
in turn. There is one writer and the queue is FIFO, so the
changes are applied in the order the connector yielded them, each Checkpoint after the
messages before it; memory stays flat, as at most `_QUEUE_DEPTH` changes wait. A
failure on either side ends the sync with that failure: when the writer fails, the
changes queued after the failed one are dropped (never a checkpoint past it); when the
connector fails, the changes it yielded before are still applied, as they would have
been one by one. A stop request (Ctrl-C, or the daemon's shutdown exception) drops the
queued changes and waits only for the transaction in flight.

The sync opens the connector's session (`with connector:`) and closes it at the end, so
a failure to connect or log in is recorded like any other. The outcome is recorded on
the account (`last_success_at`, or `last_error`), then connector errors propagate to
the caller, which decides about retries. Message text is never logged nor put in an
error.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import assert_never

from connectors.base import (
    Change,
    Checkpoint,
    ConnectorError,
    Fetched,
    Present,
    Reset,
    SyncConnector,
)
from daemon.shutdown import StopFlag
from daemon.store import PreparedBatch, Store, StoredFolder

__all__ = ["ProgressCallback", "SyncSummary", "describe_error", "sync_account"]

# Called after each stored batch with the folder's name and its messages fetched so far,
# on the thread that writes to the store.
ProgressCallback = Callable[[str, int], None]

# Changes waiting for the writer besides the batch it is storing (and the Checkpoint it
# took after it): the next batch and its Checkpoint, while the connector reads another.
_QUEUE_DEPTH = 2


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
    stop: StopFlag | None = None,
) -> SyncSummary:
    """Bring the store's copy of the account up to date through `connector`.

    Records the outcome on the account; a `ConnectorError` (or any other failure) is
    re-raised after that. `clock` gives the current time (default: the system's, UTC).
    With `stop`, a stop request raises `Shutdown` between two changes: what was applied
    stays, each change whole, and the next sync resumes from the last checkpoint.
    """
    run = _Run(store, on_progress, clock or _utc_now)
    started = time.monotonic()
    account_id = store.ensure_account(account_name, kind)
    try:
        with connector:
            remote_folders = {folder.name: folder for folder in connector.folders()}
            stored_folders = store.sync_folders(account_id, list(remote_folders.values()))
            with _Writer(run.apply) as writer:
                for folder in stored_folders:
                    for change in connector.changes(remote_folders[folder.name], folder.cursor):
                        if stop is not None:
                            stop.raise_if_set()
                        writer.put(run.prepare(folder, change))
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
    """One sync in progress: where it writes, what it has done so far. `apply` runs on
    the writer thread only."""

    store: Store
    on_progress: ProgressCallback | None
    now: Callable[[], datetime]
    fetched: int = 0
    removed: int = 0
    resets: int = 0
    fetched_per_folder: dict[int, int] = field(default_factory=dict)

    def prepare(self, folder: StoredFolder, change: Change) -> _Write:
        """The change as the writer takes it: a batch already made into rows."""
        if isinstance(change, Fetched):
            return _Write(folder, change, self.store.prepare_fetched(folder, change.messages))
        return _Write(folder, change)

    def apply(self, write: _Write, checkpoint: Checkpoint | None = None) -> None:
        """Apply one change in its own transaction; a batch with the Checkpoint that
        followed it, if given, in one."""
        folder = write.folder
        match write.change:
            case Fetched(messages=batch):
                prepared = write.prepared or self.store.prepare_fetched(folder, batch)
                if checkpoint is None:
                    self.store.apply_prepared(prepared)
                else:
                    self.store.apply_prepared(
                        prepared, cursor=checkpoint.cursor, synced_at=self.now()
                    )
                self.fetched += len(batch)
                if batch:
                    so_far = self.fetched_per_folder.get(folder.id, 0) + len(batch)
                    self.fetched_per_folder[folder.id] = so_far
                    if self.on_progress is not None:
                        self.on_progress(folder.name, so_far)
            case Present(remote_ids=remote_ids):
                self.removed += self.store.apply_present(folder, remote_ids)
            case Checkpoint(cursor=cursor):
                self.store.save_cursor(folder.id, cursor, synced_at=self.now())
            case Reset():
                self.removed += self.store.apply_reset(folder)
                self.resets += 1
            case _:
                assert_never(write.change)


@dataclass(frozen=True)
class _Write:
    """One change for the writer, with the rows of a batch (`Store.prepare_fetched`)."""

    folder: StoredFolder
    change: Change
    prepared: PreparedBatch | None = None


class _Writer:
    """Applies changes on a thread of its own, in the order they were put (see the module
    docstring). A context manager: leaving it waits for the writer.

    A batch and the Checkpoint right after it (how connectors yield them) are applied in
    one transaction: the cursor is still saved after the messages, and atomically with
    them, and a batch costs one commit instead of two.
    """

    def __init__(
        self, apply: Callable[[_Write, Checkpoint | None], None], depth: int = _QUEUE_DEPTH
    ) -> None:
        self._apply = apply
        # None is the end of the stream.
        self._queue: queue.Queue[_Write | None] = queue.Queue(depth)
        self._failure: BaseException | None = None
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name="relight-store-writer")
        # A daemon thread, so that a process told twice to stop exits at once.
        self._thread.daemon = True

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, Exception):
            self._abandon = True  # a stop request: only the transaction in flight ends
        try:
            self._queue.put(None)  # the writer keeps taking items, even after a failure
            self._thread.join()
        except BaseException:
            self._abandon = True
            raise
        if self._failure is not None and self._failure is not exc:
            # The writer failed on a change the connector yielded before whatever it
            # raised (if anything): that failure came first, as in a sync one by one.
            raise self._failure

    def put(self, write: _Write) -> None:
        """Queue a change; waits while the queue is full. Raises the writer's failure."""
        if self._failure is not None:
            raise self._failure
        self._queue.put(write)

    def _run(self) -> None:
        write = self._queue.get()
        while write is not None:
            if not isinstance(write.change, Fetched):
                self._attempt(write, None)
                write = self._queue.get()
                continue
            after = self._queue.get()  # the batch's Checkpoint, normally
            if (
                after is not None
                and isinstance(after.change, Checkpoint)
                and after.folder.id == write.folder.id
            ):
                self._attempt(write, after.change)
                write = self._queue.get()
            else:
                self._attempt(write, None)
                write = after

    def _attempt(self, write: _Write, checkpoint: Checkpoint | None) -> None:
        if self._failure is not None or self._abandon:
            return  # dropped: nothing is applied after a failed change
        try:
            self._apply(write, checkpoint)
        except BaseException as exc:  # handed to the other thread, which raises it
            self._failure = exc


def _record_failure(store: Store, account_name: str, exc: Exception, at: datetime) -> None:
    try:
        store.record_sync_result(account_name, finished_at=at, error=describe_error(exc))
    except Exception as record_exc:
        # The database is failing too; the caller hears of the original error.
        exc.add_note(f"recording the failure failed too: {type(record_exc).__name__}")


def _utc_now() -> datetime:
    return datetime.now(UTC)
