"""The sync applier: a connector's change stream, applied to the store folder by folder."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import count as counter
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import (
    Address,
    AuthenticationError,
    Change,
    Checkpoint,
    Fetched,
    FolderRole,
    MessageFacts,
    Present,
    RemoteFolder,
    Reset,
    TransientError,
)
from daemon.models import accounts, folders, message_addresses, message_locations, messages
from daemon.store import Store
from daemon.sync import SyncSummary, describe_error, sync_account

T0 = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
INBOX = RemoteFolder("INBOX", FolderRole.INBOX)
SENT = RemoteFolder("Sent", FolderRole.SENT)


def message(number: int, uid: int) -> MessageFacts:
    return MessageFacts(
        remote_id=str(uid),
        message_id=f"m{number}@prospect.example",
        sender=Address(f"p{number % 7}@prospect.example", f"Person {number % 7}"),
        to=(Address("dana@acme.example", "Dana"),),
        cc=(Address(f"c{number % 3}@prospect.example"),),
        date=T0 + timedelta(minutes=number),
        received_at=T0 + timedelta(minutes=number, seconds=5),
        subject=f"Subject {number}",
    )


@dataclass
class FakeImap:
    """A mailbox that answers like an IMAP connector: UIDVALIDITY/UIDNEXT cursors.

    Each sync fetches the UIDs from the cursor's UIDNEXT in batches, checkpoints after
    each batch, then lists every UID present. `fail_after` makes `changes` raise once it
    has yielded that many changes, as a dropped connection would.
    """

    boxes: dict[RemoteFolder, dict[int, MessageFacts]] = field(default_factory=dict)
    uidvalidity: dict[RemoteFolder, int] = field(default_factory=dict)
    batch_size: int = 3
    fail_after: int | None = None
    uids: Iterator[int] = field(default_factory=lambda: counter(1))
    seen_cursors: list[str | None] = field(default_factory=list)
    refuse_login: bool = False
    sessions: int = 0
    is_open: bool = False

    def deliver(self, folder: RemoteFolder, *numbers: int) -> None:
        box = self.boxes.setdefault(folder, {})
        self.uidvalidity.setdefault(folder, 1)
        for number in numbers:
            uid = next(self.uids)
            box[uid] = message(number, uid)

    def expunge(self, folder: RemoteFolder, uid: int) -> None:
        del self.boxes[folder][uid]

    def renumber(self, folder: RemoteFolder) -> None:
        """New UIDVALIDITY: the same messages under new UIDs."""
        self.uidvalidity[folder] += 1
        box = self.boxes[folder]
        self.boxes[folder] = {
            uid: replace(facts, remote_id=str(uid))
            for facts, uid in zip(box.values(), self.uids, strict=False)
        }

    def __enter__(self) -> FakeImap:
        if self.refuse_login:
            raise AuthenticationError("LOGIN refused")
        self.sessions += 1
        self.is_open = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.is_open = False

    def folders(self) -> list[RemoteFolder]:
        assert self.is_open, "folders() outside a session"
        return list(self.boxes)

    def changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        assert self.is_open, "changes() outside a session"
        self.seen_cursors.append(cursor)
        for number, change in enumerate(self._changes(folder, cursor)):
            if self.fail_after is not None and number >= self.fail_after:
                raise TransientError("connection reset by peer")
            yield change

    def _changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        validity = self.uidvalidity[folder]
        state = json.loads(cursor) if cursor else None
        uidnext = 1
        if state is not None and state["uidvalidity"] != validity:
            yield Reset()
        elif state is not None:
            uidnext = state["uidnext"]
        box = self.boxes[folder]
        pending = sorted(uid for uid in box if uid >= uidnext)
        for start in range(0, len(pending), self.batch_size):
            batch = pending[start : start + self.batch_size]
            yield Fetched(tuple(box[uid] for uid in batch))
            yield Checkpoint(json.dumps({"uidvalidity": validity, "uidnext": batch[-1] + 1}))
        yield Present(frozenset(str(uid) for uid in box))
        top = max(box, default=0)
        yield Checkpoint(json.dumps({"uidvalidity": validity, "uidnext": max(uidnext, top + 1)}))


def snapshot(store: Store, account: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the store holds for an account, free of row ids."""
    with store.engine.connect() as connection:
        account_id = connection.execute(
            select(accounts.c.id).where(accounts.c.name == account)
        ).scalar_one()
        folder_rows = connection.execute(
            select(folders.c.id, folders.c.name, folders.c.role, folders.c.cursor).where(
                folders.c.account_id == account_id
            )
        ).all()
        folder_names = {row.id: row.name for row in folder_rows}
        message_rows = connection.execute(
            select(messages).where(messages.c.account_id == account_id)
        ).all()
        keys = {row.id: row.dedup_key for row in message_rows}
        location_rows = connection.execute(
            select(message_locations).where(message_locations.c.message_id.in_(list(keys)))
        ).all()
        address_rows = connection.execute(
            select(message_addresses).where(message_addresses.c.message_id.in_(list(keys)))
        ).all()
    return {
        "folders": sorted((row.name, row.role, row.cursor) for row in folder_rows),
        "messages": sorted(
            tuple(value for name, value in row._mapping.items() if name not in {"id", "account_id"})
            for row in message_rows
        ),
        "locations": sorted(
            (folder_names[row.folder_id], row.remote_id, keys[row.message_id])
            for row in location_rows
        ),
        "addresses": sorted(
            (keys[row.message_id], row.role, row.email, row.name) for row in address_rows
        ),
    }


