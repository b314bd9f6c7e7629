"""Time-limit clocks (办理时限) of a case or a step: statutory (法定) or promised (承诺)
limit in the item's unit, pauses (补正, 暂停, 中止, 行政许可法 Art. 45 hearings and expert
reviews, item 挂起), and the reading at a moment: due time, used, paused, remaining, state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from rules.calendar import CalendarError, WorkingTime

UNITS: Final = ("working_days", "calendar_days", "months", "years")
PAUSE_KINDS: Final = ("correction", "suspension", "interruption", "art45", "item_suspended")
STATES: Final = ("running", "paused", "overdue", "finished_on_time", "finished_late")


@dataclass(frozen=True)
class Pause:
    """A paused interval; ``end`` None means the pause is still open."""

    kind: str
    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in PAUSE_KINDS:
            raise CalendarError(f"unknown pause kind {self.kind!r}; kinds are {', '.join(PAUSE_KINDS)}")
        if self.end is not None and self.end < self.start:
            raise CalendarError(f"pause {self.kind} ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class ClockReading:
    start: datetime
    due: datetime
    used_seconds: int
    paused_seconds: int
    remaining_seconds: int
    state: str


def _merged(pauses: Iterable[Pause], now: datetime) -> list[tuple[datetime, datetime]]:
    spans = sorted((p.start, min(p.end or now, now)) for p in pauses if p.start < now)
    merged: list[tuple[datetime, datetime]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30,
                           31, 30, 31, 31, 30, 31, 30, 31][month - 1])
    return moment.replace(year=year, month=month, day=day)


def read_clock(
    time: WorkingTime,
    *,
    accepted: datetime,
    limit: int,
    unit: str,
    pauses: Iterable[Pause] = (),
    now: datetime,
    finished: datetime | None = None,
    from_next_day: bool = True,
) -> ClockReading:
    """The clock of a limit counted from the working day after ``accepted``, read at ``now``
    (or at ``finished``). Working-day limits count working hours; the other units count
    calendar time. Paused time is added to the due time. A step's promised time counts from
    the moment it started instead (``from_next_day=False``; outside working hours, from the
    next working period)."""
    if unit not in UNITS:
        raise CalendarError(f"unknown limit unit {unit!r}; units are {', '.join(UNITS)}")
    if limit < 1:
        raise CalendarError("a time limit must be at least 1")
    at = min(finished, now) if finished is not None else now
    spans = _merged(pauses, at)
    paused_now = any(p.start <= at and (p.end is None or p.end > at) for p in pauses)
    if unit == "working_days":
        start = time.counting_start(accepted) if from_next_day else time.advance(accepted, 0)
        paused = sum(time.seconds_between(low, high) for low, high in spans)
        total = limit * time.day_seconds
        due = time.advance(start, total + paused)
        used = (time.seconds_between(start, at) if at > start else 0) - paused
    else:
        start = (datetime.combine(time.calendar.next_working_day(accepted.date()), datetime.min.time())
                 if from_next_day else accepted)
        paused = int(sum((high - low).total_seconds() for low, high in spans))
        end = (start + timedelta(days=limit) if unit == "calendar_days"
               else _add_months(start, limit if unit == "months" else 12 * limit))
        total = int((end - start).total_seconds())
        due = end + timedelta(seconds=paused)
        used = (int((at - start).total_seconds()) if at > start else 0) - paused
    used = max(used, 0)
    if finished is not None and finished <= now:
        state = "finished_on_time" if finished <= due else "finished_late"
    elif at > due:
        state = "overdue"
    else:
        state = "paused" if paused_now else "running"
    return ClockReading(start, due, used, paused, total - used, state)
