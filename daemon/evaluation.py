"""From the store to the rules and back: the team's status at a moment.

The evaluation is a query and a fold: three queries read every stored message of the
team (each message's folders into a dict; then, streamed in message order, the messages
and their To/Cc addresses), each row becomes a plain `rules.message.Message`, and
`rules.status` folds them into one `Verdict` per (account, prospect), which the clock
turns into a `ProspectStatus`. The verdicts are kept in the store (`daemon.verdicts`)
until the mail or the settings change, so most reports only read them. Nothing here
decides anything; it only translates rows and settings into the rules' frozen values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Text, select, type_coerce

from connectors.base import MessageFacts
from daemon import models, verdicts
from daemon.config import AccountConfig, Config
from daemon.store import Store
from rules.business_days import BusinessCalendar
from rules.elapsed import ElapsedBusinessDays
from rules.message import Address, DeliveryReport, Folder, Message
from rules.prospects import (
    AccountView,
    ClassifiedMessage,
    Policy,
    Snooze,
    Team,
    classify_account,
)
from rules.stages import StagePlan
from rules.status import ProspectStatus, Verdict, settle_all

__all__ = [
    "classified_team_messages",
    "evaluate_team",
    "message_from_facts",
    "policy_from_config",
    "stored_messages",
    "team_from_config",
    "team_verdicts",
]

# A message in several folders is the rep's sent mail if any copy is in Sent; a copy only
# in Drafts was never sent. The rank picks the folder that decides.
_FOLDER_RANK = {"sent": 3, "inbox": 2, "drafts": 1}
_RANK_FOLDER = {rank: Folder(role) for role, rank in _FOLDER_RANK.items()}


def team_from_config(config: Config, accounts: Sequence[AccountConfig] | None = None) -> Team:
    chosen = config.accounts if accounts is None else accounts
    return Team(
        tuple(
            AccountView(
                name=account.name,
                addresses=frozenset(account.addresses),
                rep_name=account.rep_name,
            )
            for account in chosen
        )
    )


def policy_from_config(config: Config) -> Policy:
    rules = config.rules
    calendar = BusinessCalendar.from_settings(config.daemon.timezone, rules.holidays)
    return Policy(
        calendar=calendar,
        plan=StagePlan(
            [(stage.after_business_days, stage.playbook) for stage in rules.stages],
            rules.max_followups,
        ),
        group_by=rules.group_by,
        team_replies=rules.team_replies,
        internal_domains=frozenset(rules.internal_domains),
        freemail_domains=frozenset(rules.freemail_domains),
        do_not_contact=tuple(rules.do_not_contact),
        draft_cold=rules.draft_cold,
        snoozes=tuple(Snooze(entry.address, entry.until) for entry in rules.snooze),
        excerpt_chars=config.privacy.excerpt_chars,
    )


def evaluate_team(
    store: Store, config: Config, now: datetime, *, account: str | None = None
) -> list[ProspectStatus]:
    """Every (account, prospect) status at `now`; `account` narrows the rows shown, while
    the whole team's mail still counts (`rules.team_replies`)."""
    clock = ElapsedBusinessDays(
        BusinessCalendar.from_settings(config.daemon.timezone, config.rules.holidays), now
    )
    return [
        verdict.at(clock)
        for verdict in team_verdicts(store, config)
        if account is None or verdict.account == account
    ]


def team_verdicts(store: Store, config: Config) -> list[Verdict]:
    """The verdict on every (account, prospect) of the team: the ones the store keeps
    when the mail and the settings are unchanged since, else evaluated now and kept."""
    key = verdicts.team_key(config)
    revisions = store.revisions([account.name for account in config.accounts])
    kept = verdicts.load(store, key, revisions)
    if kept is not None:
        return kept
    team = team_from_config(config)
    fresh = settle_all(classified_team_messages(store, team), team, policy_from_config(config))
    verdicts.save(store, key, revisions, fresh, evaluated_at=datetime.now(UTC))
    return fresh


def classified_team_messages(store: Store, team: Team) -> list[ClassifiedMessage]:
    """Every stored message of the team's accounts, with its classification."""
    classified: list[ClassifiedMessage] = []
    for view in team.accounts:
        classified += classify_account(view, stored_messages(store, view.name))
    return classified


