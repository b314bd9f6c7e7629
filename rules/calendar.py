"""The working-day calendar (工作日历) and working hours (工作时间) that time limits count in.

A ``WorkingCalendar`` is weekdays minus statutory holidays plus make-up working days
(调休), from an exceptions table the deployment maintains, for the years it covers.
Asking about a year it does not cover raises ``CalendarGap``: the hub never silently
counts holidays as working days.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from schemas.exceptions import TerminalError

KINDS: Final = ("holiday", "workday")  # holiday on a weekday | make-up working day on a weekend


class CalendarGap(TerminalError, LookupError):
    """The calendar holds no data for a year (add its exceptions before counting in it)."""

    def __init__(self, year: int) -> None:
        super().__init__(f"the working-day calendar does not cover {year}; import its holidays and make-up days")
        self.year = year


class CalendarError(TerminalError, ValueError):
    """An exception row or a working-hours setting the calendar cannot use."""


@dataclass(frozen=True)
class CalendarException:
    """One day that differs from the weekday rule: a holiday on a weekday, or a make-up
    working day on a weekend."""

    day: date
    kind: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CalendarError(f"{self.day}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        weekend = self.day.weekday() >= 5
        if self.kind == "holiday" and weekend:
            raise CalendarError(f"{self.day} is a weekend day already; a holiday exception must fall on a weekday")
        if self.kind == "workday" and not weekend:
            raise CalendarError(f"{self.day} is a weekday already; a make-up working day must fall on a weekend")


class WorkingCalendar:
    """Working days over the covered years, from an exceptions table."""

    def __init__(self, exceptions: Iterable[CalendarException], years: Iterable[int]) -> None:
        self.years: frozenset[int] = frozenset(years)
        self._exceptions: Mapping[date, str] = {e.day: e.kind for e in exceptions}
        outside = sorted({d.year for d in self._exceptions} - self.years)
        if outside:
            raise CalendarError(f"exceptions given for years the calendar does not cover: {outside}")
        self._working_ordinals: dict[int, list[int]] = {}

    def working_ordinals(self, year: int) -> list[int]:
        """The ordinals (``date.toordinal``) of the working days of ``year``, in order; the
        index behind counting and stepping over many days at once."""
        if year not in self.years:
            raise CalendarGap(year)
        found = self._working_ordinals.get(year)
        if found is None:
            first = date(year, 1, 1).toordinal()
            found = [n for n in range(first, date(year, 12, 31).toordinal() + 1)
                     if self.is_working_day(date.fromordinal(n))]
            self._working_ordinals[year] = found
        return found

    def count_working_days(self, first: date, last: date) -> int:
        """Working days from ``first`` to ``last``, both included (0 when ``last`` is before)."""
        if last < first:
            return 0
        count = 0
        for year in range(first.year, last.year + 1):
            ordinals = self.working_ordinals(year)
            low = bisect.bisect_left(ordinals, first.toordinal()) if year == first.year else 0
            high = bisect.bisect_right(ordinals, last.toordinal()) if year == last.year else len(ordinals)
            count += high - low
        return count

    def nth_working_day_after(self, day: date, n: int) -> date:
        """The ``n``-th working day strictly after ``day`` (``n`` >= 1)."""
        year = day.year
        ordinals = self.working_ordinals(year)
        index = bisect.bisect_right(ordinals, day.toordinal()) + n - 1
        while index >= len(ordinals):
            index -= len(ordinals)
            year += 1
            ordinals = self.working_ordinals(year)
        return date.fromordinal(ordinals[index])

    def is_working_day(self, day: date) -> bool:
        if day.year not in self.years:
            raise CalendarGap(day.year)
        kind = self._exceptions.get(day)
        if kind is not None:
            return kind == "workday"
        return day.weekday() < 5

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 if ``end`` is not after)."""
        count, day = 0, start + timedelta(days=1)
        while day <= end:
            count += self.is_working_day(day)
            day += timedelta(days=1)
        return count

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day counted from the day after ``start``."""
        if days < 1:
            raise CalendarError("a working-day count must be at least 1")
        day = start
        for _ in range(days):
            day = self.next_working_day(day)
        return day


CLOSE_OF_DAY: Final = time(17, 30)


def working_deadline(calendar: WorkingCalendar, moment: datetime, days: int, close: time = CLOSE_OF_DAY) -> datetime:
    """The close of the ``days``-th working day after ``moment`` (naive local time): when a
    duty counted in working days from an act (a filing, a publication) falls due."""
    return datetime.combine(calendar.add_working_days(moment.date(), days), close)


def chinese_calendar_exceptions(years: Iterable[int]) -> list[CalendarException]:
    """Exception rows for ``years`` from the ``chinesecalendar`` package; ``CalendarGap``
    for a year the package does not know."""
    import chinese_calendar

    rows: list[CalendarException] = []
    for year in sorted(set(years)):
        day = date(year, 1, 1)
        while day.year == year:
            try:
                working = bool(chinese_calendar.is_workday(day))
            except NotImplementedError as error:
                raise CalendarGap(year) from error
            detail = chinese_calendar.get_holiday_detail(day)[1]
            note = str(detail) if detail else ""
            if day.weekday() < 5 and not working:
                rows.append(CalendarException(day, "holiday", note))
            elif day.weekday() >= 5 and working:
                rows.append(CalendarException(day, "workday", note))
            day += timedelta(days=1)
    return rows


def chinese_calendar_years() -> list[int]:
    """The years the installed ``chinesecalendar`` package covers."""
    import chinese_calendar

    found = []
    for year in range(2000, 2100):
        try:
            chinese_calendar.is_workday(date(year, 6, 30))
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            continue
        found.append(year)
    return found


@dataclass(frozen=True)
class WorkingPeriod:
    """One period of a working day, e.g. 09:00-12:00 (上午) or 13:30-17:30 (下午)."""

    start: time
    end: time

    @property
    def seconds(self) -> int:
        return (self.end.hour * 3600 + self.end.minute * 60) - (self.start.hour * 3600 + self.start.minute * 60)


def parse_working_hours(text: str) -> tuple[WorkingPeriod, ...]:
    """Periods from ``"09:00-12:00,13:30-17:30"``: in order, not overlapping, not empty."""
    periods: list[WorkingPeriod] = []
    for part in text.split(","):
        bounds = part.strip().split("-")
        try:
            if len(bounds) != 2:
                raise ValueError(part)
            start, end = (time.fromisoformat(b.strip()) for b in bounds)
        except ValueError as error:
            raise CalendarError(f"working hours {text!r}: {part.strip()!r} is not HH:MM-HH:MM") from error
        if end <= start:
            raise CalendarError(f"working hours {text!r}: period {part.strip()} ends before it starts")
        if periods and start < periods[-1].end:
            raise CalendarError(f"working hours {text!r}: periods overlap or are out of order")
        periods.append(WorkingPeriod(start, end))
    return tuple(periods)


@dataclass(frozen=True)
class WorkingTime:
    """A calendar and its working hours: working seconds between instants, and the
    instant a given amount of working time after another."""

    calendar: WorkingCalendar
    periods: tuple[WorkingPeriod, ...]

    @property
    def day_seconds(self) -> int:
        return sum(p.seconds for p in self.periods)

    def _spans(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.calendar.is_working_day(day):
            return []
        return [(datetime.combine(day, p.start), datetime.combine(day, p.end)) for p in self.periods]

    def _within(self, day: date, start: datetime, end: datetime) -> int:
        total = 0
        for low, high in self._spans(day):
            lo, hi = max(low, start), min(high, end)
            if hi > lo:
                total += int((hi - lo).total_seconds())
        return total

    def seconds_between(self, start: datetime, end: datetime) -> int:
        """Working seconds in [start, end) (naive local times). The whole days between the
        two ends are counted from the calendar's index, not walked one by one."""
        if end <= start:
            return 0
        first, last = start.date(), end.date()
        if first == last:
            return self._within(first, start, end)
        whole = self.calendar.count_working_days(first + timedelta(days=1), last - timedelta(days=1))
        return (self._within(first, start, end) + whole * self.day_seconds
                + self._within(last, datetime.combine(last, time.min), end))

    def advance(self, start: datetime, seconds: int) -> datetime:
        """The instant ``seconds`` of working time after ``start``; a start outside working
        hours counts from the next working period. An amount that ends exactly at the close
        of a period ends there (not at the next opening)."""
        left, day = seconds, start.date()
        for low, high in self._spans(day):
            lo = max(low, start)
            if high <= lo:
                continue
            span = int((high - lo).total_seconds())
            if left <= span:
                return lo + timedelta(seconds=left)
            left -= span
        whole, rest = divmod(left, self.day_seconds)
        if rest == 0 and whole > 0:  # ends at the close of the whole-th working day after
            target = self.calendar.nth_working_day_after(day, whole)
            return datetime.combine(target, self.periods[-1].end)
        target = self.calendar.nth_working_day_after(day, whole + 1)
        for low, high in self._spans(target):
            span = int((high - low).total_seconds())
            if rest <= span:
                return low + timedelta(seconds=rest)
            rest -= span
        raise AssertionError("a working day holds day_seconds of working time")

    def counting_start(self, accepted: datetime) -> datetime:
        """Counting starts on the working day after acceptance (DOMAIN.md), at its first period."""
        day = self.calendar.next_working_day(accepted.date())
        return datetime.combine(day, self.periods[0].start)