def test_sync_stores_every_folder_and_checkpoints_its_cursor(store: Store) -> None:
    """A first sync stores each folder's messages and the final cursor of each folder."""
    mailbox = FakeImap()
    mailbox.deliver(INBOX, 1, 2, 3, 4)
    mailbox.deliver(SENT, 5, 6)
    summary = sync_account(store, "dana", "imap", mailbox, clock=lambda: T0)
    assert summary == SyncSummary(
        account="dana", folders=2, fetched=6, removed=0, resets=0, duration=summary.duration
    )
    assert store.message_count("dana") == 6
    cursors = {folder.name: json.loads(folder.cursor or "") for folder in store.folders("dana")}
    assert cursors == {
        "INBOX": {"uidvalidity": 1, "uidnext": 5},
        "Sent": {"uidvalidity": 1, "uidnext": 7},
    }
    assert all(folder.synced_at == T0 for folder in store.folders("dana"))


def test_second_sync_resumes_from_the_saved_cursor(store: Store) -> None:
    """The next sync passes the stored cursor and fetches only what is new."""
    mailbox = FakeImap()
    mailbox.deliver(INBOX, 1, 2)
    sync_account(store, "dana", "imap", mailbox)
    before = snapshot(store, "dana")
    assert sync_account(store, "dana", "imap", mailbox).fetched == 0
    assert snapshot(store, "dana") == before
    mailbox.deliver(INBOX, 3)
    assert sync_account(store, "dana", "imap", mailbox).fetched == 1
    assert mailbox.seen_cursors[-1] == json.dumps({"uidvalidity": 1, "uidnext": 3})
    assert store.message_count("dana") == 3


def test_reset_replaces_the_folder_contents(store: Store) -> None:
    """A new UIDVALIDITY resets the folder: same messages, new remote ids, nothing stale."""
    mailbox = FakeImap()
    mailbox.deliver(INBOX, 1, 2, 3)
    sync_account(store, "dana", "imap", mailbox)
    mailbox.renumber(INBOX)
    summary = sync_account(store, "dana", "imap", mailbox)
    assert (summary.resets, summary.removed, summary.fetched) == (1, 3, 3)
    locations = snapshot(store, "dana")["locations"]
    assert [remote_id for _, remote_id, _ in locations] == ["4", "5", "6"]
    assert store.message_count("dana") == 3


def test_expunged_messages_leave_with_their_orphans(store: Store) -> None:
    """A message gone from its only folder is removed; one still in Sent stays."""
    mailbox = FakeImap()
    mailbox.deliver(INBOX, 1, 2)
    mailbox.deliver(SENT, 2)
    sync_account(store, "dana", "imap", mailbox)
    assert store.message_count("dana") == 2
    mailbox.expunge(INBOX, 1)
    mailbox.expunge(INBOX, 2)
    assert sync_account(store, "dana", "imap", mailbox).removed == 2
    assert snapshot(store, "dana")["locations"] == [("Sent", "3", "m2@prospect.example")]


