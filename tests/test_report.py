"""The correspondents query and the report's table, JSON and CSV output."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.base import Address, FolderRole, MessageFacts, RemoteFolder
from daemon.report import REPORT_FIELDS, Correspondent, format_report
from daemon.store import Store, StoredFolder

T0 = datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)
INBOX = RemoteFolder("INBOX", FolderRole.INBOX)
SENT = RemoteFolder("Sent", FolderRole.SENT)
DRAFTS = RemoteFolder("Drafts", FolderRole.DRAFTS)
DANA = frozenset({"dana@acme.example", "dana.reyes@acme.example"})
OWN = {"dana": DANA}
INTERNAL = {"dana": frozenset({"acme.example"})}

_remote_ids = iter(range(1, 10_000))


def mail(
    message_id: str,
    sender: str,
    to: tuple[str, ...] = (),
    *,
    at: datetime = T0,
    cc: tuple[str, ...] = (),
    name: str = "",
    to_name: str = "",
) -> MessageFacts:
    return MessageFacts(
        remote_id=str(next(_remote_ids)),
        message_id=message_id,
        sender=Address(sender, name),
        to=tuple(Address(email, to_name) for email in to),
        cc=tuple(Address(email) for email in cc),
        date=at,
        received_at=at,
        subject="Pricing",
    )


def mailbox(store: Store, account: str = "dana") -> dict[str, StoredFolder]:
    account_id = store.ensure_account(account, "imap")
    stored = store.sync_folders(account_id, [INBOX, SENT, DRAFTS])
    return {folder.name: folder for folder in stored}


def put(store: Store, folder: StoredFolder, *facts: MessageFacts) -> None:
    store.apply_fetched(folder, list(facts))


def by_prospect(rows: list[Correspondent]) -> dict[str, Correspondent]:
    return {row.prospect: row for row in rows}


def test_last_outbound_and_inbound_per_correspondent(store: Store) -> None:
    """Each correspondent gets the latest time and the count of messages each way."""
    box = mailbox(store)
    put(store, box["Sent"], mail("o1@a", "dana@acme.example", ("ann@prospect.example",), at=T0))
    put(
        store,
        box["INBOX"],
        mail("i1@p", "ann@prospect.example", ("dana@acme.example",), at=T0 + DAY),
    )
    put(
        store,
        box["Sent"],
        mail("o2@a", "dana@acme.example", ("ann@prospect.example",), at=T0 + 3 * DAY),
    )
    (ann,) = store.correspondents(None, OWN, INTERNAL)
    assert ann == Correspondent(
        account="dana",
        prospect="ann@prospect.example",
        name="",
        company="prospect.example",
        last_outbound_at=T0 + 3 * DAY,
        last_inbound_at=T0 + DAY,
        outbound_count=2,
        inbound_count=1,
    )
    assert ann.last_outbound_at is not None
    assert ann.last_outbound_at.tzinfo is UTC


def test_message_in_sent_and_inbox_counts_once(store: Store) -> None:
    """A message in Sent and (as a Bcc to self) in INBOX is one outbound message."""
    box = mailbox(store)
    sent = mail(
        "o1@a", "dana@acme.example", ("ann@prospect.example",), cc=("ann@prospect.example",)
    )
    put(store, box["Sent"], sent)
    put(store, box["INBOX"], mail("o1@a", "dana@acme.example", ("ann@prospect.example",)))
    (ann,) = store.correspondents("dana", OWN, INTERNAL)
    assert (ann.outbound_count, ann.inbound_count) == (1, 0)


def test_own_addresses_and_internal_domains_are_excluded(store: Store) -> None:
    """Own aliases, internal domains and their subdomains never appear as correspondents."""
    box = mailbox(store)
    put(
        store,
        box["Sent"],
        mail(
            "o1@a",
            "dana@acme.example",
            ("ann@prospect.example", "dana.reyes@acme.example"),
            cc=("lee@acme.example", "ops@eu.acme.example", "x@notacme.example"),
        ),
    )
    put(store, box["INBOX"], mail("i1@a", "eve@sub.acme.example", ("dana@acme.example",)))
    rows = store.correspondents("dana", OWN, INTERNAL)
    assert [row.prospect for row in rows] == ["ann@prospect.example", "x@notacme.example"]


def test_drafts_only_messages_are_neither_direction(store: Store) -> None:
    """A message only in Drafts was never sent; once also in Sent it counts as outbound."""
    box = mailbox(store)
    put(store, box["Drafts"], mail("d1@a", "dana@acme.example", ("bob@other.example",)))
    put(store, box["Drafts"], mail("d2@a", "carl@client.example", ("dana@acme.example",)))
    assert store.correspondents("dana", OWN, INTERNAL) == []
    put(store, box["Sent"], mail("d1@a", "dana@acme.example", ("bob@other.example",)))
    assert [(row.prospect, row.outbound_count) for row in store.correspondents(None, OWN, {})] == [
        ("bob@other.example", 1)
    ]


def test_sent_folder_decides_outbound_whatever_the_from(store: Store) -> None:
    """A message in Sent from a foreign From (send-as) is still outbound."""
    box = mailbox(store)
    put(store, box["Sent"], mail("o1@a", "assistant@agency.example", ("dora@client.example",)))
    (dora,) = store.correspondents("dana", OWN, INTERNAL)
    assert (dora.prospect, dora.outbound_count, dora.inbound_count) == ("dora@client.example", 1, 0)


def test_direction_is_decided_by_the_own_addresses_given_at_query_time(store: Store) -> None:
    """Adding an alias to the configuration turns its stored mail outbound."""
    box = mailbox(store)
    put(store, box["INBOX"], mail("i1@a", "sales@acme.example", ("carl@client.example",)))
    before = store.correspondents("dana", OWN, {})
    assert [(row.prospect, row.inbound_count) for row in before] == [("sales@acme.example", 1)]
    with_alias = {"dana": DANA | {"SALES@acme.example"}}
    after = store.correspondents("dana", with_alias, {})
    assert [(row.prospect, row.outbound_count) for row in after] == [("carl@client.example", 1)]


def test_name_is_the_latest_non_empty_display_name(store: Store) -> None:
    """The correspondent's name is the newest one seen, skipping empty ones."""
    box = mailbox(store)
    put(store, box["INBOX"], mail("i1@p", "ann@prospect.example", name="A. Example", at=T0))
    put(
        store,
        box["Sent"],
        mail(
            "o1@a",
            "dana@acme.example",
            ("ann@prospect.example",),
            to_name="Ann Example",
            at=T0 + DAY,
        ),
    )
    put(
        store,
        box["Sent"],
        mail("o2@a", "dana@acme.example", ("ann@prospect.example",), at=T0 + 2 * DAY),
    )
    (ann,) = store.correspondents("dana", OWN, INTERNAL)
    assert ann.name == "Ann Example"


