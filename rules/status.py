"""Who owes whom a reply: the status of every (account, prospect) (SPEC sections 3 and 5).

`evaluate(messages, team, policy, now)` is the entry point: it folds the team's classified
messages once (`rules.prospects.Ledger`), threads each account's genuine mail once
(`rules.threading`), and decides one `ProspectStatus` per (account, prospect): the SPEC
section 7 report fields, plus what a follow-up draft needs (the conversation, the message
to reply to, the prospect's last words and the commitment in them). Nothing reads the
clock: `now` is an argument.

Theory of operation. The status is computed from the mail, in two steps: `settle` reads
a prospect's facts into a `Verdict`, everything the mail decides, the same at any time;
`Verdict.at(clock)` adds the clock, which only picks among snoozed, ghosted and awaiting
and counts the business days a reason names. What moves a prospect from one state to the
next is a message (a new verdict) or the clock (the same verdict, later). The daemon keeps
the verdicts of the last evaluation in its store, so a report reads them instead of
the mail.
n is `followups_sent`: the genuine outbound messages since the prospect's last reply or
calendar response, minus one; wait(k) is stage k's `after_business_days`.

                 rep writes; the prospect never wrote
      (start) ------------------------------------------------> COLD
         |                                                        |
         | the prospect writes (first, or back)                   | the prospect answers
         v                                                        v
      REPLIED --- rep answers (n = 0) ---> AWAITING --- wait(n+1) over ---> GHOSTED
         ^                                  |    ^ ^                          |
         |            out-of-office, admin  |    | +-- rep sends follow-up ---+
         |            snooze (return ahead) v    | pause over     (n + 1 < max)
         |                                 SNOOZED
         |                                                rep sends follow-up n + 1 = max
         +-- the prospect answers (from any state) -- EXHAUSTED <-------------------------

      From any state: the rep's latest message to the address hard-bounces -> BOUNCED;
      do-not-contact, or the latest reply says no ("went with another vendor") -> EXCLUDED.

    event                                             status afterwards
    ------------------------------------------------  -----------------------------------
    rep writes, the prospect never wrote              cold (a stage only with draft_cold)
    a genuine reply (any thread, team, company)       replied
    rep answers / follows up, n < max_followups       awaiting (stage n + 1, its wait)
    the stage's wait elapses in business days         ghosted (draft due)
    an out-of-office or admin snooze, still ahead     snoozed (due >= its end)
    rep's follow-up makes n == max_followups          exhausted (no more drafts)
    a hard bounce of the rep's latest message         bounced (no drafts)
    do-not-contact entry, or a reply that says no     excluded (no drafts)

Several can hold at once (a bounce and a reply, a refusal and a snooze); `PRECEDENCE` is
the one table that picks: the first row whose condition holds is the status.

    excluded > bounced > replied > cold > exhausted > snoozed > ghosted > awaiting

Cold comes before the rest of its rank because they presuppose engagement ("would be
awaiting or ghosted"); with `draft_cold` a cold prospect still gets a stage and a due
time, moved by snoozes, but keeps the status `cold`. Exhausted comes before snoozed: no
draft is coming, so a pause changes nothing. A tie (a reply stamped the same second as
the rep's message) counts as a reply: a missed draft is cheaper than a pushy one. A
calendar response (accept, decline) is engagement, not a reply: it restarts the wait and
makes a cold prospect engaged, but the rep owes it no answer (`rules.prospects`). What
each status says in words is `rules.reasons`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rules.commitment import Commitment, find_commitment
from rules.elapsed import ElapsedBusinessDays
from rules.excerpt import reply_text
from rules.message import Message
from rules.prospects import (
    AccountView,
    ClassifiedMessage,
    Ledger,
    Policy,
    ProspectFacts,
    Snooze,
    Team,
    classify_account,
)
from rules.reasons import (
    REASONS,
    TRACE,
    Schedule,
    Situation,
    pause_of,
    schedule_of,
    scheduled_reason,
)
from rules.refusal import says_no
from rules.subjects import base_subject
from rules.threading import Conversation, thread

__all__ = [
    "CLOCK_DECIDES",
    "MAIL_DECIDES",
    "PRECEDENCE",
    "AccountView",
    "ClassifiedMessage",
    "Policy",
    "ProspectStatus",
    "ReplyTarget",
    "ReplyTexts",
    "Snooze",
    "Status",
    "Team",
    "Verdict",
    "classify_account",
    "decide",
    "evaluate",
    "rule_trace",
    "settle",
    "settle_all",
]


class Status(enum.StrEnum):
    """The status strings of SPEC section 3, exactly."""

    REPLIED = "replied"
    AWAITING = "awaiting"
    GHOSTED = "ghosted"
    COLD = "cold"
    SNOOZED = "snoozed"
    BOUNCED = "bounced"
    EXHAUSTED = "exhausted"
    EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """The message a follow-up draft answers: the last genuine one of the conversation.

    `references` are that message's own References; a reply to it carries
    `draft_references` (those plus its Message-ID) and `In-Reply-To: message_id`.
    """

    message_id: str | None
    references: tuple[str, ...]
    thread_id: str | None
    subject: str

    @property
    def draft_references(self) -> tuple[str, ...]:
        if self.message_id is None:
            return self.references
        return (*self.references, self.message_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProspectStatus:
    """One (account, prospect): the report row of SPEC section 7, and what a draft needs.

    `REPORT_FIELDS` names the report's fields in order. `conversation_key` and `reply_to`
    locate the conversation of the rep's latest message to the prospect; `playbook` is the
    next stage's; `last_reply_at` and `last_reply_excerpt` are the prospect's own latest
    reply and its new text; `commitment` the next step they promised in one of their
    last few replies, looked for only when a draft may follow (`next_stage` set). Each is
    None when absent or with `excerpt_chars = 0`.
    """

    REPORT_FIELDS: ClassVar[tuple[str, ...]] = (
        *("account", "prospect", "name", "company", "status", "last_outbound_at"),
        *("last_inbound_at", "followups_sent", "next_stage", "next_action_at", "subject"),
        "reason",
    )

    account: str
    prospect: str
    name: str
    company: str
    status: Status
    last_outbound_at: datetime | None
    last_inbound_at: datetime | None
    followups_sent: int
    next_stage: int | None
    next_action_at: datetime | None
    subject: str
    reason: str
    playbook: str | None = None
    conversation_key: str | None = None
    reply_to: ReplyTarget | None = None
    last_reply_at: datetime | None = None
    last_reply_excerpt: str | None = None
    commitment: Commitment | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        if self.followups_sent < 0:
            raise ValueError("followups_sent must not be negative")
        if (self.next_stage is None) != (self.next_action_at is None):
            raise ValueError("next_stage and next_action_at are set together")
        if self.next_stage is not None and self.next_stage < 1:
            raise ValueError("stages count from 1")
        for moment in (self.last_outbound_at, self.last_inbound_at, self.next_action_at):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError("report times must be timezone-aware")
        if not self.reason:
            raise ValueError("every status needs a reason")

    def report_row(self) -> dict[str, object]:
        """The SPEC section 7 fields as JSON values (times ISO 8601 with offset, or None)."""
        row: dict[str, object] = {}
        for name in self.REPORT_FIELDS:
            value = getattr(self, name)
            row[name] = value.isoformat() if isinstance(value, datetime) else value
        row["status"] = str(self.status)
        return row


# -- the decision ---------------------------------------------------------------------------


MAIL_DECIDES: tuple[tuple[Status, Callable[[Situation], bool]], ...] = (
    (Status.EXCLUDED, lambda s: s.blocked_by is not None or s.refusal is not None),
    (Status.BOUNCED, lambda s: s.facts.bounce is not None),
    (Status.REPLIED, lambda s: s.replied),
    (Status.COLD, lambda s: not s.engaged),
    (Status.EXHAUSTED, lambda s: s.step is None),
)
"""The rows of the precedence the mail alone decides, whatever the time."""

CLOCK_DECIDES: tuple[tuple[Status, Callable[[Situation, datetime], bool]], ...] = (
    (Status.SNOOZED, lambda s, now: s.paused_at(now)),
    (Status.GHOSTED, lambda s, now: s.next_action_at is not None and now >= s.next_action_at),
    (Status.AWAITING, lambda _s, _now: True),
)
"""The rows after them, where the clock picks (`Verdict.at` does the same)."""


def _at_any_time(holds: Callable[[Situation], bool]) -> Callable[[Situation, datetime], bool]:
    return lambda situation, _now: holds(situation)


PRECEDENCE: tuple[tuple[Status, Callable[[Situation, datetime], bool]], ...] = (
    *((status, _at_any_time(holds)) for status, holds in MAIL_DECIDES),
    *CLOCK_DECIDES,
)
"""The status is the first row whose condition holds at `now` (see the module docstring)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """One (account, prospect) decided as far as the mail decides it, at no time at all.

    The same mail gives the same verdict at any `now`; `at(clock)` turns it into the
    `ProspectStatus` at the clock's `now`. A verdict with a `status` and a `reason` is
    settled (excluded, bounced, replied, exhausted, cold without drafts); one with a
    `schedule` leaves the clock to pick snoozed, ghosted or awaiting (or keeps `status`
    cold, with `draft_cold`, whose reason still depends on a pause). The other fields are
    those of `ProspectStatus`, which see.
    """

    account: str
    prospect: str
    name: str
    company: str
    status: Status | None
    reason: str | None
    schedule: Schedule | None
    last_outbound_at: datetime
    last_inbound_at: datetime | None
    followups_sent: int
    next_stage: int | None
    next_action_at: datetime | None
    subject: str
    playbook: str | None = None
    conversation_key: str | None = None
    reply_to: ReplyTarget | None = None
    last_reply_at: datetime | None = None
    last_reply_excerpt: str | None = None
    commitment: Commitment | None = None

    def __post_init__(self) -> None:
        if self.status is not None:
            object.__setattr__(self, "status", Status(self.status))
        if (self.reason is None) == (self.schedule is None):
            raise ValueError("a verdict has either a reason (settled) or a schedule")
        if self.status is None and self.schedule is None:
            raise ValueError("a verdict without a status needs a schedule")

    def at(self, clock: ElapsedBusinessDays) -> ProspectStatus:
        """The status at the clock's `now` (the clock counts the business days elapsed)."""
        now = clock.now
        status, reason, schedule = self.status, self.reason, self.schedule
        if schedule is not None:
            if status is None:
                if schedule.paused_at(now):
                    status = Status.SNOOZED
                elif schedule.due_at is not None and now >= schedule.due_at:
                    status = Status.GHOSTED
                else:
                    status = Status.AWAITING
            elapsed = clock.since(schedule.anchor_at) if status is Status.GHOSTED else 0
            reason = scheduled_reason(status, schedule, now, elapsed)
        assert status is not None
        assert reason is not None
        return ProspectStatus(
            account=self.account,
            prospect=self.prospect,
            name=self.name,
            company=self.company,
            status=status,
            last_outbound_at=self.last_outbound_at,
            last_inbound_at=self.last_inbound_at,
            followups_sent=self.followups_sent,
            next_stage=self.next_stage,
            next_action_at=self.next_action_at,
            subject=self.subject,
            reason=reason,
            playbook=self.playbook,
            conversation_key=self.conversation_key,
            reply_to=self.reply_to,
            last_reply_at=self.last_reply_at,
            last_reply_excerpt=self.last_reply_excerpt,
            commitment=self.commitment,
        )


