"""The processing simulator is deterministic and follows the case state machine."""

from __future__ import annotations

from collections import Counter

from hub.simulators.processing import SCENARIOS, TERMINAL, WEIGHTS, scenario_for

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