def test_each_account_reports_its_own_correspondents(store: Store) -> None:
    """Rows are per account; the account filter narrows to one; unknown names refused."""
    put(
        store, mailbox(store, "dana")["Sent"], mail("o1@a", "dana@acme.example", ("ann@p.example",))
    )
    put(store, mailbox(store, "lee")["INBOX"], mail("i1@p", "ann@p.example", ("lee@acme.example",)))
    own = {"dana": DANA, "lee": frozenset({"lee@acme.example"})}
    rows = store.correspondents(None, own, {})
    assert [(row.account, row.outbound_count, row.inbound_count) for row in rows] == [
        ("dana", 1, 0),
        ("lee", 0, 1),
    ]
    assert [row.account for row in store.correspondents("lee", own, {})] == ["lee"]
    assert [row.account for row in store.correspondents(None, {"lee": own["lee"]}, {})] == ["lee"]
    with pytest.raises(ValueError, match="unknown account"):
        store.correspondents("kim", own, {})


ROWS = [
    Correspondent(
        account="dana",
        prospect="ann@prospect.example",
        name="Ann Example",
        company="prospect.example",
        last_outbound_at=T0 + 3 * DAY,
        last_inbound_at=T0 + DAY,
        outbound_count=2,
        inbound_count=1,
    ),
    Correspondent(
        account="dana",
        prospect="bob@other.example",
        name="",
        company="other.example",
        last_outbound_at=T0,
        last_inbound_at=None,
        outbound_count=12,
        inbound_count=0,
    ),
]


def test_json_is_one_array_of_objects_with_iso_times() -> None:
    """JSON output: an array of objects with the contract keys, times with offset or null."""
    records = json.loads(format_report(ROWS, "json"))
    assert [list(record) for record in records] == [list(REPORT_FIELDS)] * 2
    assert records[0]["last_outbound_at"] == "2024-03-07T09:30:00+00:00"
    assert records[1]["last_inbound_at"] is None
    assert records[1]["outbound_count"] == 12
    assert json.loads(format_report([], "json")) == []


def test_csv_has_a_header_row_and_one_line_per_row() -> None:
    """CSV output: the field names, then each row; a missing time is an empty cell."""
    text = format_report(ROWS, "csv")
    assert not text.endswith("\n")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == list(REPORT_FIELDS)
    assert lines[1][:5] == [
        "dana",
        "ann@prospect.example",
        "Ann Example",
        "prospect.example",
        "2024-03-07T09:30:00+00:00",
    ]
    assert lines[2][5:] == ["", "12", "0"]
    assert len(lines) == 3


def test_table_columns_line_up() -> None:
    """Table output: a header and one line per row, each column starting at one offset."""
    text = format_report(ROWS, "table", timezone=timezone(timedelta(hours=1)))
    assert not text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 3
    header = lines[0]
    assert header.split() == [
        "ACCOUNT",
        "PROSPECT",
        "NAME",
        "COMPANY",
        "LAST",
        "OUT",
        "LAST",
        "IN",
        "OUT",
        "IN",
    ]
    prospect_column = header.index("PROSPECT")
    assert lines[1].index("ann@") == lines[2].index("bob@") == prospect_column
    assert "2024-03-07 10:30" in lines[1]  # shown in the requested zone
    assert lines[1].endswith(" 2   1")
    assert lines[2].endswith("12   0")


def test_long_names_are_cut_so_the_table_stays_readable() -> None:
    """A very long or multi-line name is shortened to one cell."""
    long = Correspondent("dana", "x@y.example", "A\nB " + "n" * 80, "y.example", None, None, 0, 1)
    (line,) = format_report([long], "table").splitlines()[1:]
    assert "A B nnn" in line
    assert "…" in line
    assert len(line) < 120


def test_unknown_format_is_refused() -> None:
    """Only table, json and csv exist."""
    with pytest.raises(ValueError, match="unknown report format"):
        format_report(ROWS, "xml")  # type: ignore[arg-type]
