"""`relight report`: one row per (account, prospect), as a table, JSON or CSV.

JSON is one array of objects with the SPEC section 7 keys (times ISO 8601 with offset,
or null); CSV has a header row and the same columns; the table is for a person at a
terminal: times in `daemon.timezone`, long cells cut, the reason last.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from rules.status import ProspectStatus, Status

if TYPE_CHECKING:
    from daemon.config import AccountConfig
    from daemon.store import AccountStatus

__all__ = ["format_account_status", "format_statuses"]

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


def format_account_status(
    accounts: Sequence[AccountConfig],
    known: Mapping[str, AccountStatus],
    statuses: Sequence[ProspectStatus],
    fmt: str,
    *,
    timezone: tzinfo,
) -> str:
    """`relight status`: per configured account, its last sync, success and error, the
    messages stored and how many prospects have each status ("table" or "json")."""
    counts = {account.name: Counter[str]() for account in accounts}
    for status in statuses:
        if status.account in counts:
            counts[status.account][str(status.status)] += 1
    records: list[dict[str, Any]] = []
    for account in accounts:
        state = known.get(account.name)
        records.append(
            {
                "account": account.name,
                "kind": account.kind,
                "last_sync_at": _iso(state.last_sync_at if state else None),
                "last_success_at": _iso(state.last_success_at if state else None),
                "last_error": state.last_error if state and state.failing else None,
                "last_error_at": _iso(state.last_error_at if state and state.failing else None),
                "messages": state.message_count if state else 0,
                "statuses": {str(s): counts[account.name][str(s)] for s in Status},
            }
        )
    if fmt == "json":
        return json.dumps(records, ensure_ascii=False, indent=2)
    lines = []
    for record in records:
        per_status = ", ".join(f"{name} {n}" for name, n in record["statuses"].items() if n)
        error = record["last_error"]
        lines += [
            f"{record['account']} ({record['kind']})",
            f"  last successful sync  {_local(record['last_success_at'], timezone)}",
            "  last error            "
            + (f"{_local(record['last_error_at'], timezone)}  {error}" if error else "none"),
            f"  messages stored       {record['messages']}",
            f"  prospects             {per_status or 'none yet'}",
        ]
    return "\n".join(lines) if lines else "No accounts configured."


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _local(text: object, timezone: tzinfo) -> str:
    if not isinstance(text, str):
        return "never"
    return datetime.fromisoformat(text).astimezone(timezone).strftime("%Y-%m-%d %H:%M")
