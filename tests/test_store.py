"""The store: schema migrations, message rows and locations, accounts, stored times."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Table, create_engine, event, inspect, select
from sqlalchemy.exc import StatementError

from connectors.base import Address, DeliveryReport, FolderRole, MessageFacts, RemoteFolder
from daemon.migrations import HEAD_REVISION, alembic_config
from daemon.models import (
    MESSAGE_COLUMNS,
    _cleaned_message_values,
    accounts,
    dedup_key,
    message_addresses,
    message_locations,
    message_time,
    message_values,
    messages,
    metadata,
    stored_time,
)
from daemon.store import Store, StoredFolder, StoreError

T0 = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
INBOX = RemoteFolder("INBOX", FolderRole.INBOX)
SENT = RemoteFolder("Sent", FolderRole.SENT)
DRAFTS = RemoteFolder("Drafts", FolderRole.DRAFTS)


def message(
    remote_id: str,
    message_id: str | None = "m1@prospect.example",
    *,
    sender: str = "ann@prospect.example",
    to: tuple[str, ...] = ("dana@acme.example",),
    date: datetime | None = T0,
    subject: str = "Pricing",
) -> MessageFacts:
    return MessageFacts(
        remote_id=remote_id,
        message_id=message_id,
        sender=Address(sender, "Ann Example"),
        to=tuple(Address(email) for email in to),
        date=date,
        received_at=T0,
        subject=subject,
    )


def folders_of(store: Store, *remote: RemoteFolder) -> dict[str, StoredFolder]:
    account_id = store.ensure_account("dana", "imap")
    return {folder.name: folder for folder in store.sync_folders(account_id, list(remote))}


def locations(store: Store) -> set[tuple[str, str, str]]:
    """(dedup key, folder name, remote id) of every stored location."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                messages.c.dedup_key, message_locations.c.folder_id, message_locations.c.remote_id
            ).join(messages, messages.c.id == message_locations.c.message_id)
        ).all()
    names = {folder.id: folder.name for folder in store.folders("dana")}
    return {(key, names[folder_id], remote_id) for key, folder_id, remote_id in rows}


def count(store: Store, table: Table) -> int:
    with store.engine.connect() as connection:
        return len(connection.execute(select(table)).all())


