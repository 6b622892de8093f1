"""The team's latest verdicts, kept in the store so a report need not re-read the mail.

A `rules.status.Verdict` is everything the mail decides about one (account, prospect),
the same at any time; the clock is applied when a report asks (`Verdict.at`). Reading
and classifying 100,000 stored messages takes seconds, so the evaluation keeps its
verdicts in the `evaluations` table, with what they were computed from:

* **the mail**: each account's `revision`, which every store write that changes the
  account's messages bumps in the same transaction;
* **everything else**: the `team_key`, a digest of the settings the rules read (the
  accounts and their addresses, `[rules]`, `privacy.excerpt_chars`, `daemon.timezone`)
  and of the source of `rules/` and of the modules that turn rows into rules values, so
  an upgrade of Relight never serves verdicts of the old code.

`load` returns the kept verdicts only when both still match; otherwise the caller
evaluates the mail again and `save`s the result (`relight sync` does so at its end, so
the report after a sync is a read). The revisions are read before the mail: a write that
lands during an evaluation leaves the saved verdicts stale, never wrongly fresh.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

import rules
from daemon import models
from daemon.config import Config
from daemon.database import write_transaction
from daemon.store import Store
from rules.commitment import Commitment
from rules.reasons import Schedule
from rules.status import ReplyTarget, Status, Verdict

__all__ = ["decode", "encode", "load", "save", "team_key"]

# The code a verdict depends on: the rules, and the modules that feed them and keep them.
_SOURCES: tuple[Path, ...] = (
    *sorted(Path(rules.__file__).parent.glob("*.py")),
    Path(__file__).with_name("evaluation.py"),
    Path(__file__),
)


@functools.cache
def _code_digest() -> bytes:
    """The digest of the code the verdicts come from, read once: the process runs the
    code it loaded, whatever is installed later."""
    digest = hashlib.sha256()
    for source in _SOURCES:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.digest()


def team_key(config: Config) -> str:
    """The digest of everything besides the mail that the team's verdicts depend on."""
    digest = hashlib.sha256(_code_digest())
    settings = {
        "accounts": [
            [account.name, sorted(account.addresses), account.rep_name]
            for account in config.accounts
        ],
        "rules": repr(config.rules),
        "excerpt_chars": config.privacy.excerpt_chars,
        "timezone": config.daemon.timezone,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def load(store: Store, key: str, revisions: Mapping[str, int]) -> list[Verdict] | None:
    """The kept verdicts of `key`, if they were evaluated from exactly `revisions`."""
    table = models.evaluations
    query = select(table.c.revisions, table.c.verdicts).where(table.c.team_key == key)
    with store.engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None or json.loads(row.revisions) != dict(revisions):
        return None
    return decode(row.verdicts)


def save(
    store: Store,
    key: str,
    revisions: Mapping[str, int],
    verdicts: Sequence[Verdict],
    *,
    evaluated_at: datetime,
) -> None:
    """Keep `verdicts` as the team's latest, replacing whatever was kept before (also
    under another key: a changed config or release leaves nothing behind). Two processes
    saving at once (a report beside the daemon) both succeed; the later one stays."""
    table = models.evaluations
    values = {
        "team_key": key,
        "revisions": json.dumps(dict(revisions), sort_keys=True),
        "evaluated_at": evaluated_at,
        "verdicts": encode(verdicts),
    }
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(table).values(**values)
    upsert = upsert.on_conflict_do_update(
        index_elements=[table.c.team_key],
        set_={name: upsert.excluded[name] for name in values if name != "team_key"},
    )
    with write_transaction(store.engine) as connection:
        connection.execute(delete(table).where(table.c.team_key != key))
        connection.execute(upsert)


# -- the encoding: one JSON array of positional rows ------------------------------------


def encode(verdicts: Sequence[Verdict]) -> str:
    return json.dumps([_row(verdict) for verdict in verdicts], ensure_ascii=False)


def decode(text: str) -> list[Verdict]:
    return [_verdict(row) for row in json.loads(text)]


def _row(v: Verdict) -> list[Any]:
    schedule = v.schedule
    reply_to = v.reply_to
    commitment = v.commitment
    return [
        v.account,
        v.prospect,
        v.name,
        v.company,
        v.status.value if v.status is not None else None,
        v.reason,
        [
            _time(schedule.anchor_at),
            _time(schedule.due_at),
            _time(schedule.pause_until),
            schedule.pause_why,
            schedule.waiting_on,
            schedule.next_step,
        ]
        if schedule is not None
        else None,
        _time(v.last_outbound_at),
        _time(v.last_inbound_at),
        v.followups_sent,
        v.next_stage,
        _time(v.next_action_at),
        v.subject,
        v.playbook,
        v.conversation_key,
        [reply_to.message_id, list(reply_to.references), reply_to.thread_id, reply_to.subject]
        if reply_to is not None
        else None,
        _time(v.last_reply_at),
        v.last_reply_excerpt,
        [commitment.sentence, commitment.quoted, commitment.kind]
        if commitment is not None
        else None,
    ]


def _verdict(row: list[Any]) -> Verdict:
    (
        account,
        prospect,
        name,
        company,
        status,
        reason,
        schedule,
        last_outbound_at,
        last_inbound_at,
        followups_sent,
        next_stage,
        next_action_at,
        subject,
        playbook,
        conversation_key,
        reply_to,
        last_reply_at,
        last_reply_excerpt,
        commitment,
    ) = row
    return Verdict(
        account=account,
        prospect=prospect,
        name=name,
        company=company,
        status=Status(status) if status is not None else None,
        reason=reason,
        schedule=_schedule(schedule) if schedule is not None else None,
        last_outbound_at=datetime.fromisoformat(last_outbound_at),
        last_inbound_at=_parse(last_inbound_at),
        followups_sent=followups_sent,
        next_stage=next_stage,
        next_action_at=_parse(next_action_at),
        subject=subject,
        playbook=playbook,
        conversation_key=conversation_key,
        reply_to=ReplyTarget(reply_to[0], tuple(reply_to[1]), reply_to[2], reply_to[3])
        if reply_to is not None
        else None,
        last_reply_at=_parse(last_reply_at),
        last_reply_excerpt=last_reply_excerpt,
        commitment=Commitment(*commitment) if commitment is not None else None,
    )


def _schedule(row: list[Any]) -> Schedule:
    anchor_at, due_at, pause_until, pause_why, waiting_on, next_step = row
    return Schedule(
        anchor_at=datetime.fromisoformat(anchor_at),
        due_at=_parse(due_at),
        pause_until=_parse(pause_until),
        pause_why=pause_why,
        waiting_on=waiting_on,
        next_step=next_step,
    )


def _time(moment: datetime | None) -> str | None:
    """ISO 8601 with the offset the value had: a report prints it as it is."""
    return moment.isoformat() if moment is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None
