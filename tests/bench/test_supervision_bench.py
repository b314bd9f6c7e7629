"""The supervision-pass benchmark at a tiny size: its workload is counted as it says (every
case in the first pass; the changed cases and the next checks that fell due in the
second), and no open alert exists twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.supervision import FIRST_POSITION, SECOND_POSITION, moment, run


def in_this_process(function: Any, *args: Any) -> dict[str, Any]:
    return function(*args)  # type: ignore[no-any-return]


def test_second_pass_counts_the_changed_cases_and_the_next_checks_due(tmp_path: Path) -> None:
    result = run(2_000, 0.05, 7, tmp_path, fresh=in_this_process)

    assert result["check"] == []
    first, second = result["first"]["report"], result["second"]["report"]
    assert first["cases"] == 2_000 and first["uncounted_cases"] == 0
    assert first["raised"] > 0  # the workload has late steps, so the alert path runs too
    assert result["changed"] == 100
    assert second["cases"] == result["changed"] + result["crossings_only"]
    # A few next checks fall between 10:00 and 10:15, never a large share of the cases.
    assert 0 < result["crossings_only"] < 0.02 * 2_000
    assert result["first"]["duplicated"] == result["second"]["duplicated"] == 0
    assert result["second"]["open_after"] == (result["second"]["open_before"] + second["raised"]
                                              - second["lifted"] - second["closed"])


def test_the_passes_run_on_a_working_monday_inside_working_hours() -> None:
    first, second = moment(FIRST_POSITION), moment(SECOND_POSITION)
    assert (first.isoformat(), second.isoformat()) == ("2026-11-16T10:00:00+08:00", "2026-11-16T10:15:00+08:00")
    assert moment(179).strftime("%H:%M") == "11:59" and moment(180).strftime("%H:%M") == "13:30"
