"""The intake benchmark measures the stage alone on either ingress and checks it carried
every application of the workload."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.intake import run


@pytest.mark.parametrize("ingress", ["front_db", "drop"])
def test_intake_alone_carries_the_whole_workload_from_either_ingress(
    ingress: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HUB_DATA_ROOT", "HUB_ZONE", "HUB_SIMULATE", "HUB_CATALOGUE_FILE", "HUB_INGRESS"):
        monkeypatch.setenv(name, "")  # run() sets them; restored after the test
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    result = run(300, 7, ingress)
    assert result["ingress"] == ingress and result["carried"] == 300 and result["quarantined"] == 0
    assert result["bundles"] == 1
    assert result["wall"] > 0 and result["user"] > 0 and result["peak_rss_mb"] > 0
