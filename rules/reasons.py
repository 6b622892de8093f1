"""Why a prospect has its status: the facts of one prospect at `now`, in one human line.

`rules.status` builds a `Situation` for each (account, prospect) — the stage due, the
pause (out-of-office or admin snooze), the refusal, the do-not-contact entry — picks the
status from it, and asks `REASONS[status]` for the line the report shows, such as "Alice
Doe replied on Tue 3 Nov 2020; you owe the reply" or "4 business days since your message
of Wed 4 Nov 2020; stage 1 (release_pressure) due Mon 9 Nov 2020". Days are written in the
calendar's timezone (`daemon.timezone`), with the year, so a line is never ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from rules.business_days import DEFAULT_OOO_PAUSE_DAYS
from rules.elapsed import ElapsedBusinessDays
from rules.prospects import ClassifiedMessage, Policy, ProspectFacts
from rules.stages import StageStep

__all__ = ["REASONS", "TRACE", "Pause", "Situation", "pause_of"]


@dataclass(frozen=True, slots=True)
class Pause:
    """Until when drafts wait (an out-of-office return, an admin snooze), and why."""

    until: datetime
    why: str


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything `PRECEDENCE` and the reasons read about one prospect, computed once."""

    facts: ProspectFacts
    policy: Policy
    now: datetime
    blocked_by: str | None
    refusal: str | None
    followups_sent: int
    step: StageStep | None
    anchor: ClassifiedMessage  # what the wait counts from: the latest outbound or calendar
    pause: Pause | None
    next_action_at: datetime | None
    elapsed: ElapsedBusinessDays

    @property
    def replied(self) -> bool:
        reply = self.facts.latest_reply
        return reply is not None and reply.at >= self.facts.latest_sent.at

    @property
    def engaged(self) -> bool:
        return self.facts.last_engagement_at is not None

    @property
    def paused(self) -> bool:
        return self.pause is not None and self.now < self.pause.until


def pause_of(facts: ProspectFacts, policy: Policy) -> Pause | None:
    """The latest end of an out-of-office pause or an admin snooze, and why."""
    calendar = policy.calendar
    pauses: list[Pause] = []
    for reply in facts.out_of_office:
        back = reply.classification.return_date
        until = calendar.resume_after_out_of_office(reply.at, back)
        if back is not None:
            why = f"out of office until {_day(back, policy)} (auto-reply of {_on(reply, policy)})"
        else:
            why = (
                f"auto-reply of {_on(reply, policy)} names no return date, so "
                f"{DEFAULT_OOO_PAUSE_DAYS} business days' pause"
            )
        pauses.append(Pause(until, why))
    snooze = policy.snooze_of(facts.prospect)
    if snooze is not None:
        entry, until_day = snooze
        until = calendar.start_of_day(until_day)
        pauses.append(
            Pause(until, f"snoozed by the admin ({entry}) until {_day(until_day, policy)}")
        )
    return max(pauses, key=lambda pause: pause.until, default=None)


# -- reasons ------------------------------------------------------------------------------


def _day(moment: datetime | date, policy: Policy) -> str:
    """ "Tue 3 Nov 2020": the day `moment` falls on in the calendar's timezone."""
    if isinstance(moment, datetime):
        moment = policy.calendar.local_date(moment)
    return f"{moment:%a} {moment.day} {moment:%b} {moment.year}"


def _on(item: ClassifiedMessage, policy: Policy) -> str:
    return _day(item.at, policy)


def _who(item: ClassifiedMessage, facts: ProspectFacts) -> str:
    """The prospect's name, or a colleague's name and address."""
    sender = item.message.sender
    if sender is None or sender.email == facts.prospect:
        return facts.name or facts.prospect
    return f"{sender.name or sender.email} ({sender.email}, same company)"


def _to(item: ClassifiedMessage, facts: ProspectFacts) -> str:
    """ " to lee" when a teammate's mailbox got the message, else ""."""
    return f" to {item.account}" if item.account != facts.account.name else ""


def _what(item: ClassifiedMessage, facts: ProspectFacts) -> str:
    """ "message" for the first of the unanswered run, "follow-up" for the later ones."""
    engaged_at = facts.last_engagement_at
    earlier = [
        other
        for other in facts.sent
        if other.at < item.at and (engaged_at is None or other.at > engaged_at)
    ]
    return "follow-up" if earlier else "message"


def _next(s: Situation) -> str:
    if s.step is None or s.next_action_at is None:
        return "no more drafts"
    return f"stage {s.step.number} ({s.step.playbook}) due {_day(s.next_action_at, s.policy)}"


def _since(s: Situation) -> str:
    facts, anchor = s.facts, s.anchor
    if anchor is facts.calendar_response:
        return f"{_who(anchor, facts)}'s calendar response of {_on(anchor, s.policy)}"
    return f"your {_what(anchor, facts)} of {_on(anchor, s.policy)}"


