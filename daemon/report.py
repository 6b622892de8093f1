"""`relight report`: one row per (account, prospect), as a table, JSON or CSV.

JSON is one array of objects with the SPEC section 7 keys (times ISO 8601 with offset,
or null); CSV has a header row and the same columns; the table is for a person at a
terminal: times in `daemon.timezone`, long cells cut, the reason last.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime, tzinfo

from rules.status import ProspectStatus

__all__ = ["format_statuses"]

_TABLE_COLUMNS = (
    ("account", "ACCOUNT"),
    ("prospect", "PROSPECT"),
    ("status", "STATUS"),
    ("last_outbound_at", "LAST OUT"),
    ("last_inbound_at", "LAST IN"),
    ("followups_sent", "SENT"),
    ("next_stage", "NEXT"),
    ("next_action_at", "DUE"),
    ("reason", "REASON"),
)
_MAX_CELL = 40


def format_statuses(rows: Sequence[ProspectStatus], fmt: str, *, timezone: tzinfo) -> str:
    """The rows as `fmt` ("table", "json" or "csv"), without a final newline."""
    records = [row.report_row() for row in rows]
    if fmt == "json":
        return json.dumps(records, ensure_ascii=False, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=list(ProspectStatus.REPORT_FIELDS), lineterminator="\n"
        )
        writer.writeheader()
        for record in records:
            writer.writerow({key: "" if value is None else value for key, value in record.items()})
        return buffer.getvalue().removesuffix("\n")
    if fmt == "table":
        return _table(rows, timezone)
    raise ValueError(f"unknown report format: {fmt!r}")


def _table(rows: Sequence[ProspectStatus], timezone: tzinfo) -> str:
    if not rows:
        return "No prospects yet: run `relight sync` first, or nobody was written to."
    lines = [[heading for _, heading in _TABLE_COLUMNS]]
    for row in rows:
        lines.append([_cell(getattr(row, name), name, timezone) for name, _ in _TABLE_COLUMNS])
    widths = [max(len(line[i]) for line in lines) for i in range(len(_TABLE_COLUMNS) - 1)]
    return "\n".join(
        "  ".join(
            [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)] + [line[-1]]
        ).rstrip()
        for line in lines
    )


def _cell(value: object, name: str, timezone: tzinfo) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(timezone).strftime("%Y-%m-%d %H:%M")
    text = " ".join(str(value).split())
    if name == "reason" or len(text) <= _MAX_CELL:
        return text
    return text[: _MAX_CELL - 1] + "…"