def settle(
    facts: ProspectFacts,
    policy: Policy,
    conversation: Conversation | None = None,
    *,
    texts: ReplyTexts | None = None,
) -> Verdict:
    """The verdict on one (account, prospect): everything the mail decides.

    `conversation` is the one holding the rep's latest message to the prospect; `texts`
    holds the reply texts shared by the prospects of one evaluation.
    """
    texts = texts or ReplyTexts(policy)
    situation = _situate(facts, policy, texts)
    settled = next((status for status, holds in MAIL_DECIDES if holds(situation)), None)
    draft_cold = settled is Status.COLD and policy.draft_cold
    scheduled = settled is None or draft_cold
    step = situation.step if scheduled else None
    reason = None
    if not scheduled:
        assert settled is not None
        reason = REASONS[settled](situation)
    own_reply = facts.prospect_replies[0] if facts.prospect_replies else None
    latest_reply = facts.latest_reply
    return Verdict(
        account=facts.account.name,
        prospect=facts.prospect,
        name=facts.name,
        company=facts.company,
        status=settled,
        reason=reason,
        schedule=schedule_of(situation, cold=draft_cold) if scheduled else None,
        last_outbound_at=facts.latest_sent.at,
        last_inbound_at=latest_reply.at if latest_reply is not None else None,
        followups_sent=situation.followups_sent,
        next_stage=step.number if step is not None else None,
        next_action_at=situation.next_action_at if step is not None else None,
        subject=_subject(facts, conversation),
        playbook=step.playbook if step is not None else None,
        conversation_key=conversation.key if conversation is not None else None,
        reply_to=_reply_target(facts, conversation),
        last_reply_at=own_reply.at if own_reply is not None else None,
        last_reply_excerpt=texts.excerpt(own_reply) if step is not None else None,
        commitment=_commitment(facts, texts) if step is not None else None,
    )


