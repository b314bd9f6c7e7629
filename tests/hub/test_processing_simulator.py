"""The processing simulator is deterministic and follows the case state machine."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta, timezone

import chinese_calendar

from connectors.clock import CST, iso
from hub.simulators.processing import (
    PENALTY_SCENARIOS,
    SCENARIOS,
    TERMINAL,
    WEIGHTS,
    WORKING_PERIODS,
    add_working_minutes,
    scenario_for,
    timeline,
)

ALLOWED = {
    "registered": {"accepted", "not_accepted", "correction_requested"},
    "correction_requested": {"registered"},
    "accepted": {"in_progress", "stopped"},
    "in_progress": {"paused", "returned", "granted", "refused", "stopped", "correction_requested"},
    "paused": {"in_progress"},
    "returned": {"in_progress"},
}


def test_scenario_is_a_function_of_case_number_and_seed() -> None:
    numbers = [f"3201000001{n:010d}" for n in range(1, 2001)]
    first = [scenario_for(n, 7) for n in numbers]
    assert first == [scenario_for(n, 7) for n in numbers]
    assert first != [scenario_for(n, 8) for n in numbers]
    seen = Counter(first)
    assert set(seen) == set(WEIGHTS)
    assert seen["granted"] > seen["refused"] > 0


def test_every_scenario_walks_legal_transitions_and_ends_properly() -> None:
    for name, steps in SCENARIOS.items():
        state = "registered"
        for step in steps:
            assert step.state in ALLOWED[state], (name, state, step.state)
            assert 1 <= step.step_status <= 7
            state = step.state
        assert state in TERMINAL, name
        assert steps[-1].result is not None or state == "stopped", name


def _walked_working_minutes(start: datetime, minutes: int, seconds: int = 0) -> datetime:
    """The simulator's first add_working_minutes, which walked the working periods day by
    day: the reference its arithmetic must agree with to the second."""
    moment = start.astimezone(CST).replace(microsecond=0)
    left = minutes * 60 + seconds
    while True:
        day = moment.date()
        if day.weekday() < 5:
            for begin, end in WORKING_PERIODS:
                period_start = datetime.combine(day, begin, CST)
                period_end = datetime.combine(day, end, CST)
                if moment >= period_end:
                    continue
                moment = max(moment, period_start)
                available = int((period_end - moment).total_seconds())
                if left < available:
                    return moment + timedelta(seconds=left)
                left -= available
                moment = period_end
        moment = datetime.combine(day + timedelta(days=1), time(0, 0), CST)


def _starts(rng: random.Random, count: int) -> list[datetime]:
    """Moments anywhere in 2020-2027, on statutory holidays and make-up working days (the
    simulator counts weekdays only, holidays or not), and on the period boundaries."""
    special = sorted(chinese_calendar.holidays | chinese_calendar.workdays)
    boundaries = [time(0, 0), time(8, 59, 59), time(9, 0), time(11, 59, 59), time(12, 0), time(13, 29, 59),
                  time(13, 30), time(17, 29, 59), time(17, 30), time(23, 59, 59)]
    starts = []
    for _ in range(count):
        day = (rng.choice(special) if rng.random() < 0.4
               else date(2020, 1, 1) + timedelta(days=rng.randrange(8 * 365)))
        if rng.random() < 0.4:
            clock = rng.choice(boundaries)
        else:
            clock = time(rng.randrange(24), rng.randrange(60), rng.randrange(60), rng.choice((0, 999_999)))
        moment = datetime.combine(day, clock, CST)
        starts.append(moment.astimezone(rng.choice((CST, UTC, timezone(timedelta(hours=-5))))))
    return starts


def test_working_minute_arithmetic_agrees_with_walking_the_periods() -> None:
    rng = random.Random(2026)
    lengths = [0, 1, 30, 180, 270, 390, 420, 2 * 420, 5 * 420, 7 * 420, 15 * 420]
    for start in _starts(rng, 20_000):
        minutes = rng.choice(lengths) if rng.random() < 0.5 else rng.randrange(20 * 420)
        seconds = rng.choice((0, rng.randrange(60)))
        expected = _walked_working_minutes(start, minutes, seconds)
        got = add_working_minutes(start, minutes, seconds)
        assert (got, got.utcoffset()) == (expected, expected.utcoffset()), (start, minutes, seconds)
        assert iso(got) == iso(expected)


def test_timeline_is_the_chain_of_working_minute_steps() -> None:
    # timeline() adds the delays up on working positions; this is the chain it replaced,
    # with the same random draws.
    starts = _starts(random.Random(7), 300)
    for serial, start in enumerate(starts):
        number = f"3201000001{serial:010d}"
        category = "CF" if serial % 3 == 0 else None
        steps = (PENALTY_SCENARIOS if category == "CF" else SCENARIOS)[scenario_for(number, 7, category)]
        draws = random.Random(f"7:{number}:timing")
        moment, expected = start, []
        for transition in steps:
            moment = _walked_working_minutes(moment, draws.randint(*transition.delay), draws.randrange(60))
            expected.append((transition, moment))
        assert timeline(number, 7, start, category) == expected
