"""Alert presets and the alert lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest

from rules.alerts import PRESETS, Action, AlertPolicy, lifecycle, time_limit_level
from rules.calendar import CalendarError
from rules.clocks import ClockReading

DAY = 7 * 3600
NOW = datetime(2026, 3, 2, 10)


def reading(used: int, total: int) -> ClockReading:
    return ClockReading(NOW, NOW, used, 0, total - used, "running" if used <= total else "overdue")


def test_js_2013a_reminder_warning_alarm() -> None:
    policy = PRESETS["JS-2013A"]
    assert time_limit_level(policy, reading(3 * DAY, 5 * DAY), DAY, statutory=False) is None
    assert time_limit_level(policy, reading(4 * DAY, 5 * DAY), DAY, statutory=False) == "reminder"
    assert time_limit_level(policy, reading(6 * DAY, 5 * DAY), DAY, statutory=False) == "reminder"
    assert time_limit_level(policy, reading(6 * DAY + 1, 5 * DAY), DAY, statutory=False) == "warning"
    assert time_limit_level(policy, reading(7 * DAY + 1, 5 * DAY), DAY, statutory=False) == "alarm"


def test_js_2013b_fraction_and_statutory_always_alarm() -> None:
    policy = PRESETS["JS-2013B"]
    assert time_limit_level(policy, reading(3 * DAY, 5 * DAY), DAY, statutory=False) is None
    assert time_limit_level(policy, reading(4 * DAY, 5 * DAY), DAY, statutory=False) == "warning"
    assert time_limit_level(policy, reading(5 * DAY + 1, 5 * DAY), DAY, statutory=False) == "alarm"
    assert time_limit_level(PRESETS["JS-2013A"], reading(5 * DAY + 1, 5 * DAY), DAY, statutory=True) == "alarm"


def test_policy_from_dict_is_checked() -> None:
    assert AlertPolicy.from_dict({"name": "X", "scheme": "fraction", "warning_fraction": 0.9}).warning_fraction == 0.9
    with pytest.raises(CalendarError):
        AlertPolicy.from_dict({"name": "X", "scheme": "nope"})
    with pytest.raises(CalendarError):
        AlertPolicy.from_dict({"name": "X", "scheme": "late", "colour": "red"})


def test_lifecycle_raise_escalate_lift_close() -> None:
    key = ("TIME_PROMISED", "C1", None)
    assert lifecycle({}, {key: "warning"}, frozenset(), NOW) == [Action("raise", key, "warning", NOW)]
    assert lifecycle({key: "warning"}, {key: "alarm"}, frozenset(), NOW) == [Action("escalate", key, "alarm", NOW)]
    assert lifecycle({key: "alarm"}, {key: "warning"}, frozenset(), NOW) == []
    assert lifecycle({key: "warning"}, {}, frozenset(), NOW) == [Action("lift", key, None, NOW)]
    assert lifecycle({key: "warning"}, {}, frozenset({"C1"}), NOW) == [Action("close", key, None, NOW)]