def test_crash_mid_stream_keeps_the_last_checkpoint_and_rerun_matches_a_clean_run(
    store: Store,
) -> None:
    """A sync dying mid-folder keeps its committed batches and cursor; the rerun converges."""
    mailbox = FakeImap(fail_after=5)  # Fetched, Checkpoint, Fetched, Checkpoint, Fetched
    mailbox.deliver(INBOX, *range(1, 11))
    with pytest.raises(TransientError):
        sync_account(store, "dana", "imap", mailbox)
    (inbox,) = store.folders("dana")
    assert json.loads(inbox.cursor or "") == {"uidvalidity": 1, "uidnext": 7}
    assert store.message_count("dana") == 9  # the third batch was stored, not checkpointed
    mailbox.fail_after = None
    sync_account(store, "dana", "imap", mailbox)
    assert mailbox.seen_cursors[-1] == json.dumps({"uidvalidity": 1, "uidnext": 7})
    sync_account(store, "clean", "imap", mailbox)
    assert snapshot(store, "dana") == snapshot(store, "clean")
    assert store.message_count("dana") == 10


def test_connector_error_is_recorded_then_raised(store: Store) -> None:
    """A ConnectorError is stored as the account's last error and propagates."""
    mailbox = FakeImap(fail_after=0)
    mailbox.deliver(INBOX, 1)
    with pytest.raises(TransientError):
        sync_account(store, "dana", "imap", mailbox, clock=lambda: T0)
    (status,) = store.account_status()
    assert status.last_error == "TransientError: connection reset by peer"
    assert status.last_error_at == status.last_sync_at == T0
    assert status.last_success_at is None
    assert status.failing


def test_the_sync_opens_and_closes_the_session(store: Store) -> None:
    """sync_account enters the connector for one session and leaves it, even on failure."""
    mailbox = FakeImap()
    mailbox.deliver(INBOX, 1)
    sync_account(store, "dana", "imap", mailbox)
    assert (mailbox.sessions, mailbox.is_open) == (1, False)
    mailbox.fail_after = 0
    with pytest.raises(TransientError):
        sync_account(store, "dana", "imap", mailbox)
    assert (mailbox.sessions, mailbox.is_open) == (2, False)


def test_refused_login_is_recorded_then_raised(store: Store) -> None:
    """A failure to open the session is the account's last error, like any other."""
    with pytest.raises(AuthenticationError):
        sync_account(store, "dana", "imap", FakeImap(refuse_login=True), clock=lambda: T0)
    (status,) = store.account_status()
    assert (status.last_error, status.last_error_at) == ("AuthenticationError: LOGIN refused", T0)


def test_success_is_recorded(store: Store) -> None:
    """A completed sync records its end as the last success."""
    mailbox = FakeImap()
    mailbox.deliver(INBOX, 1)
    sync_account(store, "dana", "imap", mailbox, clock=lambda: T0)
    (status,) = store.account_status()
    assert (status.last_success_at, status.last_error, status.failing) == (T0, None, False)


def test_other_failures_are_recorded_by_type_only() -> None:
    """A bug's message may quote mail, so only its type becomes the stored error."""
    assert describe_error(ValueError("Subject: secret deal")) == "internal error (ValueError)"
    assert describe_error(TransientError("  timed out\n")) == "TransientError: timed out"


def test_progress_is_reported_per_stored_batch(store: Store) -> None:
    """on_progress hears the folder and its running count of fetched messages."""
    mailbox = FakeImap()
    mailbox.deliver(INBOX, *range(1, 8))
    mailbox.deliver(SENT, 8)
    heard: list[tuple[str, int]] = []
    sync_account(store, "dana", "imap", mailbox, on_progress=lambda *args: heard.append(args))
    assert heard == [("INBOX", 3), ("INBOX", 6), ("INBOX", 7), ("Sent", 1)]


class StoreBroken(Exception):
    """The database failing under the writer."""


def failing_on_batch(store: Store, number: int) -> list[int]:
    """Make the store fail on its `number`th batch; returns the list of batches tried."""
    tried: list[int] = []
    apply = store.apply_prepared

    def apply_prepared(*args: Any, **kwargs: Any) -> int:
        tried.append(len(tried) + 1)
        if len(tried) == number:
            raise StoreBroken("disk full")
        return apply(*args, **kwargs)

    store.apply_prepared = apply_prepared  # type: ignore[method-assign]
    return tried