def decide(
    facts: ProspectFacts,
    policy: Policy,
    now: datetime,
    conversation: Conversation | None = None,
    *,
    texts: ReplyTexts | None = None,
) -> ProspectStatus:
    """The status of one (account, prospect) at `now`: `settle`, then the clock."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    verdict = settle(facts, policy, conversation, texts=texts)
    return verdict.at(ElapsedBusinessDays(policy.calendar, now))


def rule_trace(
    facts: ProspectFacts, policy: Policy, now: datetime
) -> list[tuple[Status, bool, str]]:
    """For `relight explain`: each row of `PRECEDENCE` in order, whether its condition
    holds at `now`, and why (the first row that holds is the status)."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    situation = _situate(facts, policy, ReplyTexts(policy))
    return [
        (status, holds(situation, now), TRACE[status](situation, now))
        for status, holds in PRECEDENCE
    ]


def _situate(facts: ProspectFacts, policy: Policy, texts: ReplyTexts) -> Situation:
    engaged_at = facts.last_engagement_at
    unanswered = sum(1 for item in facts.sent if engaged_at is None or item.at > engaged_at)
    followups_sent = max(0, unanswered - 1)
    step = policy.plan.next_stage(followups_sent)
    anchor = facts.latest_sent
    calendar = facts.calendar_response
    if calendar is not None and calendar.at > anchor.at:
        anchor = calendar
    pause = pause_of(facts, policy)
    not_before = pause.until if pause is not None else None
    due = policy.plan.due_at(anchor.at, followups_sent, policy.calendar, not_before=not_before)
    reply = facts.latest_reply
    refusal = texts.refusal(reply) if reply is not None else None
    return Situation(
        facts=facts,
        policy=policy,
        blocked_by=policy.blocked.match(facts.prospect),
        refusal=refusal,
        followups_sent=followups_sent,
        step=step,
        anchor=anchor,
        pause=pause,
        next_action_at=due,
    )