def stored_messages(store: Store, account_name: str) -> Iterator[Message]:
    """The account's stored messages as rules values, streamed in message order.

    Three queries instead of one JOIN + GROUP BY: each message's deciding folder (the
    locations, into a dict), the messages (only the columns the rules read) and their
    To/Cc addresses, both in message order. Rows repeat a lot (the same correspondents,
    the same few header sets), so equal addresses and header tuples are built once and
    shared: less to build and less to keep.
    """
    m, loc, fold, acc, addr = (
        models.messages,
        models.message_locations,
        models.folders,
        models.accounts,
        models.message_addresses,
    )
    # SQLite keeps a UtcDateTime as ISO text in UTC; reading the text and parsing it here
    # does what the type's result processing does, without its per-row call chain.
    raw_times = store.engine.dialect.name == "sqlite"
    at_column = type_coerce(m.c.at, Text) if raw_times else m.c.at
    message_query = (
        select(
            m.c.id,
            at_column,
            m.c.message_id,
            m.c.in_reply_to,
            m.c.reference_ids,
            m.c.subject,
            m.c.from_email,
            m.c.from_name,
            m.c.thread_id,
            m.c.headers,
            m.c.excerpt,
            m.c.report_type,
            m.c.report_action,
            m.c.report_recipients,
        )
        .where(m.c.account_id == acc.c.id, acc.c.name == account_name)
        .order_by(m.c.id)
    )
    location_query = (
        select(loc.c.message_id, fold.c.role)
        .join(fold, fold.c.id == loc.c.folder_id)
        .join(acc, acc.c.id == fold.c.account_id)
        .where(acc.c.name == account_name)
    )
    address_query = (
        select(addr.c.message_id, addr.c.role, addr.c.email, addr.c.name)
        .join(m, m.c.id == addr.c.message_id)
        .join(acc, acc.c.id == m.c.account_id)
        .where(acc.c.name == account_name, addr.c.role.in_(("to", "cc")))
        .order_by(addr.c.message_id)
    )
    shared = _Shared()
    with store.engine.connect() as connection:
        ranks: dict[int, int] = {}
        for message_row_id, role in connection.execute(location_query):
            rank = _FOLDER_RANK.get(role, 0)
            if rank > ranks.get(message_row_id, -1):
                ranks[message_row_id] = rank
        # Whole batches, flattened: iterating a result row by row costs a few calls each.
        rows = chain.from_iterable(
            connection.execution_options(yield_per=2000).execute(message_query).partitions()
        )
        addresses = chain.from_iterable(
            connection.execution_options(yield_per=2000).execute(address_query).partitions()
        )
        pending = next(addresses, None)
        for row in rows:
            row_id = row[0]
            recipients: dict[str, list[Address]] = {"to": [], "cc": []}
            while pending is not None and pending[0] <= row_id:
                if pending[0] == row_id:
                    recipients[pending[1]].append(shared.address(pending[2], pending[3] or ""))
                pending = next(addresses, None)
            folder_rank = ranks.get(row_id)
            if folder_rank is None:
                continue  # in no folder any more: not the account's mail
            message = _message(row, folder_rank, recipients, shared, raw_times=raw_times)
            if message is not None:
                yield message


class _Shared:
    """One `Address` per (email, name) and one headers tuple per stored JSON text."""

    def __init__(self) -> None:
        self._addresses: dict[tuple[str, str], Address] = {}
        self._headers: dict[str, tuple[tuple[str, str], ...]] = {}

    def address(self, email: str, name: str) -> Address:
        key = (email, name)
        found = self._addresses.get(key)
        if found is None:
            found = self._addresses[key] = Address(email, name)
        return found

    def headers(self, text: str) -> tuple[tuple[str, str], ...]:
        found = self._headers.get(text)
        if found is None:
            found = tuple((name, value) for name, value in json.loads(text))
            self._headers[text] = found
        return found


def _utc(text: str) -> datetime:
    """A stored UtcDateTime's text as `models.UtcDateTime` returns it: aware, in UTC."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _message(
    row: Any,
    rank: int,
    recipients: dict[str, list[Address]],
    shared: _Shared,
    *,
    raw_times: bool,
) -> Message | None:
    (
        _row_id,
        stored_at,
        message_id,
        in_reply_to,
        reference_ids,
        subject,
        from_email,
        from_name,
        thread_id,
        headers,
        excerpt,
        report_type,
        report_action,
        report_recipients,
    ) = row
    if stored_at is None:
        return None  # neither a Date header nor an arrival time: nothing to place in time
    at: datetime = _utc(stored_at) if raw_times else stored_at
    report = None
    if report_type:
        report = DeliveryReport(
            report_type=report_type,
            action=report_action,
            recipients=tuple((report_recipients or "").split()),
        )
    return Message(
        at=at,
        folder=_RANK_FOLDER[rank],
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=tuple(reference_ids.split()),
        sender=shared.address(from_email, from_name or "") if from_email else None,
        to=tuple(recipients["to"]),
        cc=tuple(recipients["cc"]),
        subject=subject or "",
        thread_id=thread_id,
        headers=shared.headers(headers or "[]"),
        excerpt=excerpt,
        report=report,
    )


def message_from_facts(facts: MessageFacts, folder: Folder = Folder.INBOX) -> Message | None:
    """A connector's facts as a rules value (None when the message has no time at all)."""
    at = facts.date or facts.received_at
    if at is None:
        return None
    report = (
        DeliveryReport(facts.report.report_type, facts.report.action, facts.report.recipients)
        if facts.report is not None
        else None
    )
    sender = Address(facts.sender.email, facts.sender.name) if facts.sender else None
    return Message(
        at=at,
        folder=folder,
        message_id=facts.message_id,
        in_reply_to=facts.in_reply_to,
        references=facts.references,
        sender=sender,
        to=tuple(Address(a.email, a.name) for a in facts.to),
        cc=tuple(Address(a.email, a.name) for a in facts.cc),
        subject=facts.subject,
        thread_id=facts.thread_id,
        headers=facts.headers,
        excerpt=facts.excerpt,
        report=report,
    )
