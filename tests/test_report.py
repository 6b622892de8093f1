"""The report's three output formats (SPEC section 7) for the same rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from daemon.report import format_statuses
from rules.status import ProspectStatus, Status

OUT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DUE = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
ROWS = [
    ProspectStatus(
        account="dana", prospect="alice@bigcorp.example", name="Alice Doe",
        company="bigcorp.example", status=Status.GHOSTED, last_outbound_at=OUT,
        last_inbound_at=None, followups_sent=0, next_stage=1, next_action_at=DUE,
        subject="Pricing", reason="3 business days since your message; stage 1 due",
    ),
    ProspectStatus(
        account="dana", prospect="bob@other.example", name="", company="other.example",
        status=Status.COLD, last_outbound_at=OUT, last_inbound_at=None, followups_sent=0,
        next_stage=None, next_action_at=None, subject="Intro", reason="never wrote back",
    ),
]  # fmt: skip
KEYS = [
    "account", "prospect", "name", "company", "status", "last_outbound_at", "last_inbound_at",
    "followups_sent", "next_stage", "next_action_at", "subject", "reason",
]  # fmt: skip


def test_json_is_one_array_with_the_spec_keys_and_offsets() -> None:
    """JSON: one array, the SPEC keys in order, times ISO 8601 with offset, null when absent."""
    rows = json.loads(format_statuses(ROWS, "json", timezone=UTC))
    assert [list(row) for row in rows] == [KEYS, KEYS]
    assert rows[0]["status"] == "ghosted"
    assert rows[0]["next_action_at"] == "2026-11-05T09:00:00+00:00"
    assert rows[1]["next_stage"] is None
    assert rows[1]["last_inbound_at"] is None


def test_csv_has_a_header_row_and_empty_cells_for_nothing() -> None:
    """CSV: the same columns under a header row; absent values are empty cells."""
    rows = list(csv.DictReader(io.StringIO(format_statuses(ROWS, "csv", timezone=UTC))))
    assert list(rows[0]) == KEYS
    assert rows[1]["next_action_at"] == ""
    assert rows[0]["followups_sent"] == "0"


def test_table_shows_local_times_and_the_reason_last() -> None:
    """Table: aligned columns, times in the configured zone, the whole reason at the end."""
    table = format_statuses(ROWS, "table", timezone=ZoneInfo("Europe/Berlin"))
    header, alice, bob = table.splitlines()
    assert header.split()[:3] == ["ACCOUNT", "PROSPECT", "STATUS"]
    assert "2026-11-02 10:00" in alice  # 09:00 UTC in Berlin
    assert alice.endswith("3 business days since your message; stage 1 due")
    assert bob.index("cold") == alice.index("ghosted")


def test_table_without_rows_says_what_to_do() -> None:
    """An empty table is a sentence pointing at `relight sync`, not a bare header."""
    assert "relight sync" in format_statuses([], "table", timezone=UTC)
