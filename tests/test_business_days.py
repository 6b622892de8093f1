"""Unit tests for `rules.business_days`: waits counted in business days, per timezone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from daemon.config import Holidays
from rules.business_days import DEFAULT_OOO_PAUSE_DAYS, BusinessCalendar

BERLIN = BusinessCalendar("Europe/Berlin", "DE", "BY")
BERLIN_WEEKENDS = BusinessCalendar("Europe/Berlin")
NEW_YORK = BusinessCalendar("America/New_York", "US")
TOKYO = BusinessCalendar("Asia/Tokyo")
UTC_WEEKENDS = BusinessCalendar("UTC")
CAIRO = BusinessCalendar("Africa/Cairo")  # DST starts on a Friday at 00:00, ends Thursday 24:00
CALENDARS = {
    "by": BERLIN,
    "de-0": BERLIN_WEEKENDS,
    "us": NEW_YORK,
    "tokyo": TOKYO,
    "utc": UTC_WEEKENDS,
    "cairo": CAIRO,
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# (case, calendar, start, business days, expected moment with the calendar's offset)
ADD_CASES = [
    ("friday 16:00 + 1", "by", "2026-10-16T16:00+02:00", 1, "2026-10-19T16:00+02:00"),
    ("friday 16:00 + 3", "by", "2026-10-16T16:00+02:00", 3, "2026-10-21T16:00+02:00"),
    ("saturday start + 1", "by", "2026-10-17T10:00+02:00", 1, "2026-10-20T00:00+02:00"),
    ("sunday night + 3", "by", "2026-10-18T22:00+02:00", 3, "2026-10-22T00:00+02:00"),
    ("unity day, a friday", "by", "2025-10-01T09:00+02:00", 3, "2025-10-07T09:00+02:00"),
    ("unity day, a saturday", "by", "2026-10-02T09:00+02:00", 1, "2026-10-05T09:00+02:00"),
    ("christmas in the wait", "by", "2026-12-23T11:00+01:00", 3, "2026-12-29T11:00+01:00"),
    ("christmas, no calendar", "de-0", "2026-12-23T11:00+01:00", 3, "2026-12-28T11:00+01:00"),
    ("christmas day start", "by", "2026-12-25T09:00+01:00", 1, "2026-12-29T00:00+01:00"),
    ("thanksgiving", "us", "2026-11-24T15:00-05:00", 3, "2026-11-30T15:00-05:00"),
    ("july 3 observed", "us", "2026-07-02T10:00-04:00", 1, "2026-07-06T10:00-04:00"),
    ("dec 31 to jan 2", "by", "2025-12-31T17:00+01:00", 1, "2026-01-02T17:00+01:00"),
    ("dec 31 to jan 4", "by", "2026-12-31T10:00+01:00", 1, "2027-01-04T10:00+01:00"),
    ("berlin dst ends", "by", "2026-10-23T16:00+02:00", 1, "2026-10-26T16:00+01:00"),
    ("berlin dst starts", "by", "2026-03-27T16:00+01:00", 1, "2026-03-30T16:00+02:00"),
    ("new york dst ends", "us", "2026-10-30T09:00-04:00", 1, "2026-11-02T09:00-05:00"),
    ("utc friday, tokyo sat", "tokyo", "2026-10-23T23:30+00:00", 1, "2026-10-27T00:00+09:00"),
    ("utc friday in utc", "utc", "2026-10-23T23:30+00:00", 1, "2026-10-26T23:30+00:00"),
    ("utc sunday, tokyo mon", "tokyo", "2026-10-25T20:00+00:00", 1, "2026-10-27T05:00+09:00"),
    ("start in another zone", "by", "2026-10-16T14:00+00:00", 3, "2026-10-21T16:00+02:00"),
    ("a year in bavaria", "by", "2025-12-31T12:00+01:00", 252, "2026-12-31T12:00+01:00"),
    ("1040 weeks", "utc", "2026-01-05T09:00+00:00", 5200, "2045-12-11T09:00+00:00"),
    ("time in a dst gap", "cairo", "2026-04-22T00:30+02:00", 2, "2026-04-24T01:30+03:00"),
    ("time in a dst fold", "cairo", "2026-10-27T23:30+03:00", 2, "2026-10-29T23:30+03:00"),
]


@pytest.mark.parametrize(
    ("calendar", "start", "days", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in ADD_CASES],
)
def test_add_business_days(calendar: str, start: str, days: int, expected: str) -> None:
    """The due moment is the same local time `days` business days on, in the calendar's zone."""
    result = CALENDARS[calendar].add_business_days(at(start), days)
    assert result.isoformat(timespec="minutes") == expected
    assert result.tzinfo is CALENDARS[calendar].zone


