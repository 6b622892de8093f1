"""The follow-up stages: which draft comes next for a prospect who went quiet, and when.

SPEC section 5. `followups_sent` is the number of genuine outbound messages to the
prospect since their last genuine inbound message, minus one (the first is the message
the prospect should have answered). The next draft is stage `followups_sent + 1`; it is
due when that stage's `after_business_days` have passed since the latest outbound
message, counted by a `BusinessCalendar`. Once `max_followups` follow-ups went
unanswered there is no next stage: the prospect is exhausted.

A `StagePlan` is built from plain values, `(after_business_days, playbook)` pairs as
`[[rules.stages]]` lists them, so that `rules/` need not know the config classes:

    StagePlan([(s.after_business_days, s.playbook) for s in config.rules.stages],
              config.rules.max_followups)

How an engaged prospect moves through the follow-ups (n = followups_sent; "wait(k)" is
stage k's `after_business_days`, counted from the latest outbound message):

              rep writes to a prospect who had engaged (n = 0)
    REPLIED ---------------------------------------------> AWAITING (n)
       ^                                                    |      ^
       |                          wait(n + 1) has elapsed   |      | a follow-up is sent,
       |                                                    v      | n + 1 < max_followups
       |                                           GHOSTED: stage n + 1 due
       |                                                    |
       |        a follow-up is sent and n + 1 == max_followups (from AWAITING too)
       |                                                    v
       |                                           EXHAUSTED: no more drafts
       |                                                    |
       +----------------------------------------------------+
         a genuine inbound message from the prospect, from every state (n = 0)

    An out-of-office reply overlays AWAITING and GHOSTED with SNOOZED until
    `BusinessCalendar.resume_after_out_of_office`; the due time becomes the later of
    the two (`due_at(..., not_before=...)`).

Status strings and the other statuses (cold, bounced, excluded) are decided elsewhere;
this module answers only "which stage next, and from when".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rules.business_days import BusinessCalendar

__all__ = ["DEFAULT_STAGE_PLAN", "StagePlan", "StageStep"]


@dataclass(frozen=True, slots=True)
class StageStep:
    """One follow-up: its stage number (from 1), its wait and its playbook."""

    number: int
    after_business_days: int
    playbook: str


@dataclass(frozen=True, slots=True, init=False)
class StagePlan:
    """The stage table and how many follow-ups may go unanswered (`rules.max_followups`).

    `stages` are `(after_business_days, playbook)` pairs, stage 1 first;
    `max_followups` defaults to their number. Bad values raise `ValueError`.
    """

    stages: tuple[tuple[int, str], ...]
    max_followups: int

    def __init__(self, stages: Iterable[tuple[int, str]], max_followups: int | None = None) -> None:
        table = tuple(_pair(number, pair) for number, pair in enumerate(stages, start=1))
        if not table:
            raise ValueError("a stage plan needs at least one stage")
        if max_followups is None:
            max_followups = len(table)
        if not _is_int(max_followups) or not 0 <= max_followups <= len(table):
            message = f"max_followups must be from 0 to {len(table)}, got {max_followups!r}"
            raise ValueError(message)
        object.__setattr__(self, "stages", table)
        object.__setattr__(self, "max_followups", max_followups)

    @property
    def steps(self) -> tuple[StageStep, ...]:
        """Every stage as a `StageStep`, including any beyond `max_followups`."""
        return tuple(
            StageStep(number, after, playbook)
            for number, (after, playbook) in enumerate(self.stages, start=1)
        )

    def is_exhausted(self, followups_sent: int) -> bool:
        """Whether `followups_sent` unanswered follow-ups leave no stage to draft."""
        return self.next_stage(followups_sent) is None

    def next_stage(self, followups_sent: int) -> StageStep | None:
        """Stage `followups_sent + 1`, or None once `max_followups` were sent (exhausted)."""
        if not _is_int(followups_sent) or followups_sent < 0:
            raise ValueError(f"followups_sent must be 0 or more, got {followups_sent!r}")
        if followups_sent >= self.max_followups:
            return None
        after, playbook = self.stages[followups_sent]
        return StageStep(followups_sent + 1, after, playbook)

    def due_at(
        self,
        last_outbound_at: datetime,
        followups_sent: int,
        calendar: BusinessCalendar,
        *,
        not_before: datetime | None = None,
    ) -> datetime | None:
        """When the next stage's draft is due, or None when exhausted.

        Its wait in business days after `last_outbound_at`, and no earlier than
        `not_before` (the end of an out-of-office pause) when given.
        """
        step = self.next_stage(followups_sent)
        if step is None:
            return None
        due = calendar.add_business_days(last_outbound_at, step.after_business_days)
        if not_before is not None and not_before > due:
            return not_before.astimezone(calendar.zone)
        return due


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pair(number: int, pair: tuple[int, str]) -> tuple[int, str]:
    try:
        after, playbook = pair
    except (TypeError, ValueError):
        message = f"stage {number}: expected (after_business_days, playbook), got {pair!r}"
        raise ValueError(message) from None
    if not _is_int(after) or after < 0:
        raise ValueError(f"stage {number}: after_business_days must be 0 or more, got {after!r}")
    if not isinstance(playbook, str) or not playbook.strip():
        raise ValueError(f"stage {number}: expected a playbook name, got {playbook!r}")
    return after, playbook


DEFAULT_STAGE_PLAN = StagePlan(
    [(3, "release_pressure"), (5, "accountability"), (7, "apology"), (10, "closure")]
)
"""The SPEC section 5 table; `daemon.config.DEFAULT_STAGES` holds the same stages."""
