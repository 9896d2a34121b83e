"""Business calendars: working hours in a time zone, public holidays, make-up working days, admin overrides.

"24 business hours from Friday 17:00 in Asia/Shanghai" walks forward through
the working intervals of each day, skipping weekends and public holidays but
working on make-up days (China's 调休: a Saturday or Sunday that is a working
day because a holiday was moved). Holiday data comes from the `holidays`
package; admins can close or open individual days on top of it.

Intervals are built in local time, then all arithmetic is done in UTC:
Python subtracts two datetimes of the same zone by wall clock, which is wrong
by an hour across a daylight-saving change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

MAX_DAYS_SEARCHED = 3 * 366  # a calendar with no working day would otherwise loop forever


@dataclass(frozen=True)
class BusinessCalendar:
    name: str
    zone: ZoneInfo
    hours: dict[int, tuple[tuple[time, time], ...]]  # weekday (Mon=0) -> working intervals
    country: str | None = None
    subdivision: str | None = None
    closed: frozenset[date] = field(default_factory=frozenset)
    working: frozenset[date] = field(default_factory=frozenset)  # admin-declared working days
    make_up_hours: tuple[tuple[time, time], ...] = ()  # hours on a working weekend/holiday day

    @cached_property
    def _holidays(self) -> holidays.HolidayBase | None:
        if not self.country:
            return None
        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    def holiday_name(self, day: date) -> str | None:
        table = self._holidays
        return table.get(day) if table is not None else None

    def is_make_up_day(self, day: date) -> bool:
        table = self._holidays
        if table is None:
            return False
        _ = day in table  # populates that year, weekend_workdays included
        return day in table.weekend_workdays

    def working_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's working intervals as UTC datetimes (empty on a day off)."""
        if day in self.closed:
            spans: tuple[tuple[time, time], ...] = ()
        elif day in self.working:
            spans = self.hours.get(day.weekday()) or self.make_up_hours
        elif self.holiday_name(day):
            spans = ()
        elif self.is_make_up_day(day):
            spans = self.make_up_hours
        else:
            spans = self.hours.get(day.weekday(), ())

        def instant(on: date, at: time) -> datetime:
            if at == time.max:  # "24:00": the next midnight, exactly
                on, at = on + timedelta(days=1), time(0)
            return datetime.combine(on, at, tzinfo=self.zone).astimezone(UTC)

        return [(instant(day, start), instant(day, end)) for start, end in spans]

    def is_working_day(self, day: date) -> bool:
        return bool(self.working_intervals(day))

    def add(self, start: datetime, span: timedelta) -> datetime:
        """The instant when `span` of working time has passed after `start` (in the calendar's zone)."""
        remaining = span
        day = start.astimezone(self.zone).date()
        start = start.astimezone(UTC)
        for _ in range(MAX_DAYS_SEARCHED):
            for opens, closes in self.working_intervals(day):
                begin = max(opens, start)
                if begin >= closes:
                    continue
                available = closes - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(self.zone)
                remaining -= available
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.name}: no working time within {MAX_DAYS_SEARCHED} days")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (zero if end is before start)."""
        total = timedelta(0)
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        while day <= last:
            for opens, closes in self.working_intervals(day):
                begin, finish = max(opens, start), min(closes, end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return total


def years_with_published_schedule(country: str) -> set[int] | None:
    """Years for which `holidays` has a country's published schedule of moved working days.

    Countries that move working days (China's 调休) publish them year by year;
    for those, a year without an entry has no usable data even though regular
    holidays can still be computed. Returns None for countries that do not
    move working days, whose data covers the package's whole year range.
    """
    special: dict[int, tuple] = getattr(holidays.country_holidays(country), "special_public_holidays", None) or {}

    def entries(year: int) -> tuple:
        value = special[year]
        return value if value and isinstance(value[0], tuple) else (value,)

    moved = sorted(year for year in special if any(len(entry) >= 4 for entry in entries(year)))
    recent = [year for year in moved if year >= moved[-1] - 4] if moved else []
    if len(recent) < 3:  # one-off substitutions are not a yearly schedule
        return None
    return set(special)


def missing_holiday_years(country: str, years: list[int]) -> list[int]:
    table = holidays.country_holidays(country)
    published = years_with_published_schedule(country)
    missing = []
    for year in years:
        in_range = table.start_year <= year <= table.end_year
        if not in_range or (published is not None and year not in published):
            missing.append(year)
    return missing
