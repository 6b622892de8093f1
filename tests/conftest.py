"""Shared pytest fixtures, one delimited block per area; edit only your own block."""

# --- store fixtures ---
# Every store test runs against SQLite (a file in tmp_path) and PostgreSQL: one private
# database per test session, a fresh schema per test. Set RELIGHT_TEST_POSTGRES to the
# admin URL of another server; an unreachable server skips those tests, with the reason
# (under CI=true it fails them).
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, make_url

from daemon.store import Store

POSTGRES_ADMIN_URL = os.environ.get(
    "RELIGHT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _libpq(url: URL) -> str:
    """The URL as psycopg.connect takes it (no "+psycopg" driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[URL]:
    """A private PostgreSQL database for the session, dropped when it ends."""
    admin = make_url(POSTGRES_ADMIN_URL)
    try:
        connection = psycopg.connect(_libpq(admin), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL unreachable at {admin.render_as_string()}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)  # CI machines have the server: its absence is a failure
        pytest.skip(message)
    name = f"relight_test_{secrets.token_hex(4)}"
    with connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.set(database=name)
    finally:
        with psycopg.connect(_libpq(admin), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relight.db'}"
    database: URL = request.getfixturevalue("postgres_database")
    schema = f"test_{secrets.token_hex(4)}"
    with psycopg.connect(_libpq(database), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    with_schema = database.update_query_dict({"options": f"-csearch_path={schema}"})
    return with_schema.render_as_string(hide_password=False)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated, empty store on `db_url`, closed after the test."""
    opened = Store.open(db_url)
    try:
        yield opened
    finally:
        opened.close()


# --- end store fixtures ---


# --- dovecot fixtures ---
# A private Dovecot on loopback (tests/support/dovecot.py), one for the whole session. It
# has user dana (read-only tests only) and a pool of spare users: `dovecot_user` hands each
# test that adds, expunges or resets mail a mailbox of its own, far cheaper than a server
# per test. Tests that need another server configuration call `start_dovecot`. Without
# dovecot the tests skip with the reason, or fail under CI=true.
import itertools  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from tests.support.dovecot import DovecotServer, DovecotUnavailable  # noqa: E402

DOVECOT_SPARE_USERS = 80
_spare_users = itertools.count()


def start_dovecot(**options: object) -> DovecotServer:
    """Start a private Dovecot, or skip (fail under CI=true) with the reason."""
    try:
        return DovecotServer.start(**options)  # type: ignore[arg-type]
    except DovecotUnavailable as exc:
        message = f"private Dovecot unavailable: {exc} (install dovecot-imapd: make dovecot)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the session: user dana plus spare users for `dovecot_user`."""
    users = {"dana": "dana-secret"}
    users.update({f"spare{n}": f"spare{n}-secret" for n in range(DOVECOT_SPARE_USERS)})
    server = start_dovecot(users=users)
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class DovecotUser:
    """A user with an empty mailbox on the session server, for one test."""

    server: DovecotServer
    name: str

    @property
    def password(self) -> str:
        return self.server.users[self.name]


@pytest.fixture
def dovecot_user(dovecot: DovecotServer) -> DovecotUser:
    """A mailbox of the test's own on the session server (a spare user never used before)."""
    number = next(_spare_users)
    if number >= DOVECOT_SPARE_USERS:
        pytest.fail(f"more than {DOVECOT_SPARE_USERS} tests want a fresh Dovecot user: raise it")
    return DovecotUser(dovecot, f"spare{number}")


# --- end dovecot fixtures ---
