"""Engines for the store, and the sync's hot statements as driver-level SQL.

`create_store_engine(url)` makes the SQLAlchemy engine `daemon.store` works through: on
SQLite with the pragmas below on every connection and transactions the store begins
itself (`write_transaction` takes the write lock at BEGIN).

`BulkSql` is the fast path of `Store.apply_fetched`. A first sync writes tens of
thousands of rows a minute; SQLAlchemy Core spends more time building, checking and
converting each row's parameters than the database spends storing it. So the few
statements of that path are plain SQL text, built from the models' own column names, and
fed plain tuples whose values are already what the driver stores (times as
`models.stored_time` makes them): on SQLite multi-row INSERTs of a few fixed shapes, on
PostgreSQL one array per column (INSERT ... SELECT FROM unnest), a single round trip
whatever the batch size. Everything else in the store stays SQLAlchemy Core.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, make_url
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

__all__ = [
    "BulkSql",
    "StoreError",
    "create_store_engine",
    "safe_url",
    "write_transaction",
]

_SUPPORTED_BACKENDS = frozenset({"sqlite", "postgresql"})
# journal_mode=WAL with synchronous=NORMAL: a commit appends to the WAL without waiting
# for the disk (only checkpoints fsync), much cheaper than FULL for the sync's hundreds of
# transactions. WAL keeps the database consistent through any crash, and a process crash
# loses nothing committed; a power cut may lose the newest commits, but only a suffix of
# them (the WAL is replayed in order, up to the first frame not fully written). That is
# safe for the sync: a cursor is saved in the transaction that stored the messages
# before it, or in a later one, so a cursor that survives has all its messages with it,
# and a lost cursor only means those messages are fetched again, which the idempotent
# upserts absorb.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)
_WRITE_OPTION = "relight_write"
# Rows per INSERT and keys per lookup on SQLite (see `BulkSql`): a connector's usual
# batch of 1,000 messages is one statement each.
_SQLITE_ROWS = 1000
_SQLITE_KEYS = 1000


class StoreError(Exception):
    """The database cannot be used: unreachable, refused, or not a supported kind."""


def create_store_engine(url: str) -> Engine:
    """The engine for `url` (sqlite or postgresql+psycopg); StoreError for anything else."""
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {safe_url(url)}") from exc
    if backend not in _SUPPORTED_BACKENDS:
        raise StoreError(f"unsupported database {backend!r}: use sqlite or postgresql+psycopg")
    # Errors never quote the statement's parameters: they are mail (subjects, addresses)
    # and would end in the logs.
    if backend == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"prepare_threshold": None},
            hide_parameters=True,
        )
    if parsed.database in (None, "", ":memory:"):
        # One connection for every thread: the sync writes on a thread of its own, and a
        # private in-memory database per thread would be empty there.
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
        )
    else:
        engine = create_engine(url, hide_parameters=True)
    _configure_sqlite(engine)
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN."""
    with engine.connect() as connection:
        connection.execution_options(**{_WRITE_OPTION: True})
        with connection.begin():
            yield connection


def _configure_sqlite(engine: Engine) -> None:
    """Pragmas on every connection, and transactions the store begins itself.

    The sqlite3 module's own implicit BEGIN comes too late (before the first write, after
    the reads) and is always DEFERRED; taking it over gives real transactions and lets
    writers take the write lock up front.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writing = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def safe_url(url: str) -> str:
    """The URL with its password masked, fit for an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