# -- draft facts ----------------------------------------------------------------------------


def _subject(facts: ProspectFacts, conversation: Conversation | None) -> str:
    subject = (
        conversation.subject if conversation is not None else facts.latest_sent.message.subject
    )
    return base_subject(subject)


def _reply_target(facts: ProspectFacts, conversation: Conversation | None) -> ReplyTarget | None:
    """The latest message of the conversation the prospect wrote or received.

    Others' messages in the thread (a second prospect's answer to a group mail) are not
    what a follow-up to this prospect should answer.
    """
    if conversation is None:
        return None
    prospect = facts.prospect
    last = next(
        (
            message
            for message in reversed(conversation.messages)
            if (message.sender is not None and message.sender.email == prospect)
            or any(recipient.email == prospect for recipient in message.recipients)
        ),
        facts.latest_sent.message,
    )
    return ReplyTarget(last.message_id, last.references, last.thread_id, last.subject)


_COMMITMENT_REPLIES = 5  # how many of the prospect's latest replies may hold the promise


def _commitment(facts: ProspectFacts, texts: ReplyTexts) -> Commitment | None:
    """The next step the prospect promised in their latest reply that promised one."""
    for reply in facts.prospect_replies[:_COMMITMENT_REPLIES]:
        excerpt = texts.excerpt(reply)
        found = find_commitment(excerpt) if excerpt else None
        if found is not None:
            return found
    return None