@pytest.mark.parametrize(
    ("calendar", "start", "days"),
    [pytest.param(*case[1:4], id=case[0]) for case in ADD_CASES],
)
def test_business_days_between_inverts_add(calendar: str, start: str, days: int) -> None:
    """`days` business days have elapsed at the due moment, and one fewer a moment before."""
    business = CALENDARS[calendar]
    due = business.add_business_days(at(start), days)
    assert business.business_days_between(at(start), due) == days
    assert business.business_days_between(at(start), due - timedelta(microseconds=1)) == days - 1


@pytest.mark.parametrize(
    ("start", "calendar"),
    [
        pytest.param("2026-10-17T10:00+02:00", "by", id="weekend start"),
        pytest.param("2026-10-16T14:00+00:00", "by", id="other timezone"),
        pytest.param("2026-12-25T09:00+01:00", "us", id="holiday start"),
    ],
)
def test_zero_days_is_start(start: str, calendar: str) -> None:
    """Adding 0 business days returns the start itself, even on a non-business day."""
    result = CALENDARS[calendar].add_business_days(at(start), 0)
    assert result == at(start)
    assert result.tzinfo is CALENDARS[calendar].zone


# (case, calendar, start, end, whole business days elapsed)
BETWEEN_CASES = [
    ("friday to wed, 1 min short", "by", "2026-10-16T16:00+02:00", "2026-10-21T15:59+02:00", 2),
    ("friday to wed, same time", "by", "2026-10-16T16:00+02:00", "2026-10-21T16:00+02:00", 3),
    ("saturday to monday night", "by", "2026-10-17T10:00+02:00", "2026-10-19T23:59+02:00", 0),
    ("saturday to tuesday", "by", "2026-10-17T10:00+02:00", "2026-10-20T00:00+02:00", 1),
    ("end on a sunday", "by", "2026-10-14T09:00+02:00", "2026-10-18T09:00+02:00", 2),
    ("across christmas", "by", "2026-12-23T11:00+01:00", "2026-12-29T11:00+01:00", 3),
    ("end before start", "by", "2026-10-21T16:00+02:00", "2026-10-16T16:00+02:00", 0),
    ("same moment", "by", "2026-10-21T16:00+02:00", "2026-10-21T16:00+02:00", 0),
    ("thanksgiving week", "us", "2026-11-23T09:00-05:00", "2026-11-30T09:00-05:00", 4),
]


@pytest.mark.parametrize(
    ("calendar", "start", "end", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in BETWEEN_CASES],
)
def test_business_days_between(calendar: str, start: str, end: str, expected: int) -> None:
    """Only whole business days count, never negative."""
    assert CALENDARS[calendar].business_days_between(at(start), at(end)) == expected


@pytest.mark.parametrize(
    ("calendar", "start", "end", "expected"),
    [
        pytest.param(
            "by",
            "2026-10-19T09:00+02:00",
            "2026-10-27T08:00+01:00",
            8,
            id="monday to next tuesday",
        ),
        pytest.param(
            "tokyo",
            "2026-10-23T14:00+00:00",
            "2026-10-23T16:00+00:00",
            1,
            id="midnight passes in tokyo",
        ),
        pytest.param(
            "utc", "2026-10-23T14:00+00:00", "2026-10-23T16:00+00:00", 0, id="same day in utc"
        ),
        pytest.param(
            "by", "2026-10-27T08:00+01:00", "2026-10-19T09:00+02:00", 0, id="end before start"
        ),
    ],
)
def test_calendar_days_between(calendar: str, start: str, end: str, expected: int) -> None:
    """Calendar days are counted between local dates, for "it has been 8 days" wording."""
    assert CALENDARS[calendar].calendar_days_between(at(start), at(end)) == expected