def test_migrations_create_every_table_from_empty(store: Store) -> None:
    """Opening an empty database creates every table of the models, through Alembic."""
    tables = set(inspect(store.engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_upgrade_head_twice_is_a_no_op(db_url: str) -> None:
    """Opening a migrated database again keeps its data and its revision."""
    with Store.open(db_url) as first:
        first.ensure_account("dana", "imap")
    with Store.open(db_url) as second, second.engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        assert revision == HEAD_REVISION
        assert [status.name for status in second.account_status()] == ["dana"]


def test_head_revision_constant_is_alembics_head() -> None:
    """`HEAD_REVISION`, which lets a migrated store open without Alembic, is the newest
    migration Alembic knows."""
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD_REVISION]


def test_a_store_of_the_first_schema_is_upgraded_with_its_data(tmp_path: Path) -> None:
    """A database left at revision 0001 by an older release opens at the head, with its
    accounts kept and their revisions starting at 0."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql("INSERT INTO accounts (name, kind) VALUES ('dana', 'imap')")
    engine.dispose()
    with Store.open(url) as store:
        assert [status.name for status in store.account_status()] == ["dana"]
        assert store.revisions(["dana", "lee"]) == {"dana": 0, "lee": -1}


def test_migrated_schema_matches_the_models(store: Store) -> None:
    """The migrations build exactly the schema daemon.models describes."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_same_message_in_sent_and_inbox_is_one_message_with_two_locations(store: Store) -> None:
    """A Message-ID seen in two folders is one message row with a location in each."""
    stored = folders_of(store, INBOX, SENT)
    assert store.apply_fetched(stored["Sent"], [message("7")]) == 1
    assert store.apply_fetched(stored["INBOX"], [message("42")]) == 0
    assert store.message_count("dana") == 1
    assert locations(store) == {
        ("m1@prospect.example", "Sent", "7"),
        ("m1@prospect.example", "INBOX", "42"),
    }


def test_duplicate_copies_in_one_folder_are_one_message(store: Store) -> None:
    """Two remote ids carrying one Message-ID in a folder are two locations of one row."""
    inbox = folders_of(store, INBOX)["INBOX"]
    assert store.apply_fetched(inbox, [message("1", "a@x"), message("2", "a@x")]) == 1
    assert locations(store) == {("a@x", "INBOX", "1"), ("a@x", "INBOX", "2")}
    store.apply_present(inbox, frozenset({"2"}))
    assert store.message_count("dana") == 1


def test_reapplying_a_fetched_batch_is_idempotent(store: Store) -> None:
    """Applying the same batch again adds no message, location or address."""
    inbox = folders_of(store, INBOX)["INBOX"]
    batch = [message("1", "a@x", to=("dana@acme.example", "lee@acme.example")), message("2", "b@x")]
    store.apply_fetched(inbox, batch)
    before = (locations(store), count(store, messages), count(store, message_addresses))
    assert store.apply_fetched(inbox, batch) == 0
    assert (locations(store), count(store, messages), count(store, message_addresses)) == before
    assert before[1:] == (2, 3)


def test_duplicate_addresses_in_one_message_are_stored_once(store: Store) -> None:
    """An address repeated in To is one address row, keeping a display name."""
    facts = MessageFacts(
        remote_id="1",
        message_id="a@x",
        to=(Address("ann@prospect.example"), Address("ann@prospect.example", "Ann")),
    )
    store.apply_fetched(folders_of(store, SENT)["Sent"], [facts])
    with store.engine.connect() as connection:
        rows = connection.execute(select(message_addresses.c.email, message_addresses.c.name))
        assert rows.all() == [("ann@prospect.example", "Ann")]


def test_reset_drops_the_folders_messages_and_cursor(store: Store) -> None:
    """A Reset empties the folder and its cursor; messages also elsewhere survive."""
    stored = folders_of(store, INBOX, SENT)
    store.apply_fetched(stored["INBOX"], [message("1", "a@x"), message("2", "shared@x")])
    store.apply_fetched(stored["Sent"], [message("9", "shared@x")])
    store.save_cursor(stored["INBOX"].id, "v1:3", synced_at=T0)
    assert store.apply_reset(stored["INBOX"]) == 2
    assert locations(store) == {("shared@x", "Sent", "9")}
    assert count(store, messages) == 1
    assert {folder.name: folder.cursor for folder in store.folders("dana")}["INBOX"] is None


def test_present_removes_expunged_locations_and_orphans(store: Store) -> None:
    """Present drops the folder's other remote ids, their messages and their addresses."""
    stored = folders_of(store, INBOX, SENT)
    store.apply_fetched(
        stored["INBOX"], [message("1", "a@x"), message("2", "b@x"), message("3", "c@x")]
    )
    store.apply_fetched(stored["Sent"], [message("5", "b@x")])
    assert store.apply_present(stored["INBOX"], frozenset({"1"})) == 2
    assert locations(store) == {("a@x", "INBOX", "1"), ("b@x", "Sent", "5")}
    assert count(store, messages) == 2
    assert count(store, message_addresses) == 2


def test_present_with_everything_still_there_removes_nothing(store: Store) -> None:
    """Present naming every stored remote id changes nothing."""
    inbox = folders_of(store, INBOX)["INBOX"]
    store.apply_fetched(inbox, [message("1", "a@x"), message("2", "b@x")])
    assert store.apply_present(inbox, frozenset({"1", "2", "3"})) == 0
    assert count(store, messages) == 2


def test_reused_remote_id_moves_to_the_new_message(store: Store) -> None:
    """A remote id fetched again with other content points at the new message only."""
    inbox = folders_of(store, INBOX)["INBOX"]
    store.apply_fetched(inbox, [message("1", "old@x")])
    store.apply_fetched(inbox, [message("1", "new@x")])
    assert locations(store) == {("new@x", "INBOX", "1")}
    assert count(store, messages) == 1


def test_vanished_folder_is_forgotten_with_its_messages(store: Store) -> None:
    """A folder the connector no longer lists is dropped with the messages only it held."""
    stored = folders_of(store, INBOX, SENT)
    store.apply_fetched(stored["Sent"], [message("1", "a@x")])
    assert [folder.name for folder in folders_of(store, INBOX).values()] == ["INBOX"]
    assert [folder.name for folder in store.folders("dana")] == ["INBOX"]
    assert count(store, messages) == 0


def test_message_without_message_id_gets_a_stable_dedup_key(store: Store) -> None:
    """No Message-ID: a sha256 key of From/Date/Subject/To, the same on every re-sync."""
    first = message("1", None, to=("b@x", "a@x"))
    again = message("1", None, to=("a@x", "b@x"))
    other = message("2", None, subject="Another subject")
    assert dedup_key(first) == dedup_key(again)
    assert dedup_key(first).startswith("sha256:")
    assert dedup_key(first) != dedup_key(other)
    inbox = folders_of(store, INBOX)["INBOX"]
    store.apply_fetched(inbox, [first, other])
    store.apply_fetched(inbox, [again])
    assert count(store, messages) == 2


@pytest.mark.parametrize(
    ("date", "received", "expected"),
    [
        (T0, T0 + timedelta(hours=3), T0),
        (T0 + timedelta(hours=23), T0, T0 + timedelta(hours=23)),
        (T0 + timedelta(days=2), T0, T0),
        (None, T0, T0),
        (T0, None, T0),
        (None, None, None),
        (T0 - timedelta(days=30), T0, T0 - timedelta(days=30)),
    ],
)
def test_at_is_the_date_unless_missing_or_more_than_a_day_late(
    date: datetime | None, received: datetime | None, expected: datetime | None
) -> None:
    """`at` is the Date header, else (missing, or over a day after arrival) the arrival."""
    assert message_time(date, received) == expected


def test_message_times_come_back_aware_in_utc(store: Store) -> None:
    """A Date in +02:00 is stored as the same instant and read back aware, in UTC."""
    berlin = timezone(timedelta(hours=2))
    facts = message("1", "a@x", date=datetime(2024, 3, 4, 11, 30, tzinfo=berlin))
    store.apply_fetched(folders_of(store, INBOX)["INBOX"], [facts])
    with store.engine.connect() as connection:
        date, at = connection.execute(select(messages.c.date, messages.c.at)).one()
    assert date == at == T0
    assert date.tzinfo is UTC
    assert at.tzinfo is UTC


def test_account_times_come_back_aware_and_failures_are_flagged(store: Store) -> None:
    """Sync results round-trip as aware UTC times; an error newer than success is failing."""
    store.ensure_account("dana", "imap")
    store.record_sync_result("dana", finished_at=T0.astimezone(timezone(timedelta(hours=-5))))
    store.record_sync_result("dana", finished_at=T0 + timedelta(hours=1), error="x" * 900)
    (status,) = store.account_status()
    assert status.last_success_at == T0
    assert status.last_success_at is not None
    assert status.last_success_at.tzinfo is UTC
    assert status.last_sync_at == status.last_error_at == T0 + timedelta(hours=1)
    assert status.last_error == "x" * 500
    assert status.failing
    store.record_sync_result("dana", finished_at=T0 + timedelta(hours=2))
    assert not store.account_status()[0].failing


def test_naive_datetimes_are_refused(store: Store) -> None:
    """The store refuses a time without a zone rather than guess one."""
    store.ensure_account("dana", "imap")
    with pytest.raises(StatementError, match="naive datetime"):
        store.record_sync_result("dana", finished_at=datetime(2024, 3, 4, 9, 30))


def test_account_status_counts_messages_per_account(store: Store) -> None:
    """account_status lists every account by name with its message count."""
    store.ensure_account("lee", "graph")
    store.apply_fetched(folders_of(store, INBOX)["INBOX"], [message("1", "a@x")])
    assert [(s.name, s.kind, s.message_count) for s in store.account_status()] == [
        ("dana", "imap", 1),
        ("lee", "graph", 0),
    ]
    assert store.message_count("lee") == 0
    assert store.message_count("nobody") == 0


def test_ensure_account_is_idempotent_and_keeps_kind_current(store: Store) -> None:
    """The same name gives the same id; a changed kind is updated."""
    first = store.ensure_account("dana", "imap")
    assert store.ensure_account("dana", "maildir") == first
    assert [s.kind for s in store.account_status()] == ["maildir"]


def test_text_no_database_can_hold_is_cleaned(store: Store) -> None:
    """NUL characters and lone surrogates from broken headers are replaced, not fatal."""
    facts = MessageFacts(
        remote_id="1",
        message_id="a@x",
        subject="Re: \x00 offer \udcff",
        report=DeliveryReport("delivery-status", "failed", ("ann@prospect.example",)),
    )
    store.apply_fetched(folders_of(store, INBOX)["INBOX"], [facts])
    with store.engine.connect() as connection:
        subject, action = connection.execute(
            select(messages.c.subject, messages.c.report_action)
        ).one()
    assert subject == "Re: \ufffd offer ?"
    assert action == "failed"


def test_huge_message_id_is_hashed_into_an_indexable_key(store: Store) -> None:
    """A Message-ID too long for an index gets a hashed dedup key instead of failing."""
    facts = message("1", "x" * 5000 + "@example")
    store.apply_fetched(folders_of(store, INBOX)["INBOX"], [facts, message("2", "y" * 5000)])
    assert count(store, messages) == 2
    assert dedup_key(facts).startswith("sha256:")


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    """SQLite connections use WAL, enforce foreign keys and wait for a busy writer."""
    store = Store.open(f"sqlite:///{tmp_path / 'relight.db'}")
    with store, store.engine.connect() as connection:
        pragmas = [
            connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]
    assert pragmas == ["wal", 1, 30000]


def test_unsupported_or_unreachable_databases_raise_store_error() -> None:
    """A database the store cannot use is one StoreError naming it, password masked."""
    with pytest.raises(StoreError, match="unsupported"):
        Store.open("mysql://user@localhost/relight")
    with pytest.raises(StoreError, match=r"cannot open the database .*\*\*\*"):
        Store.open("postgresql+psycopg://user:secret@127.0.0.1:1/relight?connect_timeout=2")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 3, 4, 11, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 12, 31, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=-5))),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
    ],
)
def test_bulk_rows_store_times_as_sqlalchemy_does(store: Store, moment: datetime) -> None:
    """Times written by the sync's bulk path are stored exactly as SQLAlchemy stores them
    (on SQLite the same text), so they read back and compare the same."""
    folder = folders_of(store, INBOX)["INBOX"]
    store.apply_fetched(folder, [message("1", "a@x", date=moment)])
    store.record_sync_result("dana", finished_at=moment)
    with store.engine.connect() as connection:
        raw = connection.exec_driver_sql("SELECT date, received_at FROM messages").one()
        written = connection.exec_driver_sql("SELECT last_sync_at FROM accounts").scalar_one()
        date, last_sync_at = connection.execute(
            select(messages.c.date, accounts.c.last_sync_at).select_from(
                messages.join(accounts, accounts.c.id == messages.c.account_id)
            )
        ).one()
    assert raw[0] == written
    assert date == last_sync_at == moment
    assert date.tzinfo is UTC


