"""Business days elapsed until one `now`, for many start moments at once.

`BusinessCalendar.business_days_between(start, end)` walks the calendar one day at a
time, which is right for one question but costs O(days) per prospect: ten thousand
prospects silent for a year are millions of steps. A report asks the same question for
every prospect with the same `now`, so `ElapsedBusinessDays` counts the business days
between each calendar day and `now` once, from `now` backwards, and answers each start
in O(1) amortised.

It gives exactly what `business_days_between(start, now)` gives (tests compare both):
the largest n with `add_business_days(start, n) <= now`. A start on a non-business day
counts from 00:00 of the next business day; the n-th business day after the start's day
counts once its wall-clock time of day (kept across DST, a time in a spring-forward gap
moved forward) has passed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from rules.business_days import BusinessCalendar

__all__ = ["ElapsedBusinessDays"]

_ONE_DAY = timedelta(days=1)


class ElapsedBusinessDays:
    """`business_days_between(start, now)` for one calendar and one `now`, memoised."""

    def __init__(self, calendar: BusinessCalendar, now: datetime) -> None:
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        self._calendar = calendar
        self._now = now
        self._last_day = calendar.local_date(now)
        # Business days in (day, last_day], filled downwards from last_day on demand.
        self._after: dict[date, int] = {self._last_day: 0}
        self._lowest = self._last_day

    @property
    def now(self) -> datetime:
        return self._now

    def since(self, start: datetime) -> int:
        """Whole business days from `start` to `now` (0 when `now` is not later)."""
        calendar = self._calendar
        local = start.astimezone(calendar.zone)
        day, time_of_day = local.date(), local.time().replace(fold=0)
        if not calendar.is_business_day(day):
            day, time_of_day = calendar.next_business_day(day), time()
        if day >= self._last_day:
            return 0
        elapsed = self._business_days_after(day)
        if calendar.is_business_day(self._last_day) and self._wall(time_of_day) > self._now:
            elapsed -= 1  # the last day's wait ends later today
        return elapsed

    def _business_days_after(self, day: date) -> int:
        while self._lowest > day:
            above = self._lowest
            self._lowest = above - _ONE_DAY
            business = 1 if self._calendar.is_business_day(above) else 0
            self._after[self._lowest] = self._after[above] + business
        return self._after[day]

    def _wall(self, time_of_day: time) -> datetime:
        """`time_of_day` on the last day as `BusinessCalendar` places it (DST gaps moved on)."""
        zone = self._calendar.zone
        return datetime.combine(self._last_day, time_of_day, tzinfo=zone).astimezone(UTC)
