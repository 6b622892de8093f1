"""From the store to the rules and back: the team's status at a moment.

The evaluation is a query and a fold: two streaming queries read every stored message of
the team (one for the messages with their folders, one for their To/Cc addresses, both in
message order), each row becomes a plain `rules.message.Message`, and `rules.status`
folds them into one `ProspectStatus` per (account, prospect). Nothing here decides
anything; it only translates rows and settings into the rules' frozen values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from connectors.base import MessageFacts
from daemon import models
from daemon.config import AccountConfig, Config
from daemon.store import Store
from rules.business_days import BusinessCalendar
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
from rules.status import ProspectStatus, evaluate

__all__ = [
    "classified_team_messages",
    "evaluate_team",
    "message_from_facts",
    "policy_from_config",
    "stored_messages",
    "team_from_config",
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
    team = team_from_config(config)
    statuses = evaluate(
        classified_team_messages(store, team), team, policy_from_config(config), now
    )
    return [status for status in statuses if account is None or status.account == account]


def classified_team_messages(store: Store, team: Team) -> list[ClassifiedMessage]:
    """Every stored message of the team's accounts, with its classification."""
    classified: list[ClassifiedMessage] = []
    for view in team.accounts:
        classified += classify_account(view, stored_messages(store, view.name))
    return classified


def stored_messages(store: Store, account_name: str) -> Iterator[Message]:
    """The account's stored messages as rules values, streamed in message order."""
    m, loc, fold, acc, addr = (
        models.messages,
        models.message_locations,
        models.folders,
        models.accounts,
        models.message_addresses,
    )
    rank = func.max(case(_FOLDER_RANK, value=fold.c.role, else_=0)).label("rank")
    message_query = (
        select(m, rank)
        .join(loc, loc.c.message_id == m.c.id)
        .join(fold, fold.c.id == loc.c.folder_id)
        .join(acc, acc.c.id == m.c.account_id)
        .where(acc.c.name == account_name)
        .group_by(m.c.id)
        .order_by(m.c.id)
    )
    address_query = (
        select(addr.c.message_id, addr.c.role, addr.c.email, addr.c.name)
        .join(m, m.c.id == addr.c.message_id)
        .join(acc, acc.c.id == m.c.account_id)
        .where(acc.c.name == account_name, addr.c.role.in_(("to", "cc")))
        .order_by(addr.c.message_id)
    )
    with store.engine.connect() as connection:
        rows = connection.execution_options(yield_per=2000).execute(message_query)
        addresses = iter(connection.execution_options(yield_per=2000).execute(address_query))
        pending = next(addresses, None)
        for row in rows:
            recipients: dict[str, list[Address]] = {"to": [], "cc": []}
            while pending is not None and pending.message_id <= row.id:
                if pending.message_id == row.id:
                    recipients[pending.role].append(Address(pending.email, pending.name or ""))
                pending = next(addresses, None)
            message = _message(row, recipients)
            if message is not None:
                yield message


def _message(row: Any, recipients: dict[str, list[Address]]) -> Message | None:
    at: datetime | None = row.at
    if at is None:
        return None  # neither a Date header nor an arrival time: nothing to place in time
    references = tuple(row.reference_ids.split())
    report = None
    if row.report_type:
        report = DeliveryReport(
            report_type=row.report_type,
            action=row.report_action,
            recipients=tuple((row.report_recipients or "").split()),
        )
    sender = Address(row.from_email, row.from_name or "") if row.from_email else None
    return Message(
        at=at,
        folder=_RANK_FOLDER[row.rank],
        message_id=row.message_id,
        in_reply_to=row.in_reply_to,
        references=references,
        sender=sender,
        to=tuple(recipients["to"]),
        cc=tuple(recipients["cc"]),
        subject=row.subject or "",
        thread_id=row.thread_id,
        headers=tuple((name, value) for name, value in json.loads(row.headers or "[]")),
        excerpt=row.excerpt,
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