def test_store_failure_ends_the_sync_and_no_later_cursor_is_saved(store: Store) -> None:
    """A batch the writer cannot store fails the sync with that error; nothing after it is
    applied, so the saved cursor never passes a message that is not stored."""
    mailbox = FakeImap(batch_size=2)
    mailbox.deliver(INBOX, *range(1, 21))  # ten batches: the reader outruns a dead writer
    tried = failing_on_batch(store, 2)
    with pytest.raises(StoreBroken):
        sync_account(store, "dana", "imap", mailbox, clock=lambda: T0)
    assert tried == [1, 2]
    (inbox,) = store.folders("dana")
    assert json.loads(inbox.cursor or "") == {"uidvalidity": 1, "uidnext": 3}
    assert store.message_count("dana") == 2
    (status,) = store.account_status()
    assert status.last_error == "internal error (StoreBroken)"
    assert not mailbox.is_open


def test_progress_callback_failure_is_the_sync_failure(store: Store) -> None:
    """An exception raised by on_progress (on the writer thread) fails the sync with it."""
    mailbox = FakeImap()
    mailbox.deliver(INBOX, *range(1, 8))

    def progress(folder: str, count: int) -> None:
        raise StoreBroken(f"{folder} {count}")

    with pytest.raises(StoreBroken, match="INBOX 3"):
        sync_account(store, "dana", "imap", mailbox, on_progress=progress)
    assert store.message_count("dana") == 3


@dataclass
class Interrupting(FakeImap):
    """A mailbox whose changes() is interrupted (Ctrl-C) after `interrupt_after` changes."""

    interrupt_after: int = 0

    def changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        for number, change in enumerate(super().changes(folder, cursor)):
            if number == self.interrupt_after:
                raise KeyboardInterrupt
            yield change


def test_stop_request_ends_the_sync_and_its_writer(store: Store) -> None:
    """A stop request (a BaseException such as KeyboardInterrupt) propagates at once, is
    not recorded as a failure, and leaves no writer thread behind."""
    mailbox = Interrupting(interrupt_after=5)
    mailbox.deliver(INBOX, *range(1, 31))
    with pytest.raises(KeyboardInterrupt):
        sync_account(store, "dana", "imap", mailbox)
    assert not any(thread.name == "relight-store-writer" for thread in threading.enumerate())
    (status,) = store.account_status()
    assert (status.last_error, status.last_sync_at) == (None, None)
    (inbox,) = store.folders("dana")
    stored = store.message_count("dana")
    if inbox.cursor is not None:  # a cursor is only ever saved after its messages
        assert json.loads(inbox.cursor)["uidnext"] - 1 <= stored
    assert not mailbox.is_open


def test_the_reader_runs_ahead_of_the_writer(store: Store) -> None:
    """While a batch is being stored, the sync already reads the next changes from the
    connector, in order: the first batch's transaction waits until two more were read."""
    read = threading.Event()
    mailbox = FakeImap(batch_size=2)
    mailbox.deliver(INBOX, *range(1, 11))
    yielded: list[Change] = []
    changes = mailbox.changes

    def reading(folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        for change in changes(folder, cursor):
            yielded.append(change)
            if len(yielded) == 4:  # the second batch and its checkpoint: read ahead
                read.set()
            yield change

    mailbox.changes = reading  # type: ignore[method-assign]
    apply = store.apply_prepared
    waited: list[bool] = []

    def slow_apply(*args: Any, **kwargs: Any) -> int:
        if not waited:
            waited.append(read.wait(timeout=30))
        return apply(*args, **kwargs)

    store.apply_prepared = slow_apply  # type: ignore[method-assign]
    sync_account(store, "dana", "imap", mailbox)
    assert waited == [True]
    assert store.message_count("dana") == 10


def test_in_memory_sqlite_store_syncs() -> None:
    """An in-memory SQLite store is one database for the sync's writer thread too."""
    with Store.open("sqlite://") as memory:
        mailbox = FakeImap()
        mailbox.deliver(INBOX, 1, 2, 3, 4)
        assert sync_account(memory, "dana", "imap", mailbox).fetched == 4
        assert memory.message_count("dana") == 4
