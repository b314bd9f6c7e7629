"""Discretion standards (自由裁量基准): the data, its problems, and the check of a decision."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from rules.catalogue import item_problems
from rules.discretion import (
    BASE_MISSING,
    FINE_OUT_OF_RANGE,
    LEVEL_NOT_IN_STANDARD,
    NO_STANDARD,
    UNKNOWN_VIOLATION,
    DiscretionStandard,
    check_decision,
)

CATALOGUE = Path(__file__).parents[2] / "hub" / "defaults" / "catalogue.json"
STANDARD = {
    "standard_id": "宁交法〔2026〕9号",
    "violations": [
        {"code": "V01", "name": "擅自经营", "levels": [
            {"level": "light", "fine": {"min_yuan": 1000, "max_yuan": 5000}},
            {"level": "ordinary", "fine": {"min_yuan": 5000, "max_yuan": 20000}},
        ]},
        {"code": "V02", "name": "违法所得", "levels": [
            {"level": "serious", "fine": {"base": "illegal_income", "min_multiple": 1, "max_multiple": 3}},
        ]},
    ],
}


def check(**decision: Any) -> list[str]:
    values: dict[str, Any] = {"violation_code": "V01", "level": "light", "fine_fen": 300_000, "bases": {}}
    values.update(decision)
    return [f.rule for f in check_decision(DiscretionStandard.from_document(STANDARD), **values)]


def test_absolute_ranges_include_their_ends() -> None:
    assert check(fine_fen=100_000) == [] and check(fine_fen=500_000) == []
    assert check(fine_fen=500_001) == [FINE_OUT_OF_RANGE]
    assert check(fine_fen=99_900) == [FINE_OUT_OF_RANGE]
    assert check(level="ordinary", fine_fen=600_000) == []


def test_multiples_of_the_illegal_income() -> None:
    assert check(violation_code="V02", level="serious", fine_fen=3_000_000, bases={"illegal_income": 1_000_000}) == []
    assert check(violation_code="V02", level="serious", fine_fen=3_000_100,
                 bases={"illegal_income": 1_000_000}) == [FINE_OUT_OF_RANGE]
    assert check(violation_code="V02", level="serious", fine_fen=100, bases={"illegal_income": None}) == [BASE_MISSING]


def test_wrong_level_unknown_violation_and_no_standard() -> None:
    assert check(level="serious") == [LEVEL_NOT_IN_STANDARD]
    assert check(violation_code="V99") == [UNKNOWN_VIOLATION]
    assert check(violation_code=None) == [UNKNOWN_VIOLATION]
    assert [f.rule for f in check_decision(None, violation_code="V01", level="light", fine_fen=1, bases={})] == [NO_STANDARD]
    # A decision without a fine (a warning only) is not range-checked, but its level is.
    assert check(fine_fen=0, penalty_kinds=["warning"]) == []
    assert check(level="serious", fine_fen=0, penalty_kinds=["warning"]) == [LEVEL_NOT_IN_STANDARD]


def test_the_finding_says_the_range_in_chinese() -> None:
    [finding] = check_decision(DiscretionStandard.from_document(STANDARD), violation_code="V01", level="light",
                               fine_fen=800_000, bases={})
    assert finding.message == ("罚款8,000.00元超出基准宁交法〔2026〕9号“擅自经营”轻微情节的幅度"
                               "（1,000至5,000元，即1,000.00至5,000.00元）")


def test_a_standard_is_checked_with_its_item() -> None:
    documents = json.loads(CATALOGUE.read_text("utf-8"))
    penalty = next(d for d in documents if d["category"] == "CF")
    assert "discretion" in penalty and item_problems(penalty) == []
    upside_down = copy.deepcopy(penalty)
    upside_down["discretion"]["violations"][0]["levels"][0]["fine"] = {"min_yuan": 9000, "max_yuan": 10}
    assert any("minimum 9000 exceeds maximum 10" in p for p in item_problems(upside_down))
    twice = copy.deepcopy(penalty)
    twice["discretion"]["violations"].append(twice["discretion"]["violations"][0])
    assert any("violation code is listed twice" in p for p in item_problems(twice))
    licence = copy.deepcopy(next(d for d in documents if d["category"] == "XK"))
    licence["discretion"] = penalty["discretion"]
    assert any("only penalty (CF) items" in p for p in item_problems(licence))
    bad_level = copy.deepcopy(penalty)
    bad_level["discretion"]["violations"][0]["levels"][0]["level"] = "extreme"
    assert item_problems(bad_level) != []
