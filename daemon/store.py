"""The database: what Relight knows of each mailbox, on SQLite or PostgreSQL.

`Store.open(url)` connects and migrates the schema to the newest revision. Every method
runs in its own short transaction and returns plain frozen values, never rows or ORM
objects, so nothing outside this module holds a session.

The sync writes through four methods that mirror `connectors.base.Change`:
`apply_reset`, `apply_fetched`, `apply_present` and `save_cursor`, each one transaction.
They are idempotent: re-applying a batch after a crash changes nothing. The hot path,
`apply_fetched`, is two steps: `prepare_fetched` builds the rows without the database
(so one thread can build them while another stores the batch before), and
`apply_prepared` writes them through `daemon.database.BulkSql` (driver-level multi-row
INSERTs on SQLite, one array per column on PostgreSQL, with ON CONFLICT DO NOTHING),
optionally saving the cursor that follows the batch in the same transaction.

A message lives as long as one of its locations does: whenever locations go (an expunge,
a folder reset, a folder that disappeared), messages left without any are deleted with
their addresses, as the mailbox itself no longer holds them.

On SQLite the store enables WAL (readers never wait for the writer), foreign keys and a
busy timeout, and starts write transactions with BEGIN IMMEDIATE so a second process
(`relight sync` beside `relight run`) waits its turn instead of failing half-way (see
`daemon.database`). A store may be used from several threads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    not_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from connectors.base import FolderRole, MessageFacts, RemoteFolder
from daemon.database import (
    BulkSql,
    StoreError,
    create_store_engine,
    safe_url,
    write_transaction,
)
from daemon.migrations import upgrade_to_head
from daemon.models import (
    ADDRESS_COLUMNS,
    MESSAGE_COLUMNS,
    accounts,
    address_values,
    dedup_key,
    folders,
    message_addresses,
    message_locations,
    message_values,
    messages,
    stored_time,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "AccountStatus",
    "PreparedBatch",
    "Store",
    "StoreError",
    "StoredFolder",
]

DEFAULT_DATABASE_URL = "sqlite:////var/lib/relight/relight.db"

# Values per IN (...) list, far below SQLite's bound-parameter limit; PostgreSQL gets one
# array parameter instead, which can be longer.
_CHUNK_SQLITE = 500
_CHUNK_POSTGRESQL = 10_000
_MAX_ERROR_TEXT = 500

_T = TypeVar("_T")


@dataclass(frozen=True)
class StoredFolder:
    """A folder the store mirrors, with the cursor its connector last checkpointed."""

    id: int
    account_id: int
    name: str
    role: FolderRole
    cursor: str | None
    synced_at: datetime | None


@dataclass(frozen=True)
class PreparedBatch:
    """A fetched batch as rows (`Store.prepare_fetched`), ready for `Store.apply_prepared`:
    the dedup key of each remote id, and by key the message row (first copy wins) and
    its (role, email, name) address rows."""

    folder: StoredFolder
    key_by_remote_id: Mapping[str, str]
    rows: Mapping[str, tuple[Any, ...]]
    addresses: Mapping[str, list[tuple[str, str, str]]]


@dataclass(frozen=True)
class AccountStatus:
    """How an account's syncing went, for `relight status`."""

    name: str
    kind: str
    last_sync_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    message_count: int

    @property
    def failing(self) -> bool:
        """The latest sync failed (the error is newer than the last success)."""
        if self.last_error_at is None:
            return False
        return self.last_success_at is None or self.last_error_at > self.last_success_at


