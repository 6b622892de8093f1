"""`relight classify PATH...`: how Relight reads mail files an admin points it at.

Each message of the .eml files, mbox files and Maildirs named is read as the connectors
read mail (`connectors.rawmail`), turned into the rules' value, and classified exactly as
during a sync. For mail a person wrote it also shows the excerpt Relight would keep (the
new text, quotes and signature removed) and the commitment it would quote back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from connectors.base import ConnectorError
from connectors.rawmail import facts_from_bytes, mail_files
from daemon.evaluation import message_from_facts
from rules.classify import Kind, classify
from rules.commitment import find_commitment
from rules.excerpt import reply_text
from rules.message import Folder

__all__ = ["SampleVerdict", "classify_paths", "format_verdict"]


@dataclass(frozen=True, slots=True)
class SampleVerdict:
    path: str
    kind: str  # a rules.classify.Kind value, or "unreadable"
    reason: str
    excerpt: str | None = None
    commitment: str | None = None
    return_date: str | None = None  # an out-of-office reply's, ISO date

    def as_json(self) -> dict[str, str | None]:
        record: dict[str, str | None] = {"path": self.path, "kind": self.kind}
        record["reason"] = self.reason
        if self.kind == Kind.GENUINE:
            record["excerpt"] = self.excerpt
            record["commitment"] = self.commitment
        if self.return_date:
            record["return_date"] = self.return_date
        return record


def classify_paths(
    paths: list[Path], own_addresses: frozenset[str], excerpt_chars: int, now: datetime
) -> Iterator[SampleVerdict]:
    """A verdict per message found; `now` stands in for the arrival time of a message
    without a Date header (files have none)."""
    for label, raw in mail_files(paths):
        if isinstance(raw, OSError):
            yield SampleVerdict(label, "unreadable", f"cannot read: {raw.strerror or raw}")
            continue
        yield _verdict(label, raw, own_addresses, excerpt_chars, now)


def _verdict(
    label: str, raw: bytes, own_addresses: frozenset[str], excerpt_chars: int, now: datetime
) -> SampleVerdict:
    try:
        facts = facts_from_bytes(
            label,
            raw,
            received_at=now,
            excerpt=lambda text: reply_text(text, max_chars=max(excerpt_chars, 2000)),
        )
    except (ConnectorError, ValueError) as exc:
        return SampleVerdict(label, "unreadable", f"not a message: {type(exc).__name__}")
    message = message_from_facts(facts, Folder.INBOX)
    assert message is not None  # received_at is set
    verdict = classify(message, own_addresses)
    if verdict.kind != Kind.GENUINE:
        returns = verdict.return_date.isoformat() if verdict.return_date else None
        return SampleVerdict(label, str(verdict.kind), verdict.reason, return_date=returns)
    excerpt = (facts.excerpt or "")[:excerpt_chars] if excerpt_chars else ""
    commitment = find_commitment(excerpt) if excerpt else None
    return SampleVerdict(
        label,
        str(verdict.kind),
        verdict.reason,
        excerpt=excerpt or None,
        commitment=commitment.quoted if commitment else None,
    )


def format_verdict(verdict: SampleVerdict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(verdict.as_json(), ensure_ascii=False)
    line = f"{verdict.path}\t{verdict.kind}\t{verdict.reason}"
    if verdict.commitment:
        line += f'\tcommitment: "{verdict.commitment}"'
    if verdict.return_date:
        line += f"\tback on {verdict.return_date}"
    return line
