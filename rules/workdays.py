"""Working days (工作日) for the quality checks: the one working-day calendar of
``rules.calendar`` (weekdays minus statutory holidays plus make-up working days 调休, seeded
from ``chinesecalendar``).

The calendar refuses a year it does not cover (``CalendarGap``). A quality check must still
report on data of such a year, so this module counts that year's weekends only and says so
loudly: a log warning once per year, and the years in ``WorkdayCount.fallback_years``,
which the penalty suite shows to the stewards next to the count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

from rules.calendar import (
    CalendarGap,
    WorkingCalendar,
    chinese_calendar_exceptions,
    chinese_calendar_years,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkdayCount:
    """A number of working days, and the years counted with weekends only (no holiday data)."""

    days: int
    fallback_years: frozenset[int] = field(default_factory=frozenset)


@cache
def _warn_fallback(year: int) -> None:
    log.warning(
        "WORKING-DAY CALENDAR FALLBACK: chinesecalendar has no holiday data for %d; "
        "counting weekends only (statutory holidays and make-up days of %d are ignored)",
        year,
        year,
    )


@cache
def _package_calendar() -> WorkingCalendar:
    years = chinese_calendar_years()
    return WorkingCalendar(chinese_calendar_exceptions(years), years)


def is_working_day(day: date) -> tuple[bool, bool]:
    """Whether ``day`` is a working day, and whether the answer is a weekends-only fallback."""
    try:
        return _package_calendar().is_working_day(day), False
    except CalendarGap:
        _warn_fallback(day.year)
        return day.weekday() < 5, True


def working_days_between(start: date, end: date) -> WorkdayCount:
    """Working days after ``start`` up to and including ``end`` (counting starts on the
    day after the event, as time limits do); 0 when ``end`` is not after ``start``."""
    days = 0
    fallback: set[int] = set()
    day = start + timedelta(days=1)
    while day <= end:
        working, guessed = is_working_day(day)
        days += working
        if guessed:
            fallback.add(day.year)
        day += timedelta(days=1)
    return WorkdayCount(days, frozenset(fallback))
