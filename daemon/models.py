"""The store's tables, and how one `MessageFacts` becomes rows.

The tables are SQLAlchemy Core, not ORM classes: the sync inserts tens of thousands of
plain dicts per run, and nothing outside `daemon.store` ever sees a row. The schema in the
database is created only by the Alembic migrations in `daemon/migrations`; these
definitions must describe the same schema (a test compares the two).

Times are stored as UTC and always come back timezone-aware, on SQLite (which has no
time zone type: the UTC wall time is stored as text) as on PostgreSQL (timestamptz).

A message is one row per logical message per account, whatever the folders it sits in:
the same Message-ID in Sent and INBOX is one row with two `message_locations`. Its
`dedup_key` is the Message-ID, or for a message without one a hash of the facts that do
not change between syncs, so a re-sync finds the same row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

from connectors.base import Address, MessageFacts

__all__ = [
    "ADDRESS_COLUMNS",
    "DATE_SKEW_LIMIT",
    "MESSAGE_COLUMNS",
    "accounts",
    "address_values",
    "dedup_key",
    "drafts",
    "evaluations",
    "folders",
    "leases",
    "message_addresses",
    "message_locations",
    "message_time",
    "message_values",
    "messages",
    "metadata",
    "prospects",
    "stored_time",
]

# A Date header this far past the server's arrival time is a wrong clock, not the truth.
DATE_SKEW_LIMIT = timedelta(days=1)

# Longer values cannot be indexed on PostgreSQL (a btree row is at most ~2.7 kB) and are
# garbage anyway: RFC 5321 caps an address at 254 octets.
_MAX_EMAIL = 320
_MAX_MESSAGE_ID = 512
_MAX_SHORT_TEXT = 1000

# One encoder for every row: json.dumps with options builds a new one per call.
_to_json = json.JSONEncoder(ensure_ascii=False).encode


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC, returned aware on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime given to the store: {value!r}")
        value = value.astimezone(UTC)
        # SQLite keeps the text SQLAlchemy writes, which has no offset: store UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("last_sync_at", UtcDateTime),
    Column("last_success_at", UtcDateTime),
    Column("last_error", String(500)),
    Column("last_error_at", UtcDateTime),
    # Bumped by every write that changes the account's stored mail (see `evaluations`).
    Column("revision", Integer, nullable=False, server_default=text("0")),
)

folders = Table(
    "folders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("role", String(10), nullable=False),
    Column("cursor", Text),
    Column("synced_at", UtcDateTime),
    UniqueConstraint("account_id", "name"),
    CheckConstraint("role IN ('inbox', 'sent', 'drafts')", name="role"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("dedup_key", Text, nullable=False),
    Column("message_id", Text),
    Column("in_reply_to", Text),
    Column("reference_ids", Text, nullable=False, default=""),  # space-separated, in order
    Column("subject", Text, nullable=False, default=""),
    Column("date", UtcDateTime),
    Column("received_at", UtcDateTime),
    Column("at", UtcDateTime),
    Column("from_email", Text),
    Column("from_name", Text, nullable=False, default=""),
    Column("thread_id", Text),
    Column("headers", Text, nullable=False, default="[]"),  # JSON [[name, value], ...]
    Column("size", BigInteger),
    Column("excerpt", Text),
    Column("report_type", String(40)),
    Column("report_action", String(40)),
    Column("report_recipients", Text),  # space-separated
    Column("defects", Text, nullable=False, default="[]"),  # JSON [text, ...]
    UniqueConstraint("account_id", "dedup_key"),
    Index(None, "account_id", "from_email"),
    Index(None, "account_id", "thread_id"),
)

message_locations = Table(
    "message_locations",
    metadata,
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("remote_id", Text, nullable=False),
    Column("message_id", RowId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("folder_id", "remote_id"),
    Index(None, "message_id"),
)

message_addresses = Table(
    "message_addresses",
    metadata,
    Column("message_id", RowId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(10), nullable=False),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False, default=""),
    PrimaryKeyConstraint("message_id", "role", "email"),
    CheckConstraint("role IN ('to', 'cc', 'reply_to')", name="role"),
    Index(None, "email"),
)

drafts = Table(
    "drafts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("prospect", Text, nullable=False),
    Column("stage", Integer, nullable=False),
    Column("key", Text, nullable=False, unique=True),  # the X-Relight-Key header
    Column("message_id", Text, nullable=False),
    Column("folder", Text),
    Column("remote_id", Text),
    Column("digest", String(64)),  # `connectors.base.digest_of` what Relight wrote
    Column("state", String(12), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "prospect", "stage"),
    CheckConstraint(
        "state IN ('pending', 'written', 'dismissed', 'retracted', 'sent')", name="state"
    ),
)

prospects = Table(
    "prospects",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("email", Text, nullable=False),
    Column("snoozed_until", UtcDateTime),
    Column("excluded_reason", Text),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("account_id", "email"),
)

# The team's latest verdicts (`rules.status.Verdict`, as `daemon.verdicts` encodes them),
# valid while the accounts' revisions and the team's settings (`team_key`) are unchanged.
evaluations = Table(
    "evaluations",
    metadata,
    Column("team_key", String(64), primary_key=True),
    Column("revisions", Text, nullable=False),  # JSON {account name: revision}
    Column("evaluated_at", UtcDateTime, nullable=False),
    Column("verdicts", Text, nullable=False),  # JSON [verdict, ...]
)

leases = Table(
    "leases",
    metadata,
    Column("account_name", String(200), primary_key=True),
    Column("worker_id", Text, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)


def message_time(date: datetime | None, received_at: datetime | None) -> datetime | None:
    """When a message happened: its Date, unless missing or implausibly late."""
    if date is None:
        return received_at
    if received_at is not None and date - received_at > DATE_SKEW_LIMIT:
        return received_at
    return date


def dedup_key(facts: MessageFacts) -> str:
    """The key that makes every copy of one message one row: the Message-ID, else a hash.

    The hash covers only what a message carries with it (From, Date, Subject, To), so it
    is the same in every re-sync; without a Date the server arrival time stands in.
    """
    if facts.message_id and len(facts.message_id) <= _MAX_MESSAGE_ID:
        return _clean(facts.message_id)
    if facts.message_id:
        return "sha256:" + hashlib.sha256(facts.message_id.encode("utf-8", "replace")).hexdigest()
    moment = facts.date or facts.received_at
    identity = [
        facts.sender.email if facts.sender else "",
        moment.astimezone(UTC).isoformat() if moment else "",
        facts.subject,
        sorted(address.email for address in facts.to),
    ]
    encoded = _to_json(identity).encode("utf-8", "replace")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


# The order of `message_values` and `address_values`, as the bulk inserts name them.
MESSAGE_COLUMNS: tuple[str, ...] = (
    "account_id",
    "dedup_key",
    "message_id",
    "in_reply_to",
    "reference_ids",
    "subject",
    "date",
    "received_at",
    "at",
    "from_email",
    "from_name",
    "thread_id",
    "headers",
    "size",
    "excerpt",
    "report_type",
    "report_action",
    "report_recipients",
    "defects",
)
ADDRESS_COLUMNS: tuple[str, ...] = ("message_id", "role", "email", "name")

StoredTime = Callable[[datetime | None], Any]


def stored_time(dialect: str) -> StoredTime:
    """What `UtcDateTime` hands the driver of `dialect` for an aware datetime, for rows
    written without SQLAlchemy's type processing: on SQLite the text SQLAlchemy's DATETIME
    writes (the UTC wall time, microseconds included), elsewhere the datetime in UTC."""
    return _sqlite_time if dialect == "sqlite" else _utc_time


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime given to the store: {value!r}")
    value = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031  SQLAlchemy's own format
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _utc_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime given to the store: {value!r}")
    return value.astimezone(UTC)


def message_values(
    account_id: int, key: str, facts: MessageFacts, time: StoredTime
) -> tuple[Any, ...]:
    """The `messages` row of one message, in `MESSAGE_COLUMNS` order; `key` is its
    `dedup_key` and `time` turns datetimes into what the driver stores."""
    report = facts.report
    sender = facts.sender
    headers = _to_json(facts.headers) if facts.headers else "[]"  # tuples encode as arrays
    defects = _to_json(facts.defects) if facts.defects else "[]"
    texts = [
        facts.message_id or "",
        facts.in_reply_to or "",
        *facts.references,
        facts.subject,
        sender.email if sender else "",
        sender.name if sender else "",
        facts.thread_id or "",
        headers,
        facts.excerpt or "",
        defects,
    ]
    if report is not None:
        texts += [report.report_type, report.action or "", *report.recipients]
    if not _storable("".join(texts)):
        return _cleaned_message_values(account_id, key, facts, time)
    # Everything is storable as it is: only the length caps remain.
    message_id, in_reply_to, thread_id = facts.message_id, facts.in_reply_to, facts.thread_id
    date, received_at = time(facts.date), time(facts.received_at)
    at = message_time(facts.date, facts.received_at)
    return (
        account_id,
        key,
        message_id[:_MAX_MESSAGE_ID] if message_id is not None else None,
        in_reply_to[:_MAX_MESSAGE_ID] if in_reply_to is not None else None,
        " ".join(facts.references),
        facts.subject[:_MAX_SHORT_TEXT],
        date,
        received_at,
        date if at is facts.date else received_at,  # `at` is one of the two
        sender.email[:_MAX_EMAIL] if sender else None,
        sender.name[:_MAX_SHORT_TEXT] if sender else "",
        thread_id[:_MAX_MESSAGE_ID] if thread_id is not None else None,
        headers,
        facts.size,
        facts.excerpt,
        report.report_type[:40] if report else None,
        report.action[:40] if report and report.action is not None else None,
        " ".join(report.recipients) if report else None,
        defects,
    )


def _cleaned_message_values(
    account_id: int, key: str, facts: MessageFacts, time: StoredTime
) -> tuple[Any, ...]:
    """`message_values` of a message with text no database can hold, cleaned field by field."""
    report = facts.report
    return (
        account_id,
        key,
        _clean_optional(facts.message_id, _MAX_MESSAGE_ID),
        _clean_optional(facts.in_reply_to, _MAX_MESSAGE_ID),
        _clean(" ".join(facts.references)),
        _clean(facts.subject, _MAX_SHORT_TEXT),
        time(facts.date),
        time(facts.received_at),
        time(message_time(facts.date, facts.received_at)),
        _clean(facts.sender.email, _MAX_EMAIL) if facts.sender else None,
        _clean(facts.sender.name, _MAX_SHORT_TEXT) if facts.sender else "",
        _clean_optional(facts.thread_id, _MAX_MESSAGE_ID),
        _clean(_to_json(facts.headers)),
        facts.size,
        _clean_optional(facts.excerpt),
        _clean(report.report_type, 40) if report else None,
        _clean_optional(report.action, 40) if report else None,
        _clean(" ".join(report.recipients)) if report else None,
        _clean(_to_json(facts.defects)) if facts.defects else "[]",
    )


def address_values(facts: MessageFacts) -> list[tuple[str, str, str]]:
    """The (role, email, name) of each `message_addresses` row of one message (the row id
    goes before them, as in `ADDRESS_COLUMNS`): To, Cc and Reply-To, each address once
    per role, keeping the first display name given."""
    names: dict[tuple[str, str], str] = {}
    groups: tuple[tuple[str, tuple[Address, ...]], ...] = (
        ("to", facts.to),
        ("cc", facts.cc),
        ("reply_to", facts.reply_to),
    )
    for role, addresses in groups:
        for address in addresses:
            email = _clean(address.email, _MAX_EMAIL)
            known = names.get((role, email))
            if known is None or (not known and address.name):
                names[role, email] = _clean(address.name, _MAX_SHORT_TEXT)
    return [(role, email, name) for (role, email), name in names.items()]


def _clean(text: str, limit: int | None = None) -> str:
    """Text any database accepts: no NUL, no lone surrogates, at most `limit` characters.

    Broken mail carries both, and one unstorable header must not stop a mailbox's sync.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit is not None else text


def _storable(text: str) -> bool:
    """`_clean` would leave the text as it is."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, from undecodable bytes
        return False
    return True


def _clean_optional(text: str | None, limit: int | None = None) -> str | None:
    return None if text is None else _clean(text, limit)