class Store:
    """One database of accounts, folders and messages. Open with `Store.open(url)`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._chunk = _CHUNK_POSTGRESQL if self._dialect == "postgresql" else _CHUNK_SQLITE
        self._bulk = BulkSql(self._dialect)
        self._stored_time = stored_time(self._dialect)

    @classmethod
    def open(cls, url: str = DEFAULT_DATABASE_URL) -> Store:
        """Connect to `url` and migrate its schema to the newest revision."""
        engine = create_store_engine(url)
        try:
            with write_transaction(engine) as connection:
                upgrade_to_head(connection)
        except OperationalError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the database {safe_url(url)}: {exc.orig}") from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for modules that add their own queries."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- accounts -------------------------------------------------------------------

    def ensure_account(self, name: str, kind: str) -> int:
        """The id of the account called `name`, created on first use; `kind` kept current."""
        with self._writing() as connection:
            connection.execute(
                self._insert(accounts).on_conflict_do_nothing(index_elements=["name"]),
                {"name": name, "kind": kind},
            )
            connection.execute(
                update(accounts)
                .where(accounts.c.name == name, accounts.c.kind != kind)
                .values(kind=kind)
            )
            account_id: int = connection.execute(
                select(accounts.c.id).where(accounts.c.name == name)
            ).scalar_one()
        return account_id

    def record_sync_result(
        self, account_name: str, *, finished_at: datetime, error: str | None = None
    ) -> None:
        """Note that a sync of the account ended at `finished_at`, well or with `error`."""
        values: dict[str, Any] = {"last_sync_at": finished_at}
        if error is None:
            values["last_success_at"] = finished_at
        else:
            values["last_error"] = error[:_MAX_ERROR_TEXT]
            values["last_error_at"] = finished_at
        with self._writing() as connection:
            connection.execute(
                update(accounts).where(accounts.c.name == account_name).values(**values)
            )

    def account_status(self) -> list[AccountStatus]:
        """Every account's last sync, last success, last error and message count, by name."""
        counts = (
            select(messages.c.account_id, func.count().label("message_count"))
            .group_by(messages.c.account_id)
            .subquery()
        )
        query = (
            select(accounts, func.coalesce(counts.c.message_count, 0).label("message_count"))
            .outerjoin(counts, counts.c.account_id == accounts.c.id)
            .order_by(accounts.c.name)
        )
        with self._reading() as connection:
            return [
                AccountStatus(
                    name=row.name,
                    kind=row.kind,
                    last_sync_at=row.last_sync_at,
                    last_success_at=row.last_success_at,
                    last_error=row.last_error,
                    last_error_at=row.last_error_at,
                    message_count=row.message_count,
                )
                for row in connection.execute(query)
            ]

    def revisions(self, account_names: Sequence[str]) -> dict[str, int]:
        """Each account's revision, bumped by every write that changes its stored mail;
        -1 for an account the store has never seen."""
        query = select(accounts.c.name, accounts.c.revision).where(
            accounts.c.name.in_(list(account_names))
        )
        with self._reading() as connection:
            known: dict[str, int] = dict(connection.execute(query).all())
        return {name: known.get(name, -1) for name in account_names}

    def message_count(self, account_name: str) -> int:
        """How many distinct messages the store holds for the account (0 if unknown)."""
        query = (
            select(func.count())
            .select_from(messages.join(accounts, accounts.c.id == messages.c.account_id))
            .where(accounts.c.name == account_name)
        )
        with self._reading() as connection:
            return connection.execute(query).scalar_one()

    # --- folders ----------------------------------------------------------------------

    def folders(self, account_name: str) -> list[StoredFolder]:
        """The folders mirrored for the account, in the order they were first seen."""
        query = (
            select(folders)
            .join(accounts, accounts.c.id == folders.c.account_id)
            .where(accounts.c.name == account_name)
            .order_by(folders.c.id)
        )
        with self._reading() as connection:
            return [_stored_folder(row) for row in connection.execute(query)]

    def sync_folders(self, account_id: int, remote: Sequence[RemoteFolder]) -> list[StoredFolder]:
        """Mirror the account's folder list: add new folders, forget the vanished ones.

        Returns the stored form of `remote`, in its order, with each folder's cursor.
        """
        wanted = {folder.name: folder.role for folder in remote}
        with self._writing() as connection:
            stored = {
                row.name: row
                for row in connection.execute(
                    select(folders).where(folders.c.account_id == account_id)
                )
            }
            recast = self._add_folders(connection, account_id, wanted, stored)
            vanished = [row.id for name, row in stored.items() if name not in wanted]
            if vanished:
                connection.execute(delete(folders).where(folders.c.id.in_(vanished)))
                self._delete_account_orphans(connection, account_id)
            if vanished or recast:
                self._bump_revision(connection, account_id)
            rows = connection.execute(
                select(folders).where(
                    folders.c.account_id == account_id, folders.c.name.in_(list(wanted))
                )
            )
            by_name = {row.name: _stored_folder(row) for row in rows}
        return [by_name[name] for name in wanted]

    def save_cursor(self, folder_id: int, cursor: str, *, synced_at: datetime) -> None:
        """Remember how far the folder is synced; everything before it is already stored."""
        with self._writing() as connection:
            self._save_cursor(connection, folder_id, cursor, synced_at)

    # --- applying a connector's changes ---------------------------------------------

    def apply_reset(self, folder: StoredFolder) -> int:
        """Forget the folder's contents and cursor; returns how many locations went."""
        with self._writing() as connection:
            removed = connection.execute(
                delete(message_locations).where(message_locations.c.folder_id == folder.id)
            ).rowcount
            connection.execute(update(folders).where(folders.c.id == folder.id).values(cursor=None))
            self._delete_account_orphans(connection, folder.account_id)
            if removed:
                self._bump_revision(connection, folder.account_id)
        return removed

    def apply_fetched(self, folder: StoredFolder, batch: Sequence[MessageFacts]) -> int:
        """Store a batch of messages seen in the folder; returns how many were new.

        A message already known from another folder (same dedup key) gains a location,
        not a second row. Re-applying the same batch changes nothing.
        """
        return self.apply_prepared(self.prepare_fetched(folder, batch))

    def prepare_fetched(self, folder: StoredFolder, batch: Sequence[MessageFacts]) -> PreparedBatch:
        """The rows of `apply_fetched`, built without the database: a thread may build
        the next batch's rows while another stores this one."""
        key_by_remote_id: dict[str, str] = {}
        facts_by_key: dict[str, MessageFacts] = {}
        for facts in batch:
            key = dedup_key(facts)
            key_by_remote_id[facts.remote_id] = key
            facts_by_key.setdefault(key, facts)
        account_id, time = folder.account_id, self._stored_time
        return PreparedBatch(
            folder=folder,
            key_by_remote_id=key_by_remote_id,
            rows={
                key: message_values(account_id, key, facts, time)
                for key, facts in facts_by_key.items()
            },
            addresses={key: address_values(facts) for key, facts in facts_by_key.items()},
        )

    def apply_prepared(
        self,
        prepared: PreparedBatch,
        *,
        cursor: str | None = None,
        synced_at: datetime | None = None,
    ) -> int:
        """`apply_fetched` of a prepared batch; returns how many messages were new. With
        `cursor`, the folder's cursor is saved too (as `save_cursor`), in the same
        transaction, after the messages."""
        folder, rows = prepared.folder, prepared.rows
        if cursor is not None and synced_at is None:
            raise ValueError("a cursor is saved with its synced_at")
        account_id = folder.account_id
        with self._writing() as connection:
            new_ids: dict[str, int] = {}
            if rows:
                # Looking first spares inserting rows for re-fetched messages.
                row_ids = self._message_row_ids(connection, account_id, list(rows))
                unknown = [key for key in rows if key not in row_ids]
                new_ids = self._insert_messages(
                    connection, account_id, [rows[key] for key in unknown], unknown
                )
                self._bulk.insert(
                    connection,
                    message_addresses,
                    ADDRESS_COLUMNS,
                    [
                        (row_id, *address)
                        for key, row_id in new_ids.items()
                        for address in prepared.addresses[key]
                    ],
                )
                row_ids |= new_ids
                if len(new_ids) < len(unknown):  # stored meanwhile by another writer
                    raced = [key for key in unknown if key not in new_ids]
                    row_ids |= self._message_row_ids(connection, account_id, raced)
                self._place(
                    connection,
                    folder,
                    {
                        remote_id: row_ids[key]
                        for remote_id, key in prepared.key_by_remote_id.items()
                    },
                )
                self._bump_revision(connection, account_id)
            if cursor is not None:
                self._save_cursor(connection, folder.id, cursor, synced_at)
        return len(new_ids)

    def apply_present(self, folder: StoredFolder, remote_ids: Collection[str]) -> int:
        """Drop the folder's messages not among `remote_ids`; returns how many went."""
        with self._writing() as connection:
            stored = dict(
                connection.execute(
                    select(message_locations.c.remote_id, message_locations.c.message_id).where(
                        message_locations.c.folder_id == folder.id
                    )
                ).all()
            )
            gone = [remote_id for remote_id in stored if remote_id not in remote_ids]
            for chunk in self._chunks(gone):
                connection.execute(
                    delete(message_locations).where(
                        message_locations.c.folder_id == folder.id,
                        self._among(message_locations.c.remote_id, chunk),
                    )
                )
            self._delete_orphans(connection, {stored[remote_id] for remote_id in gone})
            if gone:
                self._bump_revision(connection, folder.account_id)
        return len(gone)

    # --- helpers ----------------------------------------------------------------------

    def _writing(self) -> AbstractContextManager[Connection]:
        return write_transaction(self._engine)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._engine.connect() as connection:
            yield connection

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _chunks(self, items: Sequence[_T]) -> Iterator[Sequence[_T]]:
        for start in range(0, len(items), self._chunk):
            yield items[start : start + self._chunk]

    def _among(self, column: ColumnElement[_T], values: Sequence[_T]) -> ColumnElement[bool]:
        """`column IN values`; on PostgreSQL one array parameter, not one per value."""
        if self._dialect == "postgresql":
            return column == any_(
                bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
            )
        return column.in_(values)

    def _add_folders(
        self,
        connection: Connection,
        account_id: int,
        wanted: Mapping[str, FolderRole],
        stored: Mapping[str, Any],
    ) -> bool:
        """Add the new folders and update changed roles; True when a role changed (the
        messages of that folder now count differently)."""
        new = [
            {"account_id": account_id, "name": name, "role": role.value}
            for name, role in wanted.items()
            if name not in stored
        ]
        if new:
            connection.execute(insert(folders), new)
        recast = False
        for name, role in wanted.items():
            if name in stored and stored[name].role != role.value:
                recast = True
                connection.execute(
                    update(folders).where(folders.c.id == stored[name].id).values(role=role.value)
                )
        return recast

    def _bump_revision(self, connection: Connection, account_id: int) -> None:
        """The account's stored mail changed: verdicts evaluated before are stale."""
        connection.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(revision=accounts.c.revision + 1)
        )

    def _save_cursor(
        self, connection: Connection, folder_id: int, cursor: str, synced_at: datetime | None
    ) -> None:
        connection.execute(
            update(folders)
            .where(folders.c.id == folder_id)
            .values(cursor=cursor, synced_at=synced_at)
        )

    def _insert_messages(
        self,
        connection: Connection,
        account_id: int,
        rows: Sequence[tuple[Any, ...]],
        keys: Sequence[str],
    ) -> dict[str, int]:
        """Insert the message rows of `keys` (not stored at the first look); the row id of
        each row inserted here, by key."""
        if self._bulk.postgres:
            return self._bulk.insert_returning(
                connection,
                messages,
                MESSAGE_COLUMNS,
                rows,
                skip_conflicts_on=("account_id", "dedup_key"),
                returning=("dedup_key", "id"),
            )
        self._bulk.insert(
            connection,
            messages,
            MESSAGE_COLUMNS,
            rows,
            skip_conflicts_on=("account_id", "dedup_key"),
        )
        # BEGIN IMMEDIATE kept other writers out since the first look: every one of the
        # keys stored now was stored just above.
        return self._message_row_ids(connection, account_id, keys)

    def _message_row_ids(
        self, connection: Connection, account_id: int, keys: Sequence[str]
    ) -> dict[str, int]:
        return self._bulk.lookup(
            connection, messages, "dedup_key", "id", where=("account_id", account_id), keys=keys
        )

    def _place(
        self, connection: Connection, folder: StoredFolder, wanted: Mapping[str, int]
    ) -> None:
        """Point each remote id of the folder at its message row.

        A remote id already pointing elsewhere (a server that reused an id without a
        reset) is moved, and the message it pointed at goes if nothing else holds it.
        """
        current: dict[str, int] = self._bulk.lookup(
            connection,
            message_locations,
            "remote_id",
            "message_id",
            where=("folder_id", folder.id),
            keys=list(wanted),
        )
        moved = [remote_id for remote_id, row_id in current.items() if wanted[remote_id] != row_id]
        for chunk in self._chunks(moved):
            connection.execute(
                delete(message_locations).where(
                    message_locations.c.folder_id == folder.id,
                    self._among(message_locations.c.remote_id, chunk),
                )
            )
        new = [
            (folder.id, remote_id, row_id)
            for remote_id, row_id in wanted.items()
            if current.get(remote_id) != row_id
        ]
        self._bulk.insert(
            connection, message_locations, ("folder_id", "remote_id", "message_id"), new
        )
        self._delete_orphans(connection, {current[remote_id] for remote_id in moved})

    def _delete_orphans(self, connection: Connection, row_ids: Collection[int]) -> None:
        """Delete those of the messages that no folder holds any more."""
        for chunk in self._chunks(list(row_ids)):
            connection.execute(
                delete(messages).where(self._among(messages.c.id, chunk), _has_no_location())
            )

    def _delete_account_orphans(self, connection: Connection, account_id: int) -> None:
        connection.execute(
            delete(messages).where(messages.c.account_id == account_id, _has_no_location())
        )


def _has_no_location() -> Any:
    return not_(exists().where(message_locations.c.message_id == messages.c.id))


def _stored_folder(row: Any) -> StoredFolder:
    return StoredFolder(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        role=FolderRole(row.role),
        cursor=row.cursor,
        synced_at=row.synced_at,
    )
