"""Clocks hand-worked across the 2026 Spring Festival, with pauses and 挂起/解挂."""

from __future__ import annotations

from datetime import datetime

import pytest

from rules.calendar import (
    CalendarError,
    CalendarGap,
    WorkingCalendar,
    WorkingTime,
    chinese_calendar_exceptions,
    parse_working_hours,
)
from rules.clocks import Pause, read_clock

DAY = 7 * 3600


@pytest.fixture(scope="module")
def time() -> WorkingTime:
    return WorkingTime(WorkingCalendar(chinese_calendar_exceptions([2026]), [2026]), parse_working_hours("09:00-12:00,13:30-17:30"))


def test_three_working_days_across_the_festival(time: WorkingTime) -> None:
    # Accepted Fri 13 Feb: Sat 14 (make-up), Tue 24, Wed 25 -> due Wed 25 17:30.
    reading = read_clock(time, accepted=datetime(2026, 2, 13, 10), limit=3, unit="working_days",
                         now=datetime(2026, 2, 24, 10, 30))
    assert reading.due == datetime(2026, 2, 25, 17, 30)
    assert reading.used_seconds == DAY + 3600 + 1800
    assert reading.remaining_seconds == 3 * DAY - reading.used_seconds
    assert reading.state == "running"
    assert read_clock(time, accepted=datetime(2026, 2, 13, 10), limit=3, unit="working_days",
                      now=datetime(2026, 2, 26, 9, 1)).state == "overdue"


def test_correction_and_item_suspension_pause_the_clock(time: WorkingTime) -> None:
    # 补正 for the whole of Tue 24 Feb, 挂起 open from Thu 26 09:00: due moves by the paused time.
    pauses = [Pause("correction", datetime(2026, 2, 24, 8), datetime(2026, 2, 24, 18)),
              Pause("item_suspended", datetime(2026, 2, 26, 9))]
    reading = read_clock(time, accepted=datetime(2026, 2, 13, 10), limit=3, unit="working_days",
                         pauses=pauses, now=datetime(2026, 2, 26, 15))
    assert reading.state == "paused"
    assert reading.paused_seconds == DAY + 3 * 3600 + 1.5 * 3600
    assert reading.used_seconds == 2 * DAY  # Sat 14 and Wed 25
    # 解挂 at Thu 26 16:00: one working day (7 h) left: Thu 16:00-17:30, Fri 27 09:00-12:00 and 13:30-16:00.
    pauses[1] = Pause("item_suspended", datetime(2026, 2, 26, 9), datetime(2026, 2, 26, 16))
    resumed = read_clock(time, accepted=datetime(2026, 2, 13, 10), limit=3, unit="working_days",
                         pauses=pauses, now=datetime(2026, 2, 26, 16, 30))
    assert resumed.state == "running"
    assert resumed.due == datetime(2026, 2, 27, 16, 0)
    assert resumed.remaining_seconds == DAY - 1800


def test_calendar_days_and_finishing(time: WorkingTime) -> None:
    reading = read_clock(time, accepted=datetime(2026, 2, 13, 10), limit=10, unit="calendar_days",
                         now=datetime(2026, 3, 1), finished=datetime(2026, 2, 23, 23))
    assert reading.due == datetime(2026, 2, 24)
    assert reading.state == "finished_on_time"


def test_a_clock_into_2027_refuses(time: WorkingTime) -> None:
    with pytest.raises(CalendarGap):
        read_clock(time, accepted=datetime(2026, 12, 28, 10), limit=20, unit="working_days",
                   now=datetime(2026, 12, 29))
    with pytest.raises(CalendarError):
        read_clock(time, accepted=datetime(2026, 2, 13), limit=3, unit="weeks", now=datetime(2026, 2, 14))