def _excluded(s: Situation) -> str:
    if s.blocked_by is not None:
        return f"on the do-not-contact list ({s.blocked_by})"
    reply = s.facts.latest_reply
    assert reply is not None
    who, to = _who(reply, s.facts), _to(reply, s.facts)
    return f'{who} said no{to} on {_on(reply, s.policy)}: "{s.refusal}"'


def _bounced(s: Situation) -> str:
    bounce, latest = s.facts.bounce, s.facts.latest_sent
    assert bounce is not None
    return (
        f"your {_what(latest, s.facts)} of {_on(latest, s.policy)} to {s.facts.prospect} "
        f"bounced on {_on(bounce, s.policy)}; no drafts"
    )


def _replied(s: Situation) -> str:
    reply = s.facts.latest_reply
    assert reply is not None
    owes = "you owe" if reply.account == s.facts.account.name else "the team owes"
    who, to = _who(reply, s.facts), _to(reply, s.facts)
    return f"{who} replied{to} on {_on(reply, s.policy)}; {owes} the reply"


def _cold(s: Situation) -> str:
    count = len(s.facts.sent)
    plural = "message" if count == 1 else f"{count} messages"
    since = (
        f"your {plural} since {_on(s.facts.first_sent, s.policy)}"
        if count > 1
        else (f"your message of {_on(s.facts.first_sent, s.policy)}")
    )
    if not s.policy.draft_cold:
        return f"never wrote back to {since}; no drafts for cold prospects (draft_cold = false)"
    pause = f"{s.pause.why}; " if s.paused and s.pause is not None else ""
    return f"never wrote back to {since}; {pause}{_next(s)}"


def _exhausted(s: Situation) -> str:
    count = "1 follow-up" if s.followups_sent == 1 else f"{s.followups_sent} follow-ups"
    reply = s.facts.latest_reply
    since = f" since {_who(reply, s.facts)}'s last reply of {_on(reply, s.policy)}" if reply else ""
    return (
        f"{count}{since}, none answered; no more drafts "
        f"(max_followups = {s.policy.plan.max_followups})"
    )


def _snoozed(s: Situation) -> str:
    assert s.pause is not None
    return f"{s.pause.why}; {_next(s)}"


def _ghosted(s: Situation) -> str:
    days = s.elapsed.since(s.anchor.at)
    unit = "business day" if days == 1 else "business days"
    return f"{days} {unit} since {_since(s)}; {_next(s)}"


def _awaiting(s: Situation) -> str:
    return f"waiting for an answer to {_since(s)}; {_next(s)}"


REASONS: Mapping[str, Callable[[Situation], str]] = {
    "excluded": _excluded,
    "bounced": _bounced,
    "replied": _replied,
    "cold": _cold,
    "exhausted": _exhausted,
    "snoozed": _snoozed,
    "ghosted": _ghosted,
    "awaiting": _awaiting,
}


# -- explain: why each row of the precedence table did or did not hold ------------------


def _trace_excluded(s: Situation) -> str:
    if s.blocked_by is not None or s.refusal is not None:
        return _excluded(s)
    reply = s.facts.latest_reply
    said = "the latest reply declines nothing" if reply else "no reply to read"
    return f"not on the do-not-contact list; {said}"


def _trace_bounced(s: Situation) -> str:
    if s.facts.bounce is not None:
        return _bounced(s)
    return f"no hard bounce of your latest message ({_on(s.facts.latest_sent, s.policy)})"


def _trace_replied(s: Situation) -> str:
    reply, latest = s.facts.latest_reply, s.facts.latest_sent
    if reply is None:
        return "no genuine reply counts (prospect, company, team)"
    order = "after" if s.replied else "before"
    return (
        f"latest reply {_on(reply, s.policy)} from {_who(reply, s.facts)} is {order} "
        f"your latest message of {_on(latest, s.policy)}"
    )


def _trace_cold(s: Situation) -> str:
    engaged_at = s.facts.last_engagement_at
    if engaged_at is None:
        return "never sent a genuine message or a calendar response"
    return f"engaged: last reply or calendar response on {_day(engaged_at, s.policy)}"


def _trace_exhausted(s: Situation) -> str:
    return f"{s.followups_sent} follow-ups of at most {s.policy.plan.max_followups} sent"


def _trace_snoozed(s: Situation) -> str:
    if s.pause is None:
        return "no out-of-office reply since your latest message, no admin snooze"
    state = "still ahead" if s.paused else "over"
    return f"{s.pause.why}: {state}"


def _trace_ghosted(s: Situation) -> str:
    if s.step is None or s.next_action_at is None:
        return "no next stage"
    state = "passed" if s.now >= s.next_action_at else "not yet"
    return f"{_next(s)}: {state}"


TRACE: Mapping[str, Callable[[Situation], str]] = {
    "excluded": _trace_excluded,
    "bounced": _trace_bounced,
    "replied": _trace_replied,
    "cold": _trace_cold,
    "exhausted": _trace_exhausted,
    "snoozed": _trace_snoozed,
    "ghosted": _trace_ghosted,
    "awaiting": lambda s: "the fallback: engaged, wait not over",
}
"""Per status, one line on why its row of `rules.status.PRECEDENCE` holds or not."""
