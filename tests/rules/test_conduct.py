"""Conduct rules fire on bad cases and stay quiet on good ones."""

from __future__ import annotations

from datetime import datetime

from rules.calendar import WorkingCalendar, chinese_calendar_exceptions
from rules.conduct import CaseFacts, StepFact, conduct_findings

CAL = WorkingCalendar(chinese_calendar_exceptions([2026]), [2026])
REG = datetime(2026, 3, 2, 10)


def test_a_clean_case_has_no_findings() -> None:
    facts = CaseFacts("C1", REG, datetime(2026, 3, 3, 9), [StepFact(1, 4, datetime(2026, 3, 2, 11))],
                      result=3, result_note="材料不符合条件", fee_due=100, fee_standard=100,
                      occurred_on=datetime(2026, 2, 13))
    assert conduct_findings(facts, CAL) == []


def test_every_rule_fires() -> None:
    steps = [StepFact(1, 4, datetime(2026, 3, 1, 9)), StepFact(2, 4, datetime(2026, 3, 4, 9))]
    facts = CaseFacts("C2", REG, datetime(2026, 3, 3, 9), steps, result=1, result_note=" ",
                      fee_due=106, fee_standard=100, occurred_on=datetime(2026, 2, 9))
    assert conduct_findings(facts, CAL) == [
        ("CORRECTION_REPEATED", 2),
        ("CORRECTION_AFTER_ACCEPTANCE", 2),
        ("STEP_BEFORE_REGISTRATION", 1),
        ("NEGATIVE_WITHOUT_REASONS", None),
        ("FEE_DEVIATION", None),
        ("PENALTY_REGISTERED_LATE", None),  # 10..14 Feb (14 make-up), 24..28 Feb, 2 Mar: 11 working days
    ]
