"""Conduct alert rules (行为监察) over one case: repeated or late correction requests, late
penalty registration, negative decisions without reasons, fee deviation, steps dated
before registration. Each returns the rule codes that fire, as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from rules.calendar import WorkingCalendar
from rules.opinions import NEGATIVE_RESULTS, states_reasons

CORRECTION: Final = 4  # step status 4: correction requested (DOMAIN "Steps")
PENALTY_REGISTRATION_DAYS: Final = 10
FEE_TOLERANCE: Final = 0.05


@dataclass(frozen=True)
class StepFact:
    step_no: int
    status: int
    started_at: datetime


@dataclass(frozen=True)
class CaseFacts:
    case_number: str
    registered_at: datetime
    accepted_at: datetime | None
    steps: Sequence[StepFact]
    result: int | None = None
    result_note: str = ""
    fee_due: int | None = None
    fee_standard: int | None = None
    occurred_on: datetime | None = None  # penalty cases: the offence
    item_state: str = "A"  # the power item's state when the case was registered


def conduct_findings(facts: CaseFacts, calendar: WorkingCalendar) -> list[tuple[str, int | None]]:
    """(rule code, step number or None) for every conduct rule the case breaks."""
    found: list[tuple[str, int | None]] = []
    if facts.item_state != "A":
        found.append(("ITEM_NOT_IN_USE", None))
    corrections = [s for s in facts.steps if s.status == CORRECTION]
    if len(corrections) > 1:
        found.append(("CORRECTION_REPEATED", corrections[1].step_no))
    for step in corrections:
        if facts.accepted_at is not None and step.started_at > facts.accepted_at:
            found.append(("CORRECTION_AFTER_ACCEPTANCE", step.step_no))
    for step in facts.steps:
        if step.started_at < facts.registered_at:
            found.append(("STEP_BEFORE_REGISTRATION", step.step_no))
    if facts.result in NEGATIVE_RESULTS and not states_reasons(facts.result_note):
        found.append(("NEGATIVE_WITHOUT_REASONS", None))
    if (facts.fee_due is not None and facts.fee_standard
            and abs(facts.fee_due - facts.fee_standard) > FEE_TOLERANCE * facts.fee_standard):
        found.append(("FEE_DEVIATION", None))
    if facts.occurred_on is not None:
        late = calendar.working_days_between(facts.occurred_on.date(), facts.registered_at.date())
        if late > PENALTY_REGISTRATION_DAYS:
            found.append(("PENALTY_REGISTERED_LATE", None))
    return found
