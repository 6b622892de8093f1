"""`relight draft`: the due follow-ups, written into each rep's Drafts folder once, ever.

A prospect is due when its status has a next stage whose time has come (ghosted, or cold
with `rules.draft_cold`). For each due (account, prospect, stage) a draft is composed
(`rules.drafts.compose`) and handed to the account's connector (`DraftFolder`). Theory of
operation: each (account, prospect, stage) has at most one row in the `drafts` table,
keyed by `rules.drafts.draft_key`, and at most one message in the Drafts folder, found by
the same key in its X-Relight-Key header. A row moves:

    due --> pending --APPEND, commit--> written --+-- gone, its Message-ID in Sent --> sent
              |                           |       +-- gone otherwise -------------> dismissed
              +-- the key found in Drafts-+       +-- the prospect replied, the draft
                                                      untouched, retract_stale ---> retracted

* `pending` is committed before the APPEND and `written` after it: a crash in between
  leaves `pending`, and the next run finds the draft by its key in the Drafts folder before
  it would append (the connector also refuses a second draft with one key).
* Every row is final for its stage: a stage with a row is never drafted again, so a draft
  the rep deleted unsent stays deleted (`dismissed`), and a sent one is followed by the
  next stage, whose clock the rules start from the sent message.
* A draft is retracted only while untouched: the digest of its body is still the digest
  of what Relight wrote. A draft the rep edited is never touched again.
* A dry run composes what would be written and writes nothing, not even a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.base import DraftFolder, StoredDraft
from daemon import models
from daemon.accounts import UnsupportedKind, open_connector
from daemon.config import AccountConfig, Config
from daemon.database import write_transaction
from daemon.store import Store
from rules.drafts import Draft, Playbooks, compose, draft_key
from rules.status import ProspectStatus, Status

__all__ = ["AccountDrafts", "DraftOutcome", "due", "format_draft"]

# Statuses whose untouched draft is withdrawn: the prospect answered (or said no), or the
# address bounced. Snoozes and waits leave a written draft alone: the rep sees it later.
_STALE = frozenset({Status.REPLIED, Status.EXCLUDED, Status.BOUNCED})


@dataclass(frozen=True, slots=True)
class DraftOutcome:
    """What happened to one (account, prospect, stage) draft in this run.

    `action`: "written", "found" (a crashed run had written it), "retracted", "sent",
    "dismissed", or "would write" (dry run). `draft` is the composed draft when one was.
    """

    account: str
    prospect: str
    stage: int
    action: str
    draft: Draft | None = None


def due(statuses: Iterable[ProspectStatus], now: datetime) -> list[ProspectStatus]:
    """The statuses whose next stage is due at `now`."""
    return [
        status
        for status in statuses
        if status.status in (Status.GHOSTED, Status.COLD)
        and status.next_stage is not None
        and status.next_action_at is not None
        and status.next_action_at <= now
    ]


@dataclass(frozen=True, slots=True)
class AccountDrafts:
    """The drafts step for one account at `now`: compose, reconcile, write."""

    store: Store
    config: Config
    account: AccountConfig
    playbooks: Playbooks
    now: datetime

    def preview(self, statuses: Sequence[ProspectStatus]) -> list[DraftOutcome]:
        """The drafts a run would write now, composed; nothing is written."""
        rows = _rows(self.store, self.account.name)
        outcomes = []
        for status in due(statuses, self.now):
            draft = self._compose(status)
            if draft.key not in rows:
                outcomes.append(
                    DraftOutcome(status.account, status.prospect, draft.stage, "would write", draft)
                )
        return outcomes

    def run(self, statuses: Sequence[ProspectStatus]) -> list[DraftOutcome]:
        """`reconcile_and_write` in a session of the account's own connector."""
        with open_connector(self.config, self.account) as connector:
            if not isinstance(connector, DraftFolder):
                raise UnsupportedKind(f"{self.account.kind} accounts cannot hold drafts")
            return self.reconcile_and_write(statuses, connector)

    def reconcile_and_write(
        self, statuses: Sequence[ProspectStatus], folder: DraftFolder
    ) -> list[DraftOutcome]:
        """Earlier drafts found sent, dismissed or retracted, then every due draft
        written. Connector errors propagate (the caller isolates the account); what was
        done before them is committed."""
        store, now = self.store, self.now
        account_id = store.ensure_account(self.account.name, self.account.kind)
        by_prospect = {status.prospect: status for status in statuses}
        present = folder.find_drafts()
        outcomes = [
            outcome
            for row in _rows(store, self.account.name).values()
            if (outcome := self._settle(row, by_prospect.get(row.prospect), present, folder))
        ]
        rows = _rows(store, self.account.name)  # a pending row never written is gone now
        for status in due(statuses, now):
            assert status.next_stage is not None
            key = draft_key(status.account, status.prospect, status.next_stage)
            if key in rows:
                continue  # drafted before: written, sent, dismissed or retracted
            draft = self._compose(status)
            if not _claim(store, account_id, draft, now):
                continue  # another worker has it
            stored = present.get(key) or folder.write_draft(key, draft.as_bytes())
            _mark(store, key, "written", now, stored)
            action = "found" if key in present else "written"
            outcomes.append(DraftOutcome(draft.account, draft.prospect, draft.stage, action, draft))
        return outcomes

    def _settle(
        self,
        row: Any,
        status: ProspectStatus | None,
        present: dict[str, StoredDraft],
        folder: DraftFolder,
    ) -> DraftOutcome | None:
        """An earlier draft's row brought up to date with the Drafts folder."""
        store, now = self.store, self.now
        found = present.get(row.key)
        outcome = None
        if row.state == "pending" and found is not None:
            _mark(store, row.key, "written", now, found)  # written by a run that then crashed
            outcome = "found"
        elif row.state == "pending":
            _forget(store, row.key)  # never written: due again, it is written afresh
        elif row.state == "written" and found is None:
            outcome = "sent" if _in_sent(store, row.account_id, row.message_id) else "dismissed"
            _mark(store, row.key, outcome, now)
        elif row.state == "written" and found is not None:
            untouched = found.digest == row.digest
            stale = status is not None and status.status in _STALE
            if self.config.drafts.retract_stale and untouched and stale:
                folder.delete_draft(found.remote_id)
                _mark(store, row.key, "retracted", now)
                outcome = "retracted"
        if outcome is None:
            return None
        return DraftOutcome(row.account, row.prospect, row.stage, outcome)

    def _compose(self, status: ProspectStatus) -> Draft:
        return compose(
            status,
            rep_name=self.account.rep_name,
            rep_address=self.account.addresses[0],
            signature=_signature(self.account, self.config),
            playbooks=self.playbooks,
            now=self.now,
            timezone=self.config.daemon.timezone,
        )


