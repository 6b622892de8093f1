"""Business days: the unit every wait in Relight is counted in (SPEC sections 4 and 5).

A follow-up is due "3 business days after the latest outbound message", an
out-of-office pause ends "one business day after the return date". A
`BusinessCalendar` answers those questions for one team: Saturdays, Sundays, the
public holidays of a `holidays` calendar (country, optional subdivision) and any
extra closed dates are skipped, and days are counted in one timezone
(`daemon.timezone`), because "Friday" is a local notion: a mail sent at 23:30 UTC is
already Saturday morning in Tokyo.

Like the rest of `rules/`, nothing here reads the clock; every moment is an argument.
The timezone database (`zoneinfo`) and the holiday tables (`holidays`) are pure data.
Theory of operation:

* **Business time.** Only the hours of business days count. `n` business days after a
  moment on a business day is the same local time of day `n` business days later: sent
  Friday 16:00, 3 business days later is Wednesday 16:00.
* **Weekend starts.** A moment on a non-business day counts from the start (00:00 local)
  of the next business day: a prospect can't be expected to answer over the weekend, so
  a mail sent Saturday 10:00 has had one business day to be answered at Tuesday 00:00,
  when Monday is over. The same rule covers holidays.
* **Wall-clock time.** Across a DST change the local time of day is kept (Friday 16:00
  CEST + 1 is Monday 16:00 CET, 73 hours later). A local time that does not exist on
  the resulting day (a spring-forward gap) moves forward by the gap (00:30 becomes 01:30
  where 00:00 jumps to 01:00); one that occurs twice takes its first occurrence.
* **Inverse.** `business_days_between(start, end)` is the largest `n` with
  `add_business_days(start, n) <= end`, so "due" and "days elapsed" always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "DEFAULT_OOO_PAUSE_DAYS",
    "BusinessCalendar",
    "HolidayRegion",
]

DEFAULT_OOO_PAUSE_DAYS = 5
"""Business days an out-of-office reply pauses follow-ups when it names no return date."""

_SATURDAY = 5  # date.weekday(): Monday is 0


class HolidayRegion(Protocol):
    """A holiday calendar's country and subdivision (`daemon.config.Holidays` is one)."""

    @property
    def country(self) -> str: ...

    @property
    def subdivision(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Which days are business days, and which timezone days are counted in.

    `timezone` is an IANA name ("Europe/Berlin"); `country` and `subdivision` name a
    calendar of the `holidays` package ("DE", "BY"; the subdivision in any case), None
    for weekends only; `closed_dates` are further days off (a company holiday). Bad
    values raise `ValueError` here, not on first use.
    """

    timezone: str
    country: str | None = None
    subdivision: str | None = None
    closed_dates: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _zone(self.timezone))
        country, subdivision = _region(self.country, self.subdivision)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "subdivision", subdivision)
        closed = frozenset(self.closed_dates)
        for day in closed:
            if isinstance(day, datetime) or not isinstance(day, date):
                raise ValueError(f"closed_dates holds {day!r}, not a date")
        object.__setattr__(self, "closed_dates", closed)

    @classmethod
    def from_settings(
        cls,
        timezone: str,
        region: HolidayRegion | None,
        closed_dates: Iterable[date] = (),
    ) -> BusinessCalendar:
        """The calendar of `daemon.timezone` and `rules.holidays` (None: weekends only)."""
        if region is None:
            return cls(timezone, closed_dates=frozenset(closed_dates))
        return cls(timezone, region.country, region.subdivision, frozenset(closed_dates))

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    # -- days -------------------------------------------------------------------

    def is_business_day(self, day: date) -> bool:
        """Whether `day` is neither a weekend, a holiday nor a closed date."""
        if day.weekday() >= _SATURDAY or day in self.closed_dates:
            return False
        if self.country is None:
            return True
        return day not in _holiday_dates(self.country, self.subdivision, day.year)

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def business_day_on_or_after(self, day: date) -> date:
        """`day` itself when it is a business day, else the next one."""
        return day if self.is_business_day(day) else self.next_business_day(day)

    def local_date(self, moment: datetime) -> date:
        """The date `moment` falls on in the calendar's timezone."""
        return self._local(moment).date()

    def start_of_day(self, day: date) -> datetime:
        """The first moment of `day` in the calendar's timezone (00:00, or the end of a gap)."""
        return self._at(day, time())

    # -- waits ------------------------------------------------------------------

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """The moment `days` business days after `start`, in the calendar's timezone.

        Same local time of day on the resulting business day; a `start` on a weekend or
        holiday counts from 00:00 of the next business day (see the module docstring).
        `days = 0` returns `start` itself.
        """
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        local = self._local(start)
        if days == 0:
            return local
        day, time_of_day = self._anchor(local)
        for _ in range(days):
            day = self.next_business_day(day)
        return self._at(day, time_of_day)

    def business_days_between(self, start: datetime, end: datetime) -> int:
        """Whole business days elapsed from `start` to `end`; 0 when `end` is not later.

        The largest `n` with `add_business_days(start, n) <= end`.
        """
        day, time_of_day = self._anchor(self._local(start))
        last_day = self._local(end).date()
        elapsed = 0
        while True:
            day = self.next_business_day(day)
            if day > last_day or self._at(day, time_of_day) > end:
                return elapsed
            elapsed += 1

    def calendar_days_between(self, start: datetime, end: datetime) -> int:
        """Days from `start`'s local date to `end`'s (Monday to next Tuesday is 8); never
        negative. For wording such as "it has been 8 days"."""
        return max(0, (self.local_date(end) - self.local_date(start)).days)

    # -- out of office ----------------------------------------------------------

    def resume_after_return(self, return_date: date) -> datetime:
        """When follow-ups may resume after an out-of-office return date (SPEC section 5).

        "No earlier than one business day after its return date": one business day
        after 00:00 of the return date, so the sender gets their first day back to catch
        up. Back Friday: Monday 00:00. Back on a weekend or holiday: the first business
        day back is the catch-up day (back Saturday, or on Friday 25 December: Tuesday).
        """
        return self.add_business_days(self.start_of_day(return_date), 1)

    def resume_after_out_of_office(self, reply_at: datetime, return_date: date | None) -> datetime:
        """When follow-ups may resume after an out-of-office reply sent at `reply_at`:
        after its return date when it named one, else `DEFAULT_OOO_PAUSE_DAYS` business
        days after the reply (SPEC section 4)."""
        if return_date is not None:
            return self.resume_after_return(return_date)
        return self.add_business_days(reply_at, DEFAULT_OOO_PAUSE_DAYS)

    # -- helpers ----------------------------------------------------------------

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
        return moment.astimezone(self._zone)

    def _anchor(self, local: datetime) -> tuple[date, time]:
        """The business day and local time of day a wait starting at `local` counts from."""
        day = local.date()
        if self.is_business_day(day):
            return day, local.time().replace(fold=0)
        return self.next_business_day(day), time()

    def _at(self, day: date, time_of_day: time) -> datetime:
        # fold=0 picks the first of two occurrences, and maps a time inside a gap with
        # the offset from before it; the round trip through UTC then shows the real time.
        wall = datetime.combine(day, time_of_day, tzinfo=self._zone)
        return wall.astimezone(UTC).astimezone(self._zone)


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"expected a timezone name such as 'Europe/Berlin', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


def _region(country: str | None, subdivision: str | None) -> tuple[str | None, str | None]:
    """The country and subdivision in the spelling `holidays` knows, or ValueError."""
    if country is None:
        if subdivision is not None:
            raise ValueError(f"subdivision {subdivision!r} given without a country")
        return None, None
    supported = _supported_calendars()
    code = country.upper()
    if code not in supported:
        raise ValueError(f"no holiday calendar for country {country!r}")
    if subdivision is None:
        return code, None
    by_upper = {known.upper(): known for known in supported[code]}
    if subdivision.upper() not in by_upper:
        known = ", ".join(supported[code]) or "none"
        raise ValueError(f"{code} has no subdivision {subdivision!r} (known: {known})")
    return code, by_upper[subdivision.upper()]


@lru_cache(maxsize=1)
def _supported_calendars() -> Mapping[str, list[str]]:
    supported: Mapping[str, list[str]] = holidays.list_supported_countries()
    return supported


@lru_cache(maxsize=512)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays of one year; built once per (calendar, year) and shared."""
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))
