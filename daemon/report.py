"""Who each rep has been talking to: the query, its result type, and the output formats.

`Store.correspondents` runs `correspondents_query` in one short transaction and keeps,
through `external_correspondents`, one `Correspondent` per (account, external address):
when the rep last wrote to them, when they last wrote back, and how many messages went
each way. Direction is decided in the query, from the folders a message sits in and the
account's own addresses as configured now, so changing the configuration needs no
re-sync. `format_report` renders the rows as an aligned table for a terminal, one JSON
array, or CSV with a header row. Times are ISO 8601 with an offset in JSON and CSV.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

from sqlalchemy import (
    CTE,
    CompoundSelect,
    Select,
    Subquery,
    and_,
    case,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    union_all,
)

from connectors.base import FolderRole
from daemon.models import accounts, folders, message_addresses, message_locations, messages

__all__ = [
    "REPORT_FIELDS",
    "Correspondent",
    "ReportFormat",
    "correspondents_query",
    "external_correspondents",
    "format_report",
]

ReportFormat = Literal["table", "json", "csv"]

REPORT_FIELDS: tuple[str, ...] = (
    "account",
    "prospect",
    "name",
    "company",
    "last_outbound_at",
    "last_inbound_at",
    "outbound_count",
    "inbound_count",
)

_TABLE_HEADINGS: dict[str, str] = {
    "account": "ACCOUNT",
    "prospect": "PROSPECT",
    "name": "NAME",
    "company": "COMPANY",
    "last_outbound_at": "LAST OUT",
    "last_inbound_at": "LAST IN",
    "outbound_count": "OUT",
    "inbound_count": "IN",
}
_RIGHT_ALIGNED = frozenset({"outbound_count", "inbound_count"})
_MAX_CELL = 40


@dataclass(frozen=True)
class Correspondent:
    """One external address an account exchanged mail with, and when it last did."""

    account: str
    prospect: str  # the address, lower-case
    name: str  # the latest non-empty display name seen, or ""
    company: str  # the address's domain
    last_outbound_at: datetime | None
    last_inbound_at: datetime | None
    outbound_count: int
    inbound_count: int

    def __post_init__(self) -> None:
        if self.prospect != self.prospect.strip().lower() or "@" not in self.prospect:
            raise ValueError(f"prospect must be a lower-case address: {self.prospect!r}")
        if self.outbound_count < 0 or self.inbound_count < 0:
            raise ValueError("message counts cannot be negative")
        for moment in (self.last_outbound_at, self.last_inbound_at):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError("report times must be timezone-aware")


def correspondents_query(own_addresses: Mapping[str, frozenset[str]]) -> Select[Any]:
    """One grouped query: per (account, address), the last time and count each way.

    `own_addresses` names the accounts to include and their addresses. Rows have
    account, email, name (the latest non-empty display name), last_outbound_at,
    last_inbound_at, outbound_count and inbound_count, ordered by account and email.
    """
    own = {name: _lowered(addresses) for name, addresses in own_addresses.items()}
    contacts = _contacts(_directed_messages(own)).cte("contacts")
    totals = _totals(contacts)
    names = _latest_names(contacts)
    return (
        select(totals, names.c.name)
        .join(
            names,
            and_(
                names.c.account == totals.c.account,
                names.c.email == totals.c.email,
                names.c.rank == 1,
            ),
        )
        .order_by(totals.c.account, totals.c.email)
    )


def _directed_messages(own: Mapping[str, frozenset[str]]) -> CTE:
    """The accounts' messages, each flagged outbound, inbound, or neither.

    Outbound: in a Sent folder, or From an own address and not only in Drafts.
    Inbound: From not an own address, not in Sent, not only in Drafts.
    """
    placement = (
        select(
            message_locations.c.message_id,
            func.max(case((folders.c.role == FolderRole.SENT.value, 1), else_=0)).label("in_sent"),
            func.min(case((folders.c.role == FolderRole.DRAFTS.value, 1), else_=0)).label(
                "only_drafts"
            ),
        )
        .join(folders, folders.c.id == message_locations.c.folder_id)
        .join(accounts, accounts.c.id == folders.c.account_id)
        .where(accounts.c.name.in_(list(own)))
        .group_by(message_locations.c.message_id)
        .subquery("placement")
    )
    from_own = or_(
        false(),
        *(
            and_(accounts.c.name == name, messages.c.from_email.in_(sorted(addresses)))
            for name, addresses in own.items()
            if addresses
        ),
    )
    sent = placement.c.in_sent == 1
    unsent = placement.c.only_drafts == 1
    return (
        select(
            messages.c.id,
            accounts.c.name.label("account"),
            messages.c.from_email,
            messages.c.from_name,
            messages.c.at,
            case((or_(sent, and_(from_own, not_(unsent))), 1), else_=0).label("outbound"),
            case((and_(not_(sent), not_(unsent), not_(from_own)), 1), else_=0).label("inbound"),
        )
        .join(accounts, accounts.c.id == messages.c.account_id)
        .join(placement, placement.c.message_id == messages.c.id)
        .cte("directed")
    )


def _contacts(directed: CTE) -> CompoundSelect[Any]:
    """One row per (message, correspondent): To and Cc of outbound, From of inbound."""
    return union_all(
        select(
            directed.c.account,
            message_addresses.c.email,
            message_addresses.c.name,
            directed.c.at,
            directed.c.id.label("message_id"),
            literal_column("1").label("outbound"),
        )
        .join(message_addresses, message_addresses.c.message_id == directed.c.id)
        .where(directed.c.outbound == 1, message_addresses.c.role.in_(["to", "cc"])),
        select(
            directed.c.account,
            directed.c.from_email,
            directed.c.from_name,
            directed.c.at,
            directed.c.id,
            literal_column("0"),
        ).where(directed.c.inbound == 1, directed.c.from_email.is_not(None)),
    )


def _totals(contacts: CTE) -> Subquery:
    """Per correspondent: the latest time and the number of messages, each way."""
    outbound = contacts.c.outbound == 1
    inbound = not_(outbound)
    message = contacts.c.message_id
    return (
        select(
            contacts.c.account,
            contacts.c.email,
            func.max(case((outbound, contacts.c.at))).label("last_outbound_at"),
            func.max(case((inbound, contacts.c.at))).label("last_inbound_at"),
            # A message may name the same address in To and Cc: count it once.
            func.count(case((outbound, message)).distinct()).label("outbound_count"),
            func.count(case((inbound, message)).distinct()).label("inbound_count"),
        )
        .group_by(contacts.c.account, contacts.c.email)
        .subquery("totals")
    )


def _latest_names(contacts: CTE) -> Subquery:
    """Each correspondent's display names, the latest non-empty one ranked 1."""
    return select(
        contacts.c.account,
        contacts.c.email,
        contacts.c.name,
        func.row_number()
        .over(
            partition_by=(contacts.c.account, contacts.c.email),
            order_by=(
                case((contacts.c.name == "", 1), else_=0),
                contacts.c.at.desc().nulls_last(),
                contacts.c.message_id.desc(),
            ),
        )
        .label("rank"),
    ).subquery("names")