def format_draft(draft: Draft) -> str:
    """A draft as a person reads it: the headers a mail client shows, then the body."""
    lines = [
        f"From: {_named(draft.sender.name, draft.sender.email)}",
        f"To: {_named(draft.to.name, draft.to.email)}",
        f"Subject: {draft.subject}",
    ]
    if draft.in_reply_to is not None:
        lines.append(f"In-Reply-To: <{draft.in_reply_to}>")
    lines += [f"X-Relight-Key: {draft.key}  ({draft.playbook}, stage {draft.stage})", ""]
    return "\n".join(lines) + "\n" + draft.body.rstrip("\n")


def _signature(account: AccountConfig, config: Config) -> str:
    """The account's own signature, else `drafts.signature` ("": the rep's name)."""
    return account.signature if account.signature is not None else config.drafts.signature


def _named(name: str, email: str) -> str:
    return f"{name} <{email}>" if name else email


# -- the drafts table -------------------------------------------------------------------


def _rows(store: Store, account_name: str) -> dict[str, Any]:
    d, a = models.drafts, models.accounts
    query = (
        select(d, a.c.name.label("account"))
        .join(a, a.c.id == d.c.account_id)
        .where(a.c.name == account_name)
        .order_by(d.c.id)
    )
    with store.engine.connect() as connection:
        return {row.key: row for row in connection.execute(query)}


def _claim(store: Store, account_id: int, draft: Draft, now: datetime) -> bool:
    """Insert the pending row; False when the stage already has one."""
    with write_transaction(store.engine) as connection:
        # RETURNING says whether a row went in (PostgreSQL reports no rowcount with it).
        inserted = connection.execute(
            _insert(connection)
            .values(
                account_id=account_id,
                prospect=draft.prospect,
                stage=draft.stage,
                key=draft.key,
                message_id=draft.message_id,
                state="pending",
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(models.drafts.c.id)
        )
        return inserted.first() is not None


def _mark(
    store: Store, key: str, state: str, now: datetime, stored: StoredDraft | None = None
) -> None:
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if stored is not None:
        values |= {"remote_id": stored.remote_id, "digest": stored.digest, "folder": "Drafts"}
        if stored.message_id:  # EWS keeps its own Message-ID for a reply: find it by that
            values["message_id"] = stored.message_id
    with write_transaction(store.engine) as connection:
        connection.execute(update(models.drafts).where(models.drafts.c.key == key).values(**values))


def _forget(store: Store, key: str) -> None:
    with write_transaction(store.engine) as connection:
        connection.execute(models.drafts.delete().where(models.drafts.c.key == key))


def _in_sent(store: Store, account_id: int, message_id: str) -> bool:
    """Does the account's Sent folder hold a message with this Message-ID?"""
    m, loc, f = models.messages, models.message_locations, models.folders
    query = (
        select(m.c.id)
        .join(loc, loc.c.message_id == m.c.id)
        .join(f, f.c.id == loc.c.folder_id)
        .where(m.c.account_id == account_id, m.c.message_id == message_id, f.c.role == "sent")
        .limit(1)
    )
    with store.engine.connect() as connection:
        return connection.execute(query).first() is not None


def _insert(connection: Connection) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(models.drafts)