@pytest.mark.parametrize(
    ("calendar", "day", "expected"),
    [
        pytest.param(BERLIN, "2026-10-02", True, id="friday"),
        pytest.param(BERLIN, "2026-10-03", False, id="unity day on a saturday"),
        pytest.param(BERLIN, "2025-10-03", False, id="unity day on a friday"),
        pytest.param(BERLIN, "2026-12-24", True, id="christmas eve is no public holiday"),
        pytest.param(BERLIN, "2026-12-25", False, id="christmas day"),
        pytest.param(BERLIN, "2026-01-06", False, id="epiphany in bavaria"),
        pytest.param(
            BusinessCalendar("Europe/Berlin", "DE", "BE"),
            "2026-01-06",
            True,
            id="no epiphany in berlin",
        ),
        pytest.param(BERLIN_WEEKENDS, "2026-12-25", True, id="no holiday calendar"),
        pytest.param(BERLIN, "2026-11-26", True, id="thanksgiving in germany"),
        pytest.param(NEW_YORK, "2026-11-26", False, id="thanksgiving in the us"),
        pytest.param(NEW_YORK, "2026-07-03", False, id="observed independence day"),
        pytest.param(
            BusinessCalendar("UTC", closed_dates=frozenset({date(2026, 12, 24)})),
            "2026-12-24",
            False,
            id="extra closed date",
        ),
    ],
)
def test_is_business_day(calendar: BusinessCalendar, day: str, expected: bool) -> None:
    """Weekends, the holiday calendar and closed dates are not business days."""
    assert calendar.is_business_day(date.fromisoformat(day)) is expected


@pytest.mark.parametrize(
    ("calendar", "year", "expected"),
    [
        pytest.param(BERLIN_WEEKENDS, 2026, 261, id="weekdays only"),
        pytest.param(BERLIN, 2026, 252, id="bavaria: nine holidays on weekdays"),
        pytest.param(NEW_YORK, 2026, 250, id="us: eleven holidays on weekdays"),
    ],
)
def test_business_days_in_a_year(calendar: BusinessCalendar, year: int, expected: int) -> None:
    """A whole year holds the weekdays minus the holidays that fall on them."""
    first = date(year, 1, 1)
    days = (date(year + 1, 1, 1) - first).days
    business = [first + timedelta(days=n) for n in range(days)]
    assert sum(calendar.is_business_day(day) for day in business) == expected


@pytest.mark.parametrize(
    ("calendar", "day", "expected"),
    [
        pytest.param(BERLIN, "2026-10-16", "2026-10-19", id="friday to monday"),
        pytest.param(BERLIN, "2026-10-19", "2026-10-20", id="monday to tuesday"),
        pytest.param(BERLIN, "2026-12-24", "2026-12-28", id="over christmas"),
        pytest.param(BERLIN, "2026-12-31", "2027-01-04", id="over new year"),
        pytest.param(BERLIN, "2025-12-31", "2026-01-02", id="to jan 2"),
        pytest.param(NEW_YORK, "2026-11-25", "2026-11-27", id="over thanksgiving"),
    ],
)
def test_next_business_day(calendar: BusinessCalendar, day: str, expected: str) -> None:
    """The next business day is strictly after the given day."""
    assert calendar.next_business_day(date.fromisoformat(day)) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param("2026-10-17", "2026-10-19", id="saturday rolls to monday"),
        pytest.param("2026-10-19", "2026-10-19", id="monday stays"),
        pytest.param("2026-12-25", "2026-12-28", id="holiday rolls on"),
    ],
)
def test_business_day_on_or_after(day: str, expected: str) -> None:
    """A business day is its own roll-forward; any other day rolls to the next one."""
    assert BERLIN.business_day_on_or_after(date.fromisoformat(day)) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("calendar", "return_date", "expected"),
    [
        pytest.param(BERLIN, "2026-10-16", "2026-10-19T00:00+02:00", id="back on a friday"),
        pytest.param(BERLIN, "2026-10-19", "2026-10-20T00:00+02:00", id="back on a monday"),
        pytest.param(BERLIN, "2026-10-17", "2026-10-20T00:00+02:00", id="back on a saturday"),
        pytest.param(BERLIN, "2026-12-24", "2026-12-28T00:00+01:00", id="back on christmas eve"),
        pytest.param(BERLIN, "2026-12-25", "2026-12-29T00:00+01:00", id="back on a holiday"),
        pytest.param(BERLIN, "2025-12-31", "2026-01-02T00:00+01:00", id="back on new year's eve"),
        pytest.param(BERLIN, "2026-10-23", "2026-10-26T00:00+01:00", id="across dst"),
        pytest.param(
            NEW_YORK, "2026-11-25", "2026-11-27T00:00-05:00", id="back before thanksgiving"
        ),
    ],
)
def test_resume_after_return(calendar: BusinessCalendar, return_date: str, expected: str) -> None:
    """Follow-ups resume one business day after the return date, at local midnight."""
    resume = calendar.resume_after_return(date.fromisoformat(return_date))
    assert resume.isoformat(timespec="minutes") == expected


