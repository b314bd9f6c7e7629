"""Major cases (重大行政许可 / 重大行政处罚) and their filing (报备): which decisions of an
item are major under its catalogue rule, and by when the filing is due."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from rules.calendar import WorkingCalendar, working_deadline

DECISION_RESULTS: Final = (2, 3)  # granted, refused: a licensing decision


def is_major(rule: Mapping[str, Any] | None, *, result: int | None, penalty_decided: bool,
             fine_fen: int = 0, penalty_kinds: Sequence[str] = ()) -> bool:
    """Whether a decision is major under the item's ``major_case`` rule (None: never)."""
    if rule is None:
        return False
    decided = penalty_decided or result in DECISION_RESULTS
    if not decided:
        return False
    if rule.get("every_decision"):
        return True
    threshold = rule.get("fine_yuan_at_least")
    if penalty_decided and threshold is not None and fine_fen >= threshold * 100:
        return True
    return penalty_decided and bool(set(rule.get("penalty_kinds", ())) & set(penalty_kinds))


def filing_deadline(calendar: WorkingCalendar, decided: datetime, days: int) -> datetime:
    """The close of the ``days``-th working day after the decision (naive local time)."""
    return working_deadline(calendar, decided, days)
