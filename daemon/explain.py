"""`relight explain ADDRESS`: a prospect's timeline and why the status is what it is.

For a person, not a program: every message of the team that involves the address (from
it, to it, from a colleague at its company, a bounce naming it), oldest first, with the
direction, the account, how it was classified and by which rule; then, per account that
wrote to the address, each status rule in precedence order and whether it holds (the
first that holds decides; later ones are shown in parentheses), and the status and
reason that follow. Message text is never shown, only header facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from daemon.config import Config
from daemon.evaluation import classified_team_messages, policy_from_config, team_from_config
from daemon.store import Store
from rules.classify import Kind
from rules.companies import company_of
from rules.prospects import AccountView, ClassifiedMessage, Ledger, Policy, is_outbound
from rules.status import decide, rule_trace
from rules.subjects import base_subject

__all__ = ["explain"]


def explain(store: Store, config: Config, address: str, now: datetime) -> str:
    address = address.strip().lower()
    team = team_from_config(config)
    policy = policy_from_config(config)
    zone = ZoneInfo(config.daemon.timezone)
    messages = classified_team_messages(store, team)
    ledger = Ledger.fold(messages, team, policy)
    company = company_of(address, policy.freemail_domains)
    involved = [item for item in messages if _involves(item, address, company, policy)]
    lines = [f"{address}  (company: {company}; evaluated at {_when(now, zone)})", ""]
    lines += _timeline(involved, team.by_name, zone) or ["  no stored message involves it"]
    accounts = [name for name, prospect in ledger.prospects() if prospect == address]
    if not accounts:
        lines += ["", _not_a_prospect(address, ledger, involved)]
    for account in accounts:
        facts = ledger.facts(account, address)
        status = decide(facts, policy, now)
        lines += ["", f"account {account}: {status.status}", f"  {status.reason}"]
        # Rules in precedence order: the first that holds decides; the ones after it
        # are shown for completeness but no longer matter.
        decided = False
        for name, holds, why in rule_trace(facts, policy, now):
            verdict = ("yes" if holds else "no") if not decided else ("(yes)" if holds else "(no)")
            marker = "  <- decides" if holds and not decided else ""
            lines.append(f"  {verdict:<5}  {name:<10} {why}{marker}")
            decided = decided or holds
    return "\n".join(lines)


def _involves(item: ClassifiedMessage, address: str, company: str, policy: Policy) -> bool:
    message = item.message
    sender = message.sender.email if message.sender else None
    if sender == address or address in {a.email for a in message.recipients}:
        return True
    if address in item.classification.failed_recipients:
        return True
    # a freemail address is its own company, so only a real company domain matches here
    return (
        sender is not None
        and "@" not in company
        and company_of(sender, policy.freemail_domains) == company
    )


def _timeline(
    involved: Sequence[ClassifiedMessage], accounts: Mapping[str, AccountView], zone: ZoneInfo
) -> list[str]:
    lines = []
    for item in sorted(involved, key=lambda item: item.at):
        message = item.message
        view = accounts[item.account]
        direction = "out" if is_outbound(message, view.addresses) else "in "
        if message.folder.value == "drafts":
            direction = "dft"
        sender = message.sender.email if message.sender else "(no From)"
        kind = item.classification.kind
        verdict = "genuine" if kind == Kind.GENUINE else f"{kind}: {item.classification.reason}"
        subject = base_subject(message.subject) or "(no subject)"
        lines.append(
            f"  {_when(message.at, zone)}  {item.account:<10} {direction} {sender:<30} "
            f'"{subject[:40]}"  {verdict}'
        )
    return lines


def _not_a_prospect(address: str, ledger: Ledger, involved: Sequence[ClassifiedMessage]) -> str:
    if ledger.is_internal(address):
        return "not a prospect: an internal address (own domains or rules.internal_domains)"
    if not involved:
        return "not a prospect: no stored message to or from this address (run `relight sync`)"
    return (
        "not a prospect: no account sent it a genuine message "
        "(only mail from it, automatic mail, or drafts)"
    )


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")