class ReplyTexts:
    """Work the prospects of one evaluation share: the new text of each reply and whether
    it declines (a colleague's reply counts for every prospect of the company)."""

    def __init__(self, policy: Policy) -> None:
        self._excerpt_chars = policy.excerpt_chars
        self._texts: dict[int, str] = {}
        self._refusals: dict[str, str | None] = {}

    def text(self, reply: ClassifiedMessage) -> str:
        """The reply's new text, quotes and signature removed, whole; "" when none."""
        message = reply.message
        known = self._texts.get(id(message))
        if known is None:
            excerpt = message.excerpt or ""
            known = reply_text(excerpt, max_chars=len(excerpt)) if excerpt else ""
            self._texts[id(message)] = known
        return known

    def refusal(self, reply: ClassifiedMessage) -> str | None:
        """The phrase in which the reply declines, read in its new text only (a quoted
        line or a mail footer's "please unsubscribe" is not the prospect saying no).

        The whole excerpt is read first: a phrase absent there is absent from any part
        of it, and most replies decline nothing, so most are never cleaned.
        """
        excerpt = reply.message.excerpt
        if not excerpt or self._says_no(excerpt) is None:
            return None
        text = self.text(reply)
        return self._says_no(text) if text else None

    def _says_no(self, text: str) -> str | None:
        """`says_no`, once per distinct text: a colleague's reply is read for every
        prospect of the company, and many replies share their wording."""
        try:
            return self._refusals[text]
        except KeyError:
            found = self._refusals[text] = says_no(text)
            return found

    def excerpt(self, reply: ClassifiedMessage | None) -> str | None:
        """The reply's new text cut to `excerpt_chars`; None when empty or disabled."""
        if reply is None or self._excerpt_chars == 0:
            return None
        text = self.text(reply)
        if len(text) > self._excerpt_chars:
            text = reply_text(reply.message.excerpt or "", max_chars=self._excerpt_chars)
        return text or None


# -- evaluate -------------------------------------------------------------------------------


def evaluate(
    messages: Iterable[ClassifiedMessage | Message],
    team: Team,
    policy: Policy,
    now: datetime,
    *,
    conversations: Mapping[str, Iterable[Conversation]] | None = None,
) -> list[ProspectStatus]:
    """The status of every (account, prospect) of the team at `now`, sorted: `settle_all`,
    then the clock."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    clock = ElapsedBusinessDays(policy.calendar, now)
    verdicts = settle_all(messages, team, policy, conversations=conversations)
    return [verdict.at(clock) for verdict in verdicts]


def settle_all(
    messages: Iterable[ClassifiedMessage | Message],
    team: Team,
    policy: Policy,
    *,
    conversations: Mapping[str, Iterable[Conversation]] | None = None,
) -> list[Verdict]:
    """The verdict on every (account, prospect) of the team, sorted.

    `messages` are the team's messages with their classification (the daemon caches
    those); plain `Message`s are classified here and belong to the team's only account.
    `conversations` (per account name) may be passed when the caller threaded the mail
    already; otherwise each account's genuine mail is threaded here.
    """
    classified: list[ClassifiedMessage] = []
    plain: list[Message] = []
    for item in messages:
        if isinstance(item, Message):
            plain.append(item)
        else:
            classified.append(item)
    if plain:
        if len(team.accounts) != 1:
            raise ValueError("plain messages need a one-account team; pass ClassifiedMessage")
        classified += classify_account(team.accounts[0], plain)
    ledger = Ledger.fold(classified, team, policy)
    if conversations is None:
        conversations = {
            name: thread(genuine) for name, genuine in ledger.genuine_by_account.items()
        }
    index = {name: _index(threads) for name, threads in conversations.items()}
    texts = ReplyTexts(policy)
    verdicts = []
    for account, prospect in ledger.prospects():
        facts = ledger.facts(account, prospect)
        conversation = index.get(account, {}).get(_message_key(facts.latest_sent.message))
        verdicts.append(settle(facts, policy, conversation, texts=texts))
    return verdicts


def _message_key(message: Message) -> str | int:
    return message.message_id if message.message_id is not None else id(message)


def _index(conversations: Iterable[Conversation]) -> dict[str | int, Conversation]:
    return {
        _message_key(message): conversation
        for conversation in conversations
        for message in conversation.messages
    }
