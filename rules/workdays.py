"""Working days (工作日) of the Chinese calendar: weekdays minus statutory holidays plus
make-up working days (调休), from the ``chinesecalendar`` package.

The package knows a fixed range of years (2004-2026 in 1.11.0) and raises for others.
Outside that range the count falls back to weekends-only, and says so loudly: a log
warning once per year and the fallback years in ``WorkdayCount.fallback_years``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

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


def is_working_day(day: date) -> tuple[bool, bool]:
    """Whether ``day`` is a working day, and whether the answer is a weekends-only fallback."""
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(day)), False
    except NotImplementedError:
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