def test_batches_past_the_sqlite_parameter_limit_are_split(tmp_path: Path) -> None:
    """A batch with more values than SQLite binds in one statement goes in several."""
    store = Store.open(f"sqlite:///{tmp_path / 'relight.db'}")

    @event.listens_for(store.engine, "connect")
    def _low_limit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 50)

    store.engine.dispose()  # new connections, with the low limit
    with store:
        inbox = folders_of(store, INBOX)["INBOX"]
        batch = [
            message(str(n), f"m{n}@x", to=("a@x", f"b{n}@x"), subject=f"s{n}") for n in range(1, 41)
        ]
        assert store.apply_fetched(inbox, batch) == 40
        assert store.apply_fetched(inbox, batch) == 0
        assert (count(store, messages), count(store, message_addresses)) == (40, 80)
        assert len(locations(store)) == 40


def test_prepared_batch_is_stored_with_its_cursor(store: Store) -> None:
    """A prepared batch and the cursor after it are saved by one call, in one transaction."""
    inbox = folders_of(store, INBOX)["INBOX"]
    prepared = store.prepare_fetched(inbox, [message("1", "a@x"), message("2", "b@x")])
    assert store.apply_prepared(prepared, cursor="after-2", synced_at=T0) == 2
    assert [(f.cursor, f.synced_at) for f in store.folders("dana")] == [("after-2", T0)]
    assert count(store, messages) == 2
    with pytest.raises(ValueError, match="synced_at"):
        store.apply_prepared(prepared, cursor="again")