def external_correspondents(
    rows: Iterable[Any],
    own_addresses: Mapping[str, frozenset[str]],
    internal_domains: Mapping[str, frozenset[str]],
) -> list[Correspondent]:
    """The rows of `correspondents_query` that are external, as `Correspondent` values.

    An address is internal when it is one of the account's own, or its domain is one of
    the account's `internal_domains` or a subdomain of one (eu.acme.example under
    acme.example).
    """
    own = {name: _lowered(addresses) for name, addresses in own_addresses.items()}
    domains = {name: _lowered(items) for name, items in internal_domains.items()}
    return [
        Correspondent(
            account=row.account,
            prospect=row.email,
            name=row.name,
            company=_domain(row.email),
            last_outbound_at=row.last_outbound_at,
            last_inbound_at=row.last_inbound_at,
            outbound_count=row.outbound_count,
            inbound_count=row.inbound_count,
        )
        for row in rows
        if "@" in row.email
        and row.email not in own.get(row.account, frozenset())
        and not _in_domains(row.email, domains.get(row.account, frozenset()))
    ]


def format_report(
    rows: Sequence[Correspondent], fmt: ReportFormat, *, timezone: tzinfo = UTC
) -> str:
    """The rows as `fmt`, without a final newline (for `print`).

    The table shows times in `timezone`, minutes only; JSON and CSV keep the offsets.
    """
    if fmt == "json":
        return _as_json(rows)
    if fmt == "csv":
        return _as_csv(rows)
    if fmt == "table":
        return _as_table(rows, timezone)
    raise ValueError(f"unknown report format: {fmt!r}")


def _as_json(rows: Sequence[Correspondent]) -> str:
    return json.dumps([_as_record(row) for row in rows], ensure_ascii=False, indent=2)


def _as_csv(rows: Sequence[Correspondent]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {key: "" if value is None else value for key, value in _as_record(row).items()}
        )
    return buffer.getvalue().removesuffix("\n")


def _as_table(rows: Sequence[Correspondent], timezone: tzinfo) -> str:
    cells = [[_TABLE_HEADINGS[field] for field in REPORT_FIELDS]]
    cells.extend(_table_cells(row, timezone) for row in rows)
    widths = [max(len(line[column]) for line in cells) for column in range(len(REPORT_FIELDS))]
    lines = []
    for line in cells:
        padded = [
            cell.rjust(width) if field in _RIGHT_ALIGNED else cell.ljust(width)
            for field, cell, width in zip(REPORT_FIELDS, line, widths, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _as_record(row: Correspondent) -> dict[str, str | int | None]:
    return {
        "account": row.account,
        "prospect": row.prospect,
        "name": row.name,
        "company": row.company,
        "last_outbound_at": _iso(row.last_outbound_at),
        "last_inbound_at": _iso(row.last_inbound_at),
        "outbound_count": row.outbound_count,
        "inbound_count": row.inbound_count,
    }


def _table_cells(row: Correspondent, timezone: tzinfo) -> list[str]:
    return [
        _fit(row.account),
        _fit(row.prospect),
        _fit(row.name),
        _fit(row.company),
        _short_time(row.last_outbound_at, timezone),
        _short_time(row.last_inbound_at, timezone),
        str(row.outbound_count),
        str(row.inbound_count),
    ]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _short_time(moment: datetime | None, timezone: tzinfo) -> str:
    return "-" if moment is None else moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M")


def _fit(text: str) -> str:
    """One line of at most `_MAX_CELL` characters, so a long name cannot break the table."""
    text = " ".join(text.split()) or "-"
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _lowered(items: Iterable[str]) -> frozenset[str]:
    return frozenset(item.strip().lower().lstrip("@") for item in items)


def _domain(email: str) -> str:
    return email.rpartition("@")[2]


def _in_domains(email: str, domains: frozenset[str]) -> bool:
    domain = _domain(email)
    return any(domain == internal or domain.endswith("." + internal) for internal in domains)
