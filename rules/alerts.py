"""Supervision alerts (电子监察预警) as data: a time-limit policy per deployment (presets
JS-2013A and JS-2013B) and the pure lifecycle that turns open alerts and newly evaluated
conditions into raise / escalate / lift / close actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from rules.calendar import CalendarError
from rules.clocks import ClockReading

LEVELS: Final = ("reminder", "warning", "alarm")  # 提醒, 预警 (yellow card), 报警 (red card)
RANK: Final = {level: index for index, level in enumerate(LEVELS)}
LEVEL_NAMES: Final = {"reminder": "提醒", "warning": "预警", "alarm": "报警"}

# The level each conduct and supervision-order rule raises, unless a policy says otherwise.
CONDUCT_LEVELS: Final[Mapping[str, str]] = {
    "CORRECTION_REPEATED": "warning",
    "CORRECTION_AFTER_ACCEPTANCE": "warning",
    "STEP_BEFORE_REGISTRATION": "warning",
    "NEGATIVE_WITHOUT_REASONS": "alarm",
    "FEE_DEVIATION": "alarm",
    "PENALTY_REGISTERED_LATE": "warning",
    "ITEM_NOT_IN_USE": "alarm",
    "ORDER_NOT_STARTED": "alarm",
    "ORDER_NOT_FINISHED": "alarm",
    # Penalty decisions against the discretion standard in force (rules.discretion).
    "DISCRETION_NO_STANDARD": "warning",
    "DISCRETION_UNKNOWN_VIOLATION": "alarm",
    "DISCRETION_LEVEL_NOT_IN_STANDARD": "alarm",
    "DISCRETION_FINE_OUT_OF_RANGE": "alarm",
    "DISCRETION_BASE_MISSING": "warning",
    # A major decision not filed (报备) by its deadline (rules.major_cases).
    "MAJOR_CASE_NOT_FILED": "alarm",
    # A licence or penalty decision not published on the public side in time (双公示).
    "DISCLOSURE_LATE": "alarm",
}


@dataclass(frozen=True)
class AlertPolicy:
    """Time-limit thresholds. ``scheme`` "late" (JS-2013A): reminder on the last working
    day, warning more than ``warning_late_days`` late, alarm more than ``alarm_late_days``;
    ``scheme`` "fraction" (JS-2013B): warning at ``warning_fraction`` of the limit, alarm
    over it."""

    name: str
    scheme: str
    warning_late_days: int = 1
    alarm_late_days: int = 2
    warning_fraction: float = 0.8
    conduct_levels: Mapping[str, str] = field(default_factory=lambda: dict(CONDUCT_LEVELS))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertPolicy:
        if data.get("scheme") not in ("late", "fraction"):
            raise CalendarError(f"alert policy {data.get('name')!r}: scheme must be 'late' or 'fraction'")
        known = {"name", "scheme", "warning_late_days", "alarm_late_days", "warning_fraction", "conduct_levels"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CalendarError(f"alert policy {data.get('name')!r}: unknown keys {unknown}")
        values = dict(data)
        levels = {**CONDUCT_LEVELS, **dict(values.pop("conduct_levels", {}))}
        wrong = sorted(f"{rule}={level}" for rule, level in levels.items()
                       if rule not in CONDUCT_LEVELS or (level is not None and level not in RANK))
        if wrong:
            raise CalendarError(f"alert policy {data.get('name')!r}: conduct_levels {wrong}: rules are "
                                f"{', '.join(CONDUCT_LEVELS)}, levels {', '.join(LEVELS)} or null (off)")
        policy = cls(**values, conduct_levels=levels)
        if not 0 < policy.warning_fraction < 1:
            raise CalendarError("alert policy: warning_fraction must lie between 0 and 1")
        return policy


PRESETS: Final = {
    "JS-2013A": AlertPolicy("JS-2013A", "late"),
    "JS-2013B": AlertPolicy("JS-2013B", "fraction"),
}


def time_limit_level(policy: AlertPolicy, reading: ClockReading, day_seconds: int, *, statutory: bool) -> str | None:
    """The level a clock reading calls for under ``policy``; passing a statutory limit is always an alarm."""
    if reading.state.startswith("finished"):
        return None
    late = -reading.remaining_seconds
    if statutory:
        return "alarm" if late > 0 else None
    if policy.scheme == "late":
        if late > policy.alarm_late_days * day_seconds:
            return "alarm"
        if late > policy.warning_late_days * day_seconds:
            return "warning"
        return "reminder" if reading.remaining_seconds <= day_seconds else None
    total = reading.used_seconds + reading.remaining_seconds
    if late > 0:
        return "alarm"
    return "warning" if reading.used_seconds >= policy.warning_fraction * total else None


AlertKey = tuple[str, str, int | None]  # rule code, case number, step number


@dataclass(frozen=True)
class Action:
    kind: str  # raise | escalate | lift | close
    key: AlertKey
    level: str | None
    at: datetime


def lifecycle(
    open_alerts: Mapping[AlertKey, str],
    conditions: Mapping[AlertKey, str],
    finished_on_time: frozenset[str],
    now: datetime,
    *,
    closing_rules: frozenset[str] | None = None,
) -> list[Action]:
    """Actions that bring ``open_alerts`` (key → level) in line with ``conditions``: a new
    condition raises, a higher level escalates (lifting the lower), a condition gone lifts,
    and a case finished on time closes its open alerts (按时完成): those of ``closing_rules``
    when given (the time-limit rules; a filing made late is lifted, not closed)."""
    actions: list[Action] = []
    for key, level in sorted(conditions.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)):
        if level not in RANK:
            raise CalendarError(f"unknown alert level {level!r}")
        current = open_alerts.get(key)
        if current is None:
            actions.append(Action("raise", key, level, now))
        elif RANK[level] > RANK[current]:
            actions.append(Action("escalate", key, level, now))
    for key in sorted(set(open_alerts) - set(conditions), key=lambda k: (k[0], k[1], k[2] or 0)):
        closes = key[1] in finished_on_time and (closing_rules is None or key[0] in closing_rules)
        kind = "close" if closes else "lift"
        actions.append(Action(kind, key, None, now))
    return actions