def test_fast_and_cleaning_row_builders_agree_on_storable_text() -> None:
    """A message row is the same whether built by the fast path (text already storable)
    or field by field through the cleaning: caps, joins, JSON and times alike."""
    long = "x" * 1200
    variants = [
        message("1", "a@x"),
        message("2", None, subject=long, sender="b@x", date=None),
        MessageFacts(
            remote_id="3",
            message_id="m" * 600,
            in_reply_to="r" * 600,
            references=("<r1@x>", "r2@x"),
            sender=Address("ann@prospect.example", "Ann " + long),
            date=T0 + timedelta(days=3),
            received_at=T0,
            subject="Grüße",
            thread_id="t" * 600,
            headers=(("content-type", "multipart/report"), ("list-id", "<l.example>")),
            size=42,
            excerpt="Danke, passt.",
            report=DeliveryReport("delivery-status", "f" * 50, ("a@x", "b@x")),
            defects=("date: missing",),
        ),
        MessageFacts(remote_id="4", report=DeliveryReport("disposition-notification")),
    ]
    for dialect in ("sqlite", "postgresql"):
        time = stored_time(dialect)
        for facts in variants:
            key = dedup_key(facts)
            row = message_values(7, key, facts, time)
            assert row == _cleaned_message_values(7, key, facts, time)
            assert len(row) == len(MESSAGE_COLUMNS)


