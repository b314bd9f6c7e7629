"""One case under supervision, as pure rules: clocks, conditions and the next check."""

from __future__ import annotations

from datetime import datetime

import pytest

from rules.alerts import PRESETS, AlertPolicy
from rules.calendar import (
    CalendarGap,
    WorkingCalendar,
    WorkingTime,
    chinese_calendar_exceptions,
    parse_working_hours,
)
from rules.clocks import Pause
from rules.supervision import Order, Step, SupervisedCase, evaluate, item_pauses, item_state_at

TIME = WorkingTime(WorkingCalendar(chinese_calendar_exceptions([2026]), [2026]),
                   parse_working_hours("09:00-12:00,13:30-17:30"))


def case(**overrides: object) -> SupervisedCase:
    values: dict[str, object] = {
        "case_number": "32010000010000000001", "power_code": "P", "department": "行政审批处",
        "registered_at": datetime(2026, 3, 2, 9), "accepted_at": datetime(2026, 3, 2, 10), "finished_at": None,
        "statutory_limit": 5, "promised_limit": 3, "unit": "working_days",
    }
    values.update(overrides)
    return SupervisedCase(**values)  # type: ignore[arg-type]


def test_a_step_clock_counts_from_its_start_and_warns_per_step_under_js_2013b() -> None:
    # The 审查 step started Tue 3 Mar 14:00 with 2 promised working days: 4/5 = 11.2 h of
    # working time (Tue 3.5 h, Wed 7 h, Thu 0.7 h), reached Thu 5 Mar 09:42.
    steps = [Step(2, 5, datetime(2026, 3, 3, 14), None, 2, "working_days")]
    before = evaluate(case(steps=steps), TIME, PRESETS["JS-2013B"], datetime(2026, 3, 5, 9, 41))
    assert ("STEP_PROMISED_LIMIT", "32010000010000000001", 2) not in before.conditions
    step_clock = next(c for c in before.clocks if c.step_no == 2)
    assert step_clock.reading.due == datetime(2026, 3, 5, 14, 0)
    assert step_clock.next_check == datetime(2026, 3, 5, 9, 42)
    after = evaluate(case(steps=steps), TIME, PRESETS["JS-2013B"], datetime(2026, 3, 5, 9, 43))
    condition = after.conditions[("STEP_PROMISED_LIMIT", "32010000010000000001", 2)]
    assert condition.level == "warning" and condition.detail.startswith("第2环节承诺时限2个工作日")


def test_the_next_check_is_the_earliest_threshold_of_any_clock_or_order() -> None:
    order = Order(1, datetime(2026, 3, 3, 12), "issued")
    found = evaluate(case(orders=[order]), TIME, PRESETS["JS-2013A"], datetime(2026, 3, 3, 10))
    assert found.next_check == datetime(2026, 3, 3, 12, 0, 1)
    # Without the order: the last promised day (Thu 5 Mar) begins at 09:00, reached as the
    # end of Wed 4 Mar's working time.
    plain = evaluate(case(), TIME, PRESETS["JS-2013A"], datetime(2026, 3, 3, 10))
    assert plain.next_check == datetime(2026, 3, 4, 17, 30)
    paused = evaluate(case(pauses=[Pause("art45", datetime(2026, 3, 3, 9))]), TIME, PRESETS["JS-2013A"],
                      datetime(2026, 3, 3, 10))
    assert paused.next_check is None  # paused: only a change can move it


def test_conduct_levels_come_from_the_policy_and_can_be_turned_off() -> None:
    negative = case(finished_at=datetime(2026, 3, 2, 11), result=3, result_note="")
    assert evaluate(negative, TIME, PRESETS["JS-2013A"], datetime(2026, 3, 2, 12)).conditions[
        ("NEGATIVE_WITHOUT_REASONS", "32010000010000000001", 0)].level == "alarm"
    quiet = AlertPolicy.from_dict({"name": "q", "scheme": "late", "conduct_levels": {"NEGATIVE_WITHOUT_REASONS": None}})
    assert evaluate(negative, TIME, quiet, datetime(2026, 3, 2, 12)).conditions == {}


def test_fee_and_penalty_rules() -> None:
    fee = case(finished_at=datetime(2026, 3, 3, 11), result=2, result_note="准予", fee_due=1060, fee_standard=1000)
    assert ("FEE_DEVIATION", fee.case_number, 0) in evaluate(fee, TIME, PRESETS["JS-2013A"], datetime(2026, 3, 3, 12)).conditions
    late = case(occurred_on=datetime(2026, 2, 9), registered_at=datetime(2026, 3, 2, 9))
    assert ("PENALTY_REGISTERED_LATE", late.case_number, 0) in evaluate(
        late, TIME, PRESETS["JS-2013A"], datetime(2026, 3, 2, 12)).conditions


def test_finishing_on_time_is_reported_so_the_alerts_close() -> None:
    done = evaluate(case(finished_at=datetime(2026, 3, 4, 15)), TIME, PRESETS["JS-2013A"], datetime(2026, 3, 4, 16))
    assert done.finished_on_time and done.conditions == {} and done.next_check is None


def test_a_clock_reaching_an_uncovered_year_raises_the_gap() -> None:
    with pytest.raises(CalendarGap) as gap:
        evaluate(case(registered_at=datetime(2026, 12, 28, 9), accepted_at=datetime(2026, 12, 29, 10)),
                 TIME, PRESETS["JS-2013A"], datetime(2026, 12, 30, 10))
    assert gap.value.year == 2027


def test_item_history_gives_pauses_and_the_state_at_registration() -> None:
    history = [(datetime(2026, 1, 1), "A"), (datetime(2026, 3, 3, 9), "T"), (datetime(2026, 3, 5, 9), "A"),
               (datetime(2026, 4, 1), "T")]
    assert item_pauses(history) == [Pause("item_suspended", datetime(2026, 3, 3, 9), datetime(2026, 3, 5, 9)),
                                    Pause("item_suspended", datetime(2026, 4, 1))]
    assert item_state_at(history, datetime(2026, 3, 4)) == "T"
    assert item_state_at(history, datetime(2026, 3, 6)) == "A"
    assert item_state_at(history, datetime(2025, 12, 1)) == "A"
