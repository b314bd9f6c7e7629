"""Working-day calendar and working hours, hand-worked across the 2026 Spring Festival."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from rules.calendar import (
    CalendarError,
    CalendarException,
    CalendarGap,
    WorkingCalendar,
    WorkingTime,
    chinese_calendar_exceptions,
    chinese_calendar_years,
    parse_working_hours,
)

HOURS = parse_working_hours("09:00-12:00,13:30-17:30")


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar(chinese_calendar_exceptions([2026]), [2026])


def test_spring_festival_2026_seeded_from_chinesecalendar(calendar: WorkingCalendar) -> None:
    assert calendar.is_working_day(date(2026, 2, 14))  # make-up Saturday
    assert calendar.is_working_day(date(2026, 2, 28))  # make-up Saturday
    assert not any(calendar.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert calendar.is_working_day(date(2026, 2, 24))


def test_counting_across_the_festival(calendar: WorkingCalendar) -> None:
    # Accepted Fri 13 Feb: counting starts Sat 14 (make-up), then Tue 24 onwards.
    assert calendar.next_working_day(date(2026, 2, 13)) == date(2026, 2, 14)
    assert calendar.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert calendar.add_working_days(date(2026, 2, 13), 2) == date(2026, 2, 24)
    # 14, 24, 25, 26, 27, 28 (make-up Saturday), 2 March.
    assert calendar.add_working_days(date(2026, 2, 13), 7) == date(2026, 3, 2)
    assert calendar.working_days_between(date(2026, 2, 13), date(2026, 2, 28)) == 6


def test_a_year_without_data_refuses_loudly(calendar: WorkingCalendar) -> None:
    with pytest.raises(CalendarGap) as found:
        calendar.add_working_days(date(2026, 12, 30), 5)
    assert found.value.year == 2027
    with pytest.raises(CalendarGap):
        chinese_calendar_exceptions([2027])
    assert 2026 in chinese_calendar_years() and 2027 not in chinese_calendar_years()


def test_exception_rows_must_differ_from_the_weekday_rule() -> None:
    with pytest.raises(CalendarError):
        CalendarException(date(2026, 2, 14), "holiday")  # a Saturday
    with pytest.raises(CalendarError):
        CalendarException(date(2026, 2, 13), "workday")  # a Friday
    with pytest.raises(CalendarError):
        WorkingCalendar([CalendarException(date(2027, 1, 1), "holiday")], [2026])


def test_working_hours_are_validated() -> None:
    assert HOURS[1].seconds == 4 * 3600
    for bad in ("09:00-12:00,11:00-17:30", "12:00-09:00", "9-12", "09:00"):
        with pytest.raises(CalendarError):
            parse_working_hours(bad)


def test_working_time_starts_outside_hours_at_the_next_period(calendar: WorkingCalendar) -> None:
    clock = WorkingTime(calendar, HOURS)
    assert clock.day_seconds == 7 * 3600
    # Lunch break: 12:40 counts from 13:30.
    assert clock.advance(datetime(2026, 3, 2, 12, 40), 3600) == datetime(2026, 3, 2, 14, 30)
    # Evening of Fri 13 Feb: next period is the make-up Saturday morning.
    assert clock.advance(datetime(2026, 2, 13, 19, 0), 60) == datetime(2026, 2, 14, 9, 1)
    # One full working day from the make-up Saturday ends on Tue 24 Feb at 09:00 + 0.
    assert clock.advance(datetime(2026, 2, 14, 9, 0), 7 * 3600 + 60) == datetime(2026, 2, 24, 9, 1)
    assert clock.seconds_between(datetime(2026, 2, 13, 17, 0), datetime(2026, 2, 24, 10, 0)) == (
        1800 + 7 * 3600 + 3600
    )
    assert clock.counting_start(datetime(2026, 2, 13, 10, 0)) == datetime(2026, 2, 14, 9, 0)