@pytest.mark.parametrize(
    ("return_date", "expected"),
    [
        pytest.param(None, "2026-10-23T16:00+02:00", id="no date: five business days"),
        pytest.param("2026-11-02", "2026-11-03T00:00+01:00", id="named return date"),
    ],
)
def test_resume_after_out_of_office(return_date: str | None, expected: str) -> None:
    """An out-of-office reply without a readable date pauses for the default five days."""
    back = None if return_date is None else date.fromisoformat(return_date)
    resume = BERLIN.resume_after_out_of_office(at("2026-10-16T16:00+02:00"), back)
    assert resume.isoformat(timespec="minutes") == expected
    assert DEFAULT_OOO_PAUSE_DAYS == 5


def test_start_of_day_in_a_gap() -> None:
    """A day whose midnight falls in a DST gap starts when the gap ends."""
    start = CAIRO.start_of_day(date(2026, 4, 24))
    assert start.isoformat(timespec="minutes") == "2026-04-24T01:00+03:00"


@pytest.mark.parametrize(
    ("moment", "calendar", "expected"),
    [
        pytest.param("2026-10-23T23:30+00:00", TOKYO, "2026-10-24", id="tokyo is a day ahead"),
        pytest.param("2026-10-23T23:30+00:00", UTC_WEEKENDS, "2026-10-23", id="utc"),
        pytest.param("2026-10-24T02:00+00:00", NEW_YORK, "2026-10-23", id="new york is behind"),
    ],
)
def test_local_date(moment: str, calendar: BusinessCalendar, expected: str) -> None:
    """A moment's day is the day in the calendar's timezone, not in UTC."""
    assert calendar.local_date(at(moment)) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(
            lambda: BusinessCalendar("Mars/Olympus_Mons"), "unknown timezone", id="unknown timezone"
        ),
        pytest.param(lambda: BusinessCalendar(""), "timezone name", id="empty timezone"),
        pytest.param(
            lambda: BusinessCalendar("../etc/passwd"), "unknown timezone", id="path as timezone"
        ),
        pytest.param(
            lambda: BusinessCalendar("UTC", "XX"), "no holiday calendar", id="unknown country"
        ),
        pytest.param(
            lambda: BusinessCalendar("UTC", "DE", "XX"),
            "DE has no subdivision",
            id="unknown subdivision",
        ),
        pytest.param(
            lambda: BusinessCalendar("UTC", None, "BY"), "without a country", id="subdivision alone"
        ),
        pytest.param(
            lambda: BusinessCalendar("UTC", closed_dates=frozenset({datetime(2026, 1, 2)})),
            "not a date",
            id="datetime as closed date",
        ),
    ],
)
def test_bad_calendar_refused(build: Callable[[], object], message: str) -> None:
    """A calendar that could not answer correctly is refused when built."""
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: BERLIN.add_business_days(datetime(2026, 10, 16, 16), 1),
            "timezone-aware",
            id="naive start",
        ),
        pytest.param(
            lambda: BERLIN.add_business_days(at("2026-10-16T16:00+02:00"), -1),
            "negative",
            id="negative days",
        ),
        pytest.param(
            lambda: BERLIN.business_days_between(
                at("2026-10-16T16:00+02:00"), datetime(2026, 10, 20)
            ),
            "timezone-aware",
            id="naive end",
        ),
    ],
)
def test_bad_arguments_refused(call: Callable[[], object], message: str) -> None:
    """Naive datetimes and negative waits raise instead of guessing."""
    with pytest.raises(ValueError, match=message):
        call()


def test_codes_normalised() -> None:
    """Country and subdivision match in any case and are kept as `holidays` spells them."""
    calendar = BusinessCalendar("Europe/Berlin", "de", "by")
    assert (calendar.country, calendar.subdivision) == ("DE", "BY")
    assert calendar == BERLIN
    assert hash(calendar) == hash(BERLIN)


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        pytest.param(Holidays("DE", "BY"), BERLIN, id="with a holiday calendar"),
        pytest.param(None, BERLIN_WEEKENDS, id="weekends only"),
    ],
)
def test_from_settings(region: Holidays | None, expected: BusinessCalendar) -> None:
    """The calendar is built from `daemon.timezone` and `rules.holidays` as configured."""
    assert BusinessCalendar.from_settings("Europe/Berlin", region) == expected


def test_calendar_is_frozen() -> None:
    """A calendar is a value: it cannot be changed once built."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        BERLIN.timezone = "UTC"  # type: ignore[misc]