class BulkSql:
    """Bulk inserts and key lookups as driver-level SQL on one dialect (see the module
    docstring). Table and column names come only from `daemon.models`, never from data;
    values always travel as parameters.

    On SQLite a batch is a few statements, never one per row, and a lookup returns one
    JSON row: the sqlite3 module releases the GIL around each step of a statement and
    must get it back after, so a statement per row (executemany) or a row per result,
    run beside a thread busy in Python (the sync's reader), waits a switch interval
    (5 ms) at almost every row. The statements come in a few fixed shapes, as sqlite3
    keeps up to 128 prepared statements and a statement of a thousand rows takes 1.5 MB:
    inserts of `_SQLITE_ROWS` rows, then of powers of two for the rest; lookups of
    `_SQLITE_KEYS` keys, the last one padded with NULLs (which match nothing).
    """

    def __init__(self, dialect: str) -> None:
        if dialect not in _SUPPORTED_BACKENDS:
            raise ValueError(f"unsupported dialect {dialect!r}")
        self.postgres = dialect == "postgresql"
        self._sqlite_limit: int | None = None
        self._sqlite_json: bool | None = None

    def insert(
        self,
        connection: Connection,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        skip_conflicts_on: Sequence[str] = (),
    ) -> None:
        """Insert `rows` (values in `columns` order); with `skip_conflicts_on`, rows that
        would break that unique constraint are skipped (ON CONFLICT DO NOTHING)."""
        if not rows:
            return
        if self.postgres:
            statement = self._unnest_insert(table, columns, skip_conflicts_on)
            connection.exec_driver_sql(statement, _arrays(rows))
            return
        head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "  # noqa: S608
        one = f"({', '.join('?' * len(columns))})"
        most = max(1, min(_SQLITE_ROWS, self._limit(connection) // len(columns)))
        start = 0
        for size in _statement_sizes(len(rows), most):
            chunk = rows[start : start + size]
            start += size
            statement = head + ", ".join([one] * size) + _conflict(skip_conflicts_on)
            connection.exec_driver_sql(statement, tuple(value for row in chunk for value in row))

    def insert_returning(
        self,
        connection: Connection,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        skip_conflicts_on: Sequence[str],
        returning: tuple[str, str],
    ) -> dict[Any, Any]:
        """Like `insert`, and {key: value} of the two `returning` columns of each row this
        statement inserted (not of those skipped, whoever stored them). PostgreSQL only:
        on SQLite, RETURNING gives a row per step (see the class docstring)."""
        if not self.postgres:
            raise NotImplementedError("insert_returning is for PostgreSQL")
        if not rows:
            return {}
        statement = self._unnest_insert(table, columns, skip_conflicts_on)
        statement += f" RETURNING {returning[0]}, {returning[1]}"
        return dict(connection.exec_driver_sql(statement, _arrays(rows)).all())

    def lookup(
        self,
        connection: Connection,
        table: Table,
        key: str,
        value: str,
        *,
        where: tuple[str, Any],
        keys: Sequence[Any],
    ) -> dict[Any, Any]:
        """{key: value} of the rows of `table` where `where[0] = where[1]` and `key` is
        among `keys` (those not found are left out)."""
        found: dict[Any, Any] = {}
        if not keys:
            return found
        column, equals = where
        condition = f"FROM {table.name} WHERE {column} = "
        if self.postgres:
            statement = (
                f"SELECT {key}, {value} {condition}%s"
                f" AND {key} = ANY(%s::{_postgres_type(table, key)}[])"
            )
            found.update(connection.exec_driver_sql(statement, (equals, list(keys))).all())
            return found
        as_json = self._has_json(connection)
        if as_json:
            select = f"SELECT json_group_array(json_array({key}, {value})) {condition}"
        else:  # an SQLite built without JSON: a row per result after all
            select = f"SELECT {key}, {value} {condition}"
        size = min(_SQLITE_KEYS, self._limit(connection) - 1)
        statement = f"{select}? AND {key} IN ({', '.join('?' * size)})"
        for start in range(0, len(keys), size):
            chunk = list(keys[start : start + size])
            chunk += [None] * (size - len(chunk))
            result = connection.exec_driver_sql(statement, (equals, *chunk))
            found.update(json.loads(result.scalar_one()) if as_json else result.all())
        return found

    def _limit(self, connection: Connection) -> int:
        """SQLite's bound-parameter limit (999 before 3.32, usually 32,766 since)."""
        if self._sqlite_limit is None:
            driver: Any = connection.connection.driver_connection
            self._sqlite_limit = int(driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        return self._sqlite_limit

    def _has_json(self, connection: Connection) -> bool:
        """Whether this SQLite has the JSON functions (built in since 3.38)."""
        if self._sqlite_json is None:
            driver: Any = connection.connection.driver_connection
            try:
                driver.execute("SELECT json_group_array(json_array(1, 2))").fetchall()
            except sqlite3.OperationalError:
                self._sqlite_json = False
            else:
                self._sqlite_json = True
        return self._sqlite_json

    @staticmethod
    def _unnest_insert(
        table: Table, columns: Sequence[str], skip_conflicts_on: Sequence[str]
    ) -> str:
        arrays = ", ".join(f"%s::{_postgres_type(table, name)}[]" for name in columns)
        return (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT * FROM unnest({arrays}){_conflict(skip_conflicts_on)}"
        )


def _statement_sizes(rows: int, most: int) -> list[int]:
    """`rows` split into statements of `most` rows, then of powers of two: 1100 rows at
    most 1000 a statement are 1000, 64, 32 and 4."""
    sizes = [most] * (rows // most)
    rest = rows % most
    bit = 1 << rest.bit_length()
    while rest:
        bit >>= 1
        if rest & bit:
            sizes.append(bit)
            rest -= bit
    return sizes


def _conflict(columns: Sequence[str]) -> str:
    return f" ON CONFLICT ({', '.join(columns)}) DO NOTHING" if columns else ""


def _arrays(rows: Sequence[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """The rows as one list per column, which psycopg sends as PostgreSQL arrays."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def _postgres_type(table: Table, column: str) -> str:
    return str(table.c[column].type.compile(dialect=_POSTGRES_DIALECT))


_POSTGRES_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
