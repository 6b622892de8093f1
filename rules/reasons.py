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
from rules.prospects import ClassifiedMessage, Policy, ProspectFacts
from rules.stages import StageStep

__all__ = [
    "REASONS",
    "TRACE",
    "Pause",
    "Schedule",
    "Situation",
    "pause_of",
    "schedule_of",
    "scheduled_reason",
]


@dataclass(frozen=True, slots=True)
class Pause:
    """Until when drafts wait (an out-of-office return, an admin snooze), and why."""

    until: datetime
    why: str


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything `PRECEDENCE` and the reasons read about one prospect, computed once.

    Nothing here depends on the clock: the same situation holds at any `now`, and only
    `paused_at(now)` and the due time compared with `now` move a prospect between
    snoozed, ghosted and awaiting.
    """

    facts: ProspectFacts
    policy: Policy
    blocked_by: str | None
    refusal: str | None
    followups_sent: int
    step: StageStep | None
    anchor: ClassifiedMessage  # what the wait counts from: the latest outbound or calendar
    pause: Pause | None
    next_action_at: datetime | None

    @property
    def replied(self) -> bool:
        reply = self.facts.latest_reply
        return reply is not None and reply.at >= self.facts.latest_sent.at

    @property
    def engaged(self) -> bool:
        return self.facts.last_engagement_at is not None

    def paused_at(self, now: datetime) -> bool:
        return self.pause is not None and now < self.pause.until


@dataclass(frozen=True, slots=True)
class Schedule:
    """The clock's part of a prospect that awaits a stage: what the wait counts from
    and until when, the pause, and the words the clock-dependent reasons are made of.

    `waiting_on` names the message(s) waiting for an answer ("your follow-up of Tue 3
    Nov 2020"); `next_step` the stage to come ("stage 2 (accountability) due Mon 9 Nov
    2020", or "no more drafts").
    """

    anchor_at: datetime
    due_at: datetime | None
    pause_until: datetime | None
    pause_why: str | None
    waiting_on: str
    next_step: str

    def paused_at(self, now: datetime) -> bool:
        return self.pause_until is not None and now < self.pause_until


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


def _cold_since(s: Situation) -> str:
    count = len(s.facts.sent)
    if count > 1:
        return f"your {count} messages since {_on(s.facts.first_sent, s.policy)}"
    return f"your message of {_on(s.facts.first_sent, s.policy)}"


def _cold(s: Situation) -> str:
    """Cold without drafts (`draft_cold = false`); with drafts the clock has a say."""
    return (
        f"never wrote back to {_cold_since(s)}; no drafts for cold prospects (draft_cold = false)"
    )


def _exhausted(s: Situation) -> str:
    count = "1 follow-up" if s.followups_sent == 1 else f"{s.followups_sent} follow-ups"
    reply = s.facts.latest_reply
    since = f" since {_who(reply, s.facts)}'s last reply of {_on(reply, s.policy)}" if reply else ""
    return (
        f"{count}{since}, none answered; no more drafts "
        f"(max_followups = {s.policy.plan.max_followups})"
    )


def schedule_of(s: Situation, *, cold: bool) -> Schedule:
    """The clock's part of `s` for a prospect whose status the clock picks (or a cold
    one with `draft_cold`)."""
    return Schedule(
        anchor_at=s.anchor.at,
        due_at=s.next_action_at,
        pause_until=s.pause.until if s.pause is not None else None,
        pause_why=s.pause.why if s.pause is not None else None,
        waiting_on=_cold_since(s) if cold else _since(s),
        next_step=_next(s),
    )


def scheduled_reason(status: str, schedule: Schedule, now: datetime, elapsed: int) -> str:
    """The reason of a status the clock picked: cold (with `draft_cold`), snoozed,
    ghosted or awaiting; `elapsed` is the business days since `schedule.anchor_at`."""
    if status == "cold":
        pause = f"{schedule.pause_why}; " if schedule.paused_at(now) else ""
        return f"never wrote back to {schedule.waiting_on}; {pause}{schedule.next_step}"
    if status == "snoozed":
        return f"{schedule.pause_why}; {schedule.next_step}"
    if status == "ghosted":
        unit = "business day" if elapsed == 1 else "business days"
        return f"{elapsed} {unit} since {schedule.waiting_on}; {schedule.next_step}"
    if status == "awaiting":
        return f"waiting for an answer to {schedule.waiting_on}; {schedule.next_step}"
    raise ValueError(f"the clock does not pick {status!r}")


REASONS: Mapping[str, Callable[[Situation], str]] = {
    "excluded": _excluded,
    "bounced": _bounced,
    "replied": _replied,
    "cold": _cold,
    "exhausted": _exhausted,
}
"""The reasons of the statuses the mail alone decides; the others are `scheduled_reason`."""


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


def _trace_snoozed(s: Situation, now: datetime) -> str:
    if s.pause is None:
        return "no out-of-office reply since your latest message, no admin snooze"
    state = "still ahead" if s.paused_at(now) else "over"
    return f"{s.pause.why}: {state}"


def _trace_ghosted(s: Situation, now: datetime) -> str:
    if s.step is None or s.next_action_at is None:
        return "no next stage"
    state = "passed" if now >= s.next_action_at else "not yet"
    return f"{_next(s)}: {state}"


TRACE: Mapping[str, Callable[[Situation, datetime], str]] = {
    "excluded": lambda s, _now: _trace_excluded(s),
    "bounced": lambda s, _now: _trace_bounced(s),
    "replied": lambda s, _now: _trace_replied(s),
    "cold": lambda s, _now: _trace_cold(s),
    "exhausted": lambda s, _now: _trace_exhausted(s),
    "snoozed": _trace_snoozed,
    "ghosted": _trace_ghosted,
    "awaiting": lambda _s, _now: "the fallback: engaged, wait not over",
}
"""Per status, one line on why its row of `rules.status.PRECEDENCE` holds or not at `now`."""
