"""Penalty discretion standards (行政处罚自由裁量基准) as data, and the check of a penalty
decision against the standard in force on its decision date.

A standard belongs to a CF item version (its ``discretion`` field), so it is versioned,
imported and approved with the item. Per violation it lists circumstance levels (light,
ordinary, serious), each with the fine range it allows: absolute (yuan) or a multiple of a
base such as the illegal income. The check returns findings as data; the supervision pass
turns them into alerts for 法制处.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

LEVELS: Final = ("light", "ordinary", "serious")
LEVEL_NAMES: Final = {"light": "轻微", "ordinary": "一般", "serious": "严重"}
FINE: Final = "fine"

NO_STANDARD: Final = "DISCRETION_NO_STANDARD"
UNKNOWN_VIOLATION: Final = "DISCRETION_UNKNOWN_VIOLATION"
LEVEL_NOT_IN_STANDARD: Final = "DISCRETION_LEVEL_NOT_IN_STANDARD"
FINE_OUT_OF_RANGE: Final = "DISCRETION_FINE_OUT_OF_RANGE"
BASE_MISSING: Final = "DISCRETION_BASE_MISSING"
RULES: Final = (NO_STANDARD, UNKNOWN_VIOLATION, LEVEL_NOT_IN_STANDARD, FINE_OUT_OF_RANGE, BASE_MISSING)


@dataclass(frozen=True)
class FineRange:
    """Absolute (``base`` None: yuan) or a multiple of ``base`` (e.g. illegal income)."""

    low: Decimal
    high: Decimal
    base: str | None = None

    def bounds_fen(self, bases: Mapping[str, int | None]) -> tuple[int, int] | None:
        """The range in fen for this decision, None when its base is unknown."""
        if self.base is None:
            return int(self.low * 100), int(self.high * 100)
        amount = bases.get(self.base)
        if amount is None:
            return None
        return int(self.low * amount), int(self.high * amount)

    def describe(self) -> str:
        if self.base is None:
            return f"{self.low:,}至{self.high:,}元"
        return f"违法所得{self.low}至{self.high}倍"


@dataclass(frozen=True)
class Violation:
    code: str
    name: str
    levels: Mapping[str, FineRange]


@dataclass(frozen=True)
class DiscretionStandard:
    standard_id: str
    violations: Mapping[str, Violation]

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> DiscretionStandard:
        violations = {}
        for v in document["violations"]:
            levels = {}
            for level in v["levels"]:
                fine = level["fine"]
                if "base" in fine:
                    levels[level["level"]] = FineRange(Decimal(str(fine["min_multiple"])),
                                                       Decimal(str(fine["max_multiple"])), fine["base"])
                else:
                    levels[level["level"]] = FineRange(Decimal(str(fine["min_yuan"])), Decimal(str(fine["max_yuan"])))
            violations[v["code"]] = Violation(v["code"], v["name"], levels)
        return cls(document["standard_id"], violations)


def standard_problems(document: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say about a standard: ranges upside down, a violation or a
    level given twice, higher levels allowing less than lower ones."""
    problems: list[str] = []
    codes = [v["code"] for v in document["violations"]]
    if len(codes) != len(set(codes)):
        problems.append("/discretion/violations: a violation code is listed twice")
    for index, violation in enumerate(document["violations"]):
        names = [level["level"] for level in violation["levels"]]
        if len(names) != len(set(names)):
            problems.append(f"/discretion/violations/{index}: a circumstance level is listed twice")
        for number, level in enumerate(violation["levels"]):
            fine = level["fine"]
            low, high = (fine["min_multiple"], fine["max_multiple"]) if "base" in fine else (fine["min_yuan"], fine["max_yuan"])
            if low > high:
                problems.append(f"/discretion/violations/{index}/levels/{number}/fine: minimum {low} exceeds maximum {high}")
    return problems


@dataclass(frozen=True)
class DiscretionFinding:
    rule: str
    message: str


def check_decision(
    standard: DiscretionStandard | None,
    *,
    violation_code: str | None,
    level: str,
    fine_fen: int,
    bases: Mapping[str, int | None],
    penalty_kinds: Sequence[str] = (FINE,),
) -> list[DiscretionFinding]:
    """Findings for one penalty decision against the standard in force on its date (an
    empty list: within the standard). Only decisions with a fine are checked for range."""
    if standard is None:
        return [DiscretionFinding(NO_STANDARD, "处罚决定所适用的事项在决定日没有自由裁量基准")]
    violation = standard.violations.get(violation_code or "")
    if violation is None:
        return [DiscretionFinding(UNKNOWN_VIOLATION,
                                  f"违法行为代码{violation_code or '（空）'}不在裁量基准{standard.standard_id}中")]
    fine_range = violation.levels.get(level)
    if fine_range is None:
        allowed = "、".join(LEVEL_NAMES.get(name, name) for name in violation.levels)
        return [DiscretionFinding(LEVEL_NOT_IN_STANDARD,
                                  f"裁量等级“{LEVEL_NAMES.get(level, level)}”不在基准{standard.standard_id}"
                                  f"“{violation.name}”的等级（{allowed}）之内")]
    if FINE not in penalty_kinds and fine_fen == 0:
        return []
    bounds = fine_range.bounds_fen(bases)
    if bounds is None:
        return [DiscretionFinding(BASE_MISSING, f"按{fine_range.describe()}裁量，但未记录违法所得")]
    low, high = bounds
    if not low <= fine_fen <= high:
        return [DiscretionFinding(FINE_OUT_OF_RANGE,
                                  f"罚款{fine_fen / 100:,.2f}元超出基准{standard.standard_id}“{violation.name}”"
                                  f"{LEVEL_NAMES[level]}情节的幅度（{fine_range.describe()}，即{low / 100:,.2f}至"
                                  f"{high / 100:,.2f}元）")]
    return []
