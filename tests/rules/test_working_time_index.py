"""The indexed working-time arithmetic agrees with walking the calendar day by day (the
plain definition, kept here as the reference), across festivals, make-up days and years."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.calendar import (
    CalendarGap,
    WorkingCalendar,
    WorkingTime,
    chinese_calendar_exceptions,
    parse_working_hours,
)

YEARS = [2024, 2025, 2026]
TIME = WorkingTime(WorkingCalendar(chinese_calendar_exceptions(YEARS), YEARS),
                   parse_working_hours("09:00-12:00,13:30-17:30"))
MOMENTS = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 9, 30)).map(
    lambda m: m.replace(second=0, microsecond=0))


def walked_seconds_between(time: WorkingTime, start: datetime, end: datetime) -> int:
    total, day = 0, start.date()
    while day <= end.date():
        for low, high in time._spans(day):
            lo, hi = max(low, start), min(high, end)
            if hi > lo:
                total += int((hi - lo).total_seconds())
        day += timedelta(days=1)
    return total


def walked_advance(time: WorkingTime, start: datetime, seconds: int) -> datetime:
    left, day = seconds, start.date()
    while True:
        for low, high in time._spans(day):
            lo = max(low, start)
            if high <= lo:
                continue
            span = int((high - lo).total_seconds())
            if left <= span:
                return lo + timedelta(seconds=left)
            left -= span
        day += timedelta(days=1)


@settings(max_examples=300, deadline=None)
@given(MOMENTS, st.integers(min_value=0, max_value=40 * 25_200))
def test_advance_agrees_with_walking(start: datetime, seconds: int) -> None:
    assert TIME.advance(start, seconds) == walked_advance(TIME, start, seconds)


@settings(max_examples=300, deadline=None)
@given(MOMENTS, st.integers(min_value=0, max_value=90 * 86_400))
def test_seconds_between_agrees_with_walking(start: datetime, span: int) -> None:
    end = start + timedelta(seconds=span)
    assert TIME.seconds_between(start, end) == walked_seconds_between(TIME, start, end)


def test_exact_ends_across_the_2026_spring_festival() -> None:
    # Fri 13 Feb 17:30 + 1 working day: Sat 14 Feb is a make-up working day.
    assert TIME.advance(datetime(2026, 2, 13, 17, 30), 25_200) == datetime(2026, 2, 14, 17, 30)
    # Two working days after the close of Sat 14 Feb: the festival (15-23 Feb) is skipped.
    assert TIME.advance(datetime(2026, 2, 14, 17, 30), 2 * 25_200) == datetime(2026, 2, 25, 17, 30)
    assert TIME.advance(datetime(2026, 2, 14, 18, 0), 0) == datetime(2026, 2, 24, 9, 0)
    assert TIME.seconds_between(datetime(2026, 2, 13, 9), datetime(2026, 2, 25, 9)) == 3 * 25_200
    assert TIME.calendar.count_working_days(date(2026, 2, 14), date(2026, 2, 24)) == 2
    # 1-3 Jan 2026 are the New Year holiday and Sunday 4 Jan its make-up working day.
    assert TIME.calendar.nth_working_day_after(date(2025, 12, 31), 1) == date(2026, 1, 4)
    assert TIME.calendar.nth_working_day_after(date(2025, 12, 31), 2) == date(2026, 1, 5)


def test_the_index_refuses_a_year_the_calendar_lacks() -> None:
    with pytest.raises(CalendarGap) as gap:
        TIME.advance(datetime(2026, 12, 30, 10), 5 * 25_200)
    assert gap.value.year == 2027
    with pytest.raises(CalendarGap):
        TIME.seconds_between(datetime(2026, 12, 30, 10), datetime(2027, 1, 5, 10))
