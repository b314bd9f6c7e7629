"""The data-path benchmark's two zones side by side: they must carry every application
to the end (the benchmark's own outcome check) and stop only when the work is done."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data_path import ADMIN_STAGES, STAGES, run


def test_zones_side_by_side_carry_every_application_to_the_public_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HUB_DATA_ROOT", "HUB_ZONE", "HUB_SIMULATE", "HUB_CATALOGUE_FILE", "HUB_INGRESS"):
        monkeypatch.setenv(name, "")  # run() sets them; restored after the test
    result = run(400, 7, tmp_path)

    assert result["mode"] == "zones side by side"
    assert result["check"] == []
    reports = result["reports"]
    assert reports["intake"]["carried"] == 400
    assert reports["inbound_receive"]["records"] == 400
    load = reports["applications_load"]
    assert load["accepted"] + load["rejected"] == 400
    # Every change sent reached the public feed (also part of the outcome check).
    assert reports["portal_publish"]["records"] == (
        reports["status_publish"]["published"] + reports["status_publish"]["disclosures"]
    )
    calls = {name: count for name, _, count, _ in result["rows"]}
    assert calls["intake"] == 1 and set(calls) == set(STAGES)
    assert all(calls[name] >= 1 for name in ADMIN_STAGES)
    assert set(result["zones"]) == {"internet", "admin"}  # the simulator's memory is apart
    assert result["simulator_rss_mb"] > 0
    # The hub's wall time leaves the simulator's phase out: no more than the hub stages' own
    # seconds (the zones overlap), and the simulator ran between the phases.
    hub_seconds = sum(row[1] for row in result["rows"] if row[0] != "case_processing")
    assert 0 < result["wall"] <= hub_seconds + 1.0
    simulator = next(row for row in result["rows"] if row[0] == "case_processing")
    assert result["simulator_wall"] >= simulator[1] > 0