def test_sqlite_statements_come_in_a_few_shapes(tmp_path: Path) -> None:
    """Batches of every size reuse a few statement shapes (sqlite3 keeps each prepared
    statement, a big one takes megabytes): memory stays flat however long the sync."""
    store = Store.open(f"sqlite:///{tmp_path / 'relight.db'}")
    shapes: set[str] = set()

    @event.listens_for(store.engine, "before_cursor_execute")
    def _seen(*args: Any) -> None:
        statement = args[2]
        if statement.startswith(("INSERT INTO messages", "SELECT json_group_array")):
            shapes.add(statement)

    with store:
        inbox = folders_of(store, INBOX)["INBOX"]
        number = 0
        for size in range(1, 61):
            batch = [message(str(number + n), f"m{number + n}@x") for n in range(size)]
            number += size
            store.apply_fetched(inbox, batch)
        assert count(store, messages) == number
    inserts = [shape for shape in shapes if shape.startswith("INSERT")]
    assert len(inserts) <= 6  # 1, 2, 4, 8, 16, 32 rows
    assert len(shapes) - len(inserts) <= 2  # one lookup shape per table


def test_database_errors_do_not_quote_the_parameters(store: Store) -> None:
    """A failing statement's error hides its parameters (subjects, addresses). The
    server's own detail may still quote a row, so the daemon never logs these texts."""
    with pytest.raises(StatementError) as caught, store.engine.begin() as connection:
        connection.execute(
            messages.insert().values(account_id=None, dedup_key="Secret deal with ACME")
        )
    assert "SQL parameters hidden" in str(caught.value)
