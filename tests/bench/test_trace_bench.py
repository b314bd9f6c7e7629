"""The trace benchmark at a tiny size: every event it writes is in its zone's audit log,
checkpointed, and ``hub trace`` and ``hub audit prove`` find every event of an application."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bench.trace import run
from connectors.audit import verify_log
from connectors.db import audit_checkpoints, audit_entries, engine_for
from connectors.migrate import ZONE_TABLES


def test_the_benchmark_builds_a_logged_day_and_traces_it(tmp_path: Path) -> None:
    result = run(300, 6, 2, 400, 3, tmp_path)
    assert result["admin_events"] == 1_800 and result["internet_events"] == 600
    assert [p["events"] for p in result["append_per_batch"]][-1] == 1_800
    assert result["trace_function_ms"]["max"] > 0 and result["trace_cli_seconds"]["max"] > 0
    engine = engine_for(f"sqlite:///{tmp_path / 'exchange.sqlite'}")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(audit_entries)).scalar() == 1_800
        assert connection.execute(select(func.max(audit_checkpoints.c.size))).scalar() == 1_800
    report = verify_log(engine, [], ZONE_TABLES["admin"])
    # No verifier given: every checkpoint is refused, and nothing else is found.
    assert {f.code for f in report.findings} == {"CHECKPOINT_REFUSED"} and report.rows_checked == 1_800
