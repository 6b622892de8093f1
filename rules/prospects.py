"""Grouping: one pass over a team's messages into the facts about each (account, prospect).

`rules.status` decides a status from a `ProspectFacts`; this module builds them. The
inputs are frozen values: the `Team` (its accounts, each with its own addresses and
domains), the `Policy` (`[rules]` of the configuration, the stage plan and the business
calendar) and `ClassifiedMessage`s: a `Message`, the account whose mailbox holds it, and
its `Classification` (the daemon caches those in the store; `classify_account` computes
them when it does not). Theory of operation:

* **One fold.** `Ledger.fold` reads every message once and files it by what it is: a
  genuine outbound message under each prospect it was written to, a genuine inbound one
  under its sender (and the sender's company), an out-of-office or calendar response
  under its sender, a hard bounce under each failed recipient. Everything a prospect's
  status needs is then a few dictionary look-ups: 100,000 messages take well under a
  second, and no prospect re-reads the mailbox.
* **Direction.** Outbound: the Sent folder, or From one of the account's own addresses
  (the rep's own copy of its message in INBOX is outbound, and counted once: copies of
  one Message-ID in one account are one message). The Drafts folder is neither.
* **Prospects.** An external address in To/Cc of a genuine outbound message: not one of
  the team's addresses, not internal (the team's own domains, freemail excluded, and
  `internal_domains`, subdomains included), not a machine (mailer-daemon, no-reply, ...),
  not a mailing list (the address a List-Id names).
* **Which replies count** (SPEC section 3). The prospect's own genuine messages in the
  account's mailbox, at any time. Also, from the rep's first message to the prospect on:
  with `team_replies` their genuine messages to any account of the team, and with
  `group_by = "company"` a genuine message from anyone at the same company (freemail
  addresses are each their own company). The "from the first message on" keeps a
  colleague's mail of two years ago from making a cold prospect look engaged.
* **Calendar responses** (accepted, declined, tentative) are engagement but not a reply:
  the rep owes no answer to a calendar click, so they never make `replied`, but they
  show that the prospect is alive and the wait restarts from them (`last_engagement_at`).
  Read receipts and delivery delays are nothing at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, NamedTuple

from rules.business_days import BusinessCalendar
from rules.classify import Classification, Kind, classify
from rules.companies import (
    DoNotContact,
    company_of,
    domain_of,
    is_automated_address,
    is_freemail,
    is_internal,
)
from rules.message import Address, Folder, Message
from rules.stages import DEFAULT_STAGE_PLAN, StagePlan

__all__ = [
    "AccountView",
    "ClassifiedMessage",
    "GroupBy",
    "Ledger",
    "Policy",
    "ProspectFacts",
    "Snooze",
    "Team",
    "classify_account",
    "is_outbound",
]

GroupBy = Literal["company", "contact"]


@dataclass(frozen=True, slots=True)
class AccountView:
    """One rep's mailbox as the rules see it: its name, own addresses and own domains.

    `domains` defaults to the domains of `addresses`, freemail domains left out (a rep
    writing from gmail.com does not make every gmail.com address a colleague).
    """

    name: str
    addresses: frozenset[str]
    domains: frozenset[str] = frozenset()
    rep_name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an account needs a name")
        addresses = frozenset(address.strip().lower() for address in self.addresses)
        if not addresses or not all(domain_of(address) for address in addresses):
            raise ValueError(f"account {self.name!r} needs one or more addresses")
        object.__setattr__(self, "addresses", addresses)
        domains = frozenset(domain.strip().lower().lstrip("@") for domain in self.domains)
        if not domains:
            domains = frozenset(
                domain_of(address) for address in addresses if not is_freemail(domain_of(address))
            )
        object.__setattr__(self, "domains", domains)


@dataclass(frozen=True, slots=True)
class Team:
    """The accounts evaluated together; their mail counts for each other (`team_replies`)."""

    accounts: tuple[AccountView, ...]
    by_name: Mapping[str, AccountView] = field(init=False, repr=False, compare=False)
    addresses: frozenset[str] = field(init=False, repr=False, compare=False)
    domains: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        accounts = tuple(self.accounts)
        by_name = {account.name: account for account in accounts}
        if not accounts or len(by_name) != len(accounts):
            raise ValueError("a team needs one or more accounts with distinct names")
        object.__setattr__(self, "accounts", accounts)
        object.__setattr__(self, "by_name", by_name)
        object.__setattr__(self, "addresses", frozenset().union(*(a.addresses for a in accounts)))
        object.__setattr__(self, "domains", frozenset().union(*(a.domains for a in accounts)))

    def account(self, name: str) -> AccountView:
        try:
            return self.by_name[name]
        except KeyError:
            raise ValueError(f"no account named {name!r} in the team") from None


class Snooze(NamedTuple):
    """No drafts to `address` (or every address of an "@domain") before `until`.

    The same shape as `daemon.config.Snooze`, whose values can be passed as they are.
    """

    address: str
    until: date


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The `[rules]` and `[privacy]` settings the evaluation reads, as plain values."""

    calendar: BusinessCalendar
    plan: StagePlan = DEFAULT_STAGE_PLAN
    group_by: GroupBy = "company"
    team_replies: bool = True
    internal_domains: frozenset[str] = frozenset()
    freemail_domains: frozenset[str] = frozenset()
    do_not_contact: tuple[str, ...] = ()
    draft_cold: bool = False
    snoozes: tuple[Snooze, ...] = ()
    excerpt_chars: int = 500
    blocked: DoNotContact = field(init=False, repr=False, compare=False)
    snoozed_until: Mapping[str, date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.group_by not in ("company", "contact"):
            raise ValueError(f"group_by must be 'company' or 'contact', not {self.group_by!r}")
        if self.excerpt_chars < 0:
            raise ValueError("excerpt_chars must not be negative")
        lower = frozenset(domain.strip().lower().lstrip("@") for domain in self.internal_domains)
        object.__setattr__(self, "internal_domains", lower)
        freemail = frozenset(domain.strip().lower() for domain in self.freemail_domains)
        object.__setattr__(self, "freemail_domains", freemail)
        object.__setattr__(self, "do_not_contact", tuple(self.do_not_contact))
        object.__setattr__(self, "blocked", DoNotContact(self.do_not_contact))
        snoozes = tuple(Snooze(*snooze) for snooze in self.snoozes)
        object.__setattr__(self, "snoozes", snoozes)
        until: dict[str, date] = {}
        for snooze in snoozes:
            key = snooze.address.strip().lower()
            until[key] = max(until.get(key, snooze.until), snooze.until)
        object.__setattr__(self, "snoozed_until", until)

    def snooze_of(self, address: str) -> tuple[str, date] | None:
        """The admin snooze covering `address` (its entry and until-date), or None."""
        if address in self.snoozed_until:
            return address, self.snoozed_until[address]
        domain = domain_of(address)
        while domain:
            if "@" + domain in self.snoozed_until:
                return "@" + domain, self.snoozed_until["@" + domain]
            domain = domain.partition(".")[2]
        return None


@dataclass(frozen=True, slots=True)
class ClassifiedMessage:
    """A message, the account whose mailbox holds it, and what wrote it."""

    account: str
    message: Message
    classification: Classification

    @property
    def at(self) -> datetime:
        return self.message.at


def is_outbound(message: Message, own_addresses: frozenset[str]) -> bool:
    """Sent folder, or From an own address; never a draft (SPEC section 2)."""
    if message.folder is Folder.DRAFTS:
        return False
    if message.folder is Folder.SENT:
        return True
    return message.sender is not None and message.sender.email in own_addresses


def classify_account(account: AccountView, messages: Iterable[Message]) -> list[ClassifiedMessage]:
    """Classify one account's messages, for callers that have no cached classification.

    The rep's own Message-IDs (its outbound mail) are collected first, so that a reply
    to the rep through a list still counts as a person's (`rules.classify`).
    """
    listed = list(messages)
    rep_ids = frozenset(
        message.message_id
        for message in listed
        if message.message_id is not None and is_outbound(message, account.addresses)
    )
    return [
        ClassifiedMessage(account.name, message, classify(message, account.addresses, rep_ids))
        for message in listed
    ]


@dataclass(frozen=True, slots=True)
class ProspectFacts:
    """What the mail says about one (account, prospect), for `rules.status` to decide on.

    `sent`: the genuine outbound messages to the prospect, oldest first.
    `latest_reply`: the latest genuine inbound message that counts as a reply (from the
    prospect, a colleague, or to a teammate; see the module docstring).
    `prospect_replies`: the prospect's own counted replies, newest first (their words).
    `last_engagement_at`: the latest counted reply or calendar response, whichever is later.
    `calendar_response`: the latest counted calendar response from the prospect.
    `out_of_office`: auto-replies from the prospect after the latest outbound message.
    `bounce`: a hard bounce of the latest outbound message naming the prospect.
    """

    account: AccountView
    prospect: str
    name: str
    company: str
    sent: tuple[ClassifiedMessage, ...]
    latest_reply: ClassifiedMessage | None
    prospect_replies: tuple[ClassifiedMessage, ...]
    calendar_response: ClassifiedMessage | None
    out_of_office: tuple[ClassifiedMessage, ...]
    bounce: ClassifiedMessage | None

    @property
    def first_sent(self) -> ClassifiedMessage:
        return self.sent[0]

    @property
    def latest_sent(self) -> ClassifiedMessage:
        return self.sent[-1]

    @property
    def last_engagement_at(self) -> datetime | None:
        moments = [
            item.at for item in (self.latest_reply, self.calendar_response) if item is not None
        ]
        return max(moments, default=None)


def _later(current: ClassifiedMessage | None, candidate: ClassifiedMessage) -> ClassifiedMessage:
    return candidate if current is None or candidate.at >= current.at else current


class Ledger:
    """The fold of a team's messages: every fact filed under whom it is about.

    Build with `Ledger.fold`; read with `prospects()` and `facts(account, prospect)`.
    `genuine_by_account` keeps each account's genuine, non-draft messages (one per
    Message-ID) for threading.
    """

    def __init__(self, team: Team, policy: Policy) -> None:
        self.team = team
        self.policy = policy
        self._seen: set[tuple[str, str]] = set()
        self._internal: dict[str, bool] = {}
        self._candidate: dict[str, bool] = {}  # may this recipient be a prospect?
        self._company: dict[str, str] = {}
        self.genuine_by_account: dict[str, list[Message]] = defaultdict(list)
        # (account, prospect) -> genuine outbound messages to them, in input order
        self._sent: dict[tuple[str, str], list[ClassifiedMessage]] = defaultdict(list)
        # replies: per (sender, account) and (group key, account) the latest; per sender all
        self._latest_by_sender: dict[tuple[str, str], ClassifiedMessage] = {}
        self._latest_by_group: dict[tuple[str, str], ClassifiedMessage] = {}
        self._replies: dict[str, list[ClassifiedMessage]] = defaultdict(list)
        self._calendar: dict[str, list[ClassifiedMessage]] = defaultdict(list)
        self._out_of_office: dict[str, list[ClassifiedMessage]] = defaultdict(list)
        self._bounces: dict[tuple[str, str], list[ClassifiedMessage]] = defaultdict(list)
        self._lists: set[str] = set()  # List-Id values, as "local.domain"

    @classmethod
    def fold(cls, items: Iterable[ClassifiedMessage], team: Team, policy: Policy) -> Ledger:
        ledger = cls(team, policy)
        ledger.add(items)
        return ledger

    # -- the fold -----------------------------------------------------------------

    def add(self, items: Iterable[ClassifiedMessage]) -> None:
        """File messages; copies of a Message-ID already filed for its account are skipped.

        The hot loop of an evaluation (once per message), hence the local names.
        """
        accounts, seen, genuine = self.team.by_name, self._seen, self.genuine_by_account
        for item in items:
            message = item.message
            folder = message.folder
            if folder is Folder.DRAFTS:
                continue
            account = accounts.get(item.account)
            if account is None:
                raise ValueError(f"no account named {item.account!r} in the team")
            if message.message_id is not None:
                key = (item.account, message.message_id)
                if key in seen:
                    continue
                seen.add(key)
            kind = item.classification.kind
            sender = message.sender
            outbound = folder is Folder.SENT or (
                sender is not None and sender.email in account.addresses
            )
            if kind is Kind.GENUINE:
                genuine[item.account].append(message)
                if outbound:
                    self._add_outbound(item)
                elif sender is not None and not self.is_internal(sender.email):
                    self._add_reply(item, sender.email)
            elif not outbound:
                self._add_automatic(item, kind)

    def _add_outbound(self, item: ClassifiedMessage) -> None:
        message, sent, candidates = item.message, self._sent, self._candidate
        written: set[str] = set()
        for recipient in message.recipients:
            email = recipient.email
            candidate = candidates.get(email)
            if candidate is None:
                candidate = not self.is_internal(email) and not is_automated_address(email)
                candidates[email] = candidate
            if not candidate or email in written:
                continue
            written.add(email)
            sent[(item.account, email)].append(item)

    def _add_reply(self, item: ClassifiedMessage, sender: str) -> None:
        at, account = item.message.at, item.account
        key = (sender, account)
        latest = self._latest_by_sender.get(key)
        if latest is None or at >= latest.message.at:
            self._latest_by_sender[key] = item
        group = (self.group_of(sender), account)
        latest = self._latest_by_group.get(group)
        if latest is None or at >= latest.message.at:
            self._latest_by_group[group] = item
        self._replies[sender].append(item)

    def _add_automatic(self, item: ClassifiedMessage, kind: Kind) -> None:
        message, account = item.message, item.account
        if kind is Kind.BOUNCE:
            for recipient in item.classification.failed_recipients:
                self._bounces[(account, recipient)].append(item)
            return
        if kind is Kind.BULK:
            list_id = message.header("list-id")
            if list_id is not None:
                self._lists.add(_list_address_key(list_id))
            return
        sender = message.sender.email if message.sender is not None else None
        if sender is None or self.is_internal(sender):
            return
        if kind is Kind.AUTO_REPLY:
            self._out_of_office[sender].append(item)
        elif kind is Kind.CALENDAR:
            self._calendar[sender].append(item)

    # -- classification of addresses ----------------------------------------------

    def is_internal(self, address: str) -> bool:
        """One of the team's addresses, or in its own or `internal_domains` (cached)."""
        known = self._internal.get(address)
        if known is None:
            known = address in self.team.addresses or is_internal(
                address, self.team.domains, self.policy.internal_domains
            )
            self._internal[address] = known
        return known

    def group_of(self, address: str) -> str:
        """Whose replies count together: the company, or the address with group_by contact."""
        if self.policy.group_by == "contact":
            return address
        company = self._company.get(address)
        if company is None:
            company = company_of(address, self.policy.freemail_domains)
            self._company[address] = company
        return company

    # -- reading ------------------------------------------------------------------

    def prospects(self) -> list[tuple[str, str]]:
        """Every (account, prospect), sorted; mailing-list addresses left out."""
        return sorted(key for key in self._sent if key[1].replace("@", ".", 1) not in self._lists)

    def facts(self, account_name: str, prospect: str) -> ProspectFacts:
        """The facts about one (account, prospect) from `prospects()`."""
        account = self.team.account(account_name)
        sent = tuple(sorted(self._sent[(account_name, prospect)], key=_moment))
        first_at, latest = sent[0].at, sent[-1]
        accounts = (
            [a.name for a in self.team.accounts] if self.policy.team_replies else [account_name]
        )

        def counts(item: ClassifiedMessage) -> bool:
            """The prospect's own mail to this account always; the rest from `first_at` on."""
            if item.account not in accounts:
                return False
            return item.at >= first_at or (
                item.account == account_name and _sender(item) == prospect
            )

        group = self.group_of(prospect)
        candidates = [self._latest_by_sender.get((prospect, account_name))]
        candidates += [self._latest_by_group.get((group, name)) for name in accounts]
        latest_reply: ClassifiedMessage | None = None
        for candidate in candidates:
            # The latest of a group before `first_at` means none of the group's counts.
            if candidate is not None and counts(candidate):
                latest_reply = _later(latest_reply, candidate)
        replies = tuple(
            sorted(
                (item for item in self._replies.get(prospect, ()) if counts(item)),
                key=_moment,
                reverse=True,
            )
        )
        calendar = None
        for item in self._calendar.get(prospect, ()):
            if counts(item):
                calendar = _later(calendar, item)
        out_of_office = tuple(
            sorted(
                (
                    item
                    for item in self._out_of_office.get(prospect, ())
                    if item.account in accounts and item.at >= latest.at
                ),
                key=_moment,
            )
        )
        return ProspectFacts(
            account=account,
            prospect=prospect,
            name=self.name_of(prospect, sent),
            company=company_of(prospect, self.policy.freemail_domains),
            sent=sent,
            latest_reply=latest_reply,
            prospect_replies=replies,
            calendar_response=calendar,
            out_of_office=out_of_office,
            bounce=self._bounce_of(account_name, prospect, latest),
        )

    def name_of(self, address: str, sent: Iterable[ClassifiedMessage] = ()) -> str:
        """The name the person last signed with, else the one the rep last wrote (`sent`,
        oldest first). Read here, for prospects only, rather than for every message."""
        signed = [item for item in self._replies.get(address, ()) if _name(item.message.sender)]
        if signed:
            return _name(max(signed, key=_moment).message.sender)
        for item in reversed(list(sent)):
            for recipient in item.message.recipients:
                if recipient.email == address and recipient.name:
                    return recipient.name
        return ""

    def _bounce_of(
        self, account_name: str, prospect: str, latest: ClassifiedMessage
    ) -> ClassifiedMessage | None:
        """A hard bounce naming the prospect that came after (or refers to) `latest`."""
        latest_id = latest.message.message_id
        found = None
        for bounce in self._bounces.get((account_name, prospect), ()):
            message = bounce.message
            refers = latest_id is not None and (
                message.in_reply_to == latest_id or latest_id in message.references
            )
            if refers or bounce.at >= latest.at:
                found = _later(found, bounce)
        return found


def _moment(item: ClassifiedMessage) -> datetime:
    return item.message.at


def _sender(item: ClassifiedMessage) -> str | None:
    sender = item.message.sender
    return sender.email if sender is not None else None


def _name(address: Address | None) -> str:
    return address.name if address is not None else ""


def _list_address_key(list_id: str) -> str:
    """ "Dev list <dev.lists.example.org>" -> "dev.lists.example.org" (lower-case)."""
    value = list_id.strip()
    if "<" in value and ">" in value:
        value = value[value.rindex("<") + 1 : value.rindex(">")]
    return value.strip().lower()
