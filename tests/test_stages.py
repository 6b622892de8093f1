"""Unit tests for `rules.stages`: which follow-up comes next, and when it is due."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

import pytest

from daemon.config import DEFAULT_STAGES
from rules.business_days import BusinessCalendar
from rules.stages import DEFAULT_STAGE_PLAN, StagePlan, StageStep

BERLIN = BusinessCalendar("Europe/Berlin", "DE", "BY")
NEW_YORK = BusinessCalendar("America/New_York", "US")
FRIDAY_1600 = datetime.fromisoformat("2026-10-16T16:00+02:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("followups_sent", "expected"),
    [
        pytest.param(0, StageStep(1, 3, "release_pressure"), id="first follow-up"),
        pytest.param(1, StageStep(2, 5, "accountability"), id="second"),
        pytest.param(2, StageStep(3, 7, "apology"), id="third"),
        pytest.param(3, StageStep(4, 10, "closure"), id="fourth"),
        pytest.param(4, None, id="exhausted"),
        pytest.param(9, None, id="more sent than planned"),
    ],
)
def test_next_stage_default_plan(followups_sent: int, expected: StageStep | None) -> None:
    """Stage followups_sent + 1 comes next, with its wait and playbook, until max_followups."""
    assert DEFAULT_STAGE_PLAN.next_stage(followups_sent) == expected
    assert DEFAULT_STAGE_PLAN.is_exhausted(followups_sent) is (expected is None)


@pytest.mark.parametrize(
    ("max_followups", "followups_sent", "expected"),
    [
        pytest.param(2, 1, StageStep(2, 5, "accountability"), id="last allowed stage"),
        pytest.param(2, 2, None, id="cut short by max_followups"),
        pytest.param(0, 0, None, id="max_followups = 0 drafts nothing"),
    ],
)
def test_max_followups_limits_stages(
    max_followups: int, followups_sent: int, expected: StageStep | None
) -> None:
    """max_followups below the number of stages ends the sequence early."""
    plan = StagePlan(DEFAULT_STAGE_PLAN.stages, max_followups)
    assert plan.next_stage(followups_sent) == expected


def test_default_plan_matches_config() -> None:
    """The default plan is the same table as the config's default `[[rules.stages]]`."""
    pairs = [(stage.after_business_days, stage.playbook) for stage in DEFAULT_STAGES]
    assert StagePlan(pairs) == DEFAULT_STAGE_PLAN
    assert DEFAULT_STAGE_PLAN.max_followups == len(DEFAULT_STAGES)


def test_plan_from_pairs() -> None:
    """A plan is built from plain (after_business_days, playbook) pairs, any iterable."""
    plan = StagePlan(iter([(2, "nudge"), (4, "closure")]))
    assert plan.stages == ((2, "nudge"), (4, "closure"))
    assert plan.max_followups == 2
    assert plan.steps == (StageStep(1, 2, "nudge"), StageStep(2, 4, "closure"))


# (case, followups_sent, calendar, latest outbound, due moment or None)
DUE_CASES = [
    ("stage 1 after friday", 0, BERLIN, "2026-10-16T16:00+02:00", "2026-10-21T16:00+02:00"),
    ("stage 2", 1, BERLIN, "2026-10-16T16:00+02:00", "2026-10-23T16:00+02:00"),
    ("stage 3 across dst", 2, BERLIN, "2026-10-16T16:00+02:00", "2026-10-27T16:00+01:00"),
    ("stage 4", 3, BERLIN, "2026-10-16T16:00+02:00", "2026-10-30T16:00+01:00"),
    ("exhausted", 4, BERLIN, "2026-10-16T16:00+02:00", None),
    ("stage 1 over christmas", 0, BERLIN, "2026-12-23T11:00+01:00", "2026-12-29T11:00+01:00"),
    ("stage 1 over thanksgiving", 0, NEW_YORK, "2026-11-24T15:00-05:00", "2026-11-30T15:00-05:00"),
    ("sent on a saturday", 0, BERLIN, "2026-10-17T10:00+02:00", "2026-10-22T00:00+02:00"),
]


@pytest.mark.parametrize(
    ("followups_sent", "calendar", "last_outbound_at", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in DUE_CASES],
)
def test_due_at(
    followups_sent: int, calendar: BusinessCalendar, last_outbound_at: str, expected: str | None
) -> None:
    """The next stage is due its wait in business days after the latest outbound message."""
    due = DEFAULT_STAGE_PLAN.due_at(at(last_outbound_at), followups_sent, calendar)
    assert (None if due is None else due.isoformat(timespec="minutes")) == expected


def test_zero_wait_is_due_at_once() -> None:
    """A stage with after_business_days = 0 is due at the latest outbound message."""
    plan = StagePlan([(0, "same_day")])
    assert plan.due_at(FRIDAY_1600, 0, BERLIN) == FRIDAY_1600


@pytest.mark.parametrize(
    ("not_before", "expected"),
    [
        pytest.param("2026-11-03T00:00+01:00", "2026-11-03T00:00+01:00", id="pause ends later"),
        pytest.param("2026-10-19T00:00+02:00", "2026-10-21T16:00+02:00", id="pause ends sooner"),
        pytest.param("2026-11-02T23:00+00:00", "2026-11-03T00:00+01:00", id="pause given in utc"),
    ],
)
def test_out_of_office_pushes_due_time(not_before: str, expected: str) -> None:
    """An out-of-office pause moves the due time to no earlier than its end."""
    due = DEFAULT_STAGE_PLAN.due_at(FRIDAY_1600, 0, BERLIN, not_before=at(not_before))
    assert due is not None
    assert due.isoformat(timespec="minutes") == expected


def test_exhausted_ignores_out_of_office() -> None:
    """An exhausted prospect has no due time, whatever the pause."""
    pause_end = at("2026-11-03T00:00+01:00")
    assert DEFAULT_STAGE_PLAN.due_at(FRIDAY_1600, 4, BERLIN, not_before=pause_end) is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(lambda: StagePlan([]), "at least one stage", id="no stages"),
        pytest.param(lambda: StagePlan([(-1, "x")]), "0 or more", id="negative wait"),
        pytest.param(lambda: StagePlan([(True, "x")]), "0 or more", id="bool wait"),
        pytest.param(lambda: StagePlan([(3, " ")]), "playbook name", id="blank playbook"),
        pytest.param(
            lambda: StagePlan([(3,)]),  # type: ignore[list-item]
            "expected \\(after",
            id="not a pair",
        ),
        pytest.param(lambda: StagePlan([(3, "x")], 2), "from 0 to 1", id="more than stages"),
        pytest.param(lambda: StagePlan([(3, "x")], -1), "from 0 to 1", id="negative max"),
        pytest.param(lambda: DEFAULT_STAGE_PLAN.next_stage(-1), "0 or more", id="negative sent"),
    ],
)
def test_bad_values_refused(build: Callable[[], object], message: str) -> None:
    """A stage table that makes no sense is refused when built."""
    with pytest.raises(ValueError, match=message):
        build()


def test_plan_is_frozen() -> None:
    """A plan is a value: it cannot be changed once built."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_STAGE_PLAN.max_followups = 9  # type: ignore[misc]
