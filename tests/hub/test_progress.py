"""Progress lines of long commands."""

from __future__ import annotations

import io
from pathlib import Path

from hub.progress import Progress
from hub.simulators.applicants import generate_batch


def test_progress_reports_count_share_rate_and_a_closing_line() -> None:
    stream = io.StringIO()
    progress = Progress("generate", 4, stream=stream, every_seconds=0)
    for _ in range(4):
        progress.advance()
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[generate] 1/4 (25%), ") and "left" in lines[0]
    assert lines[-1].startswith("[generate] 4/4 (100%), ") and "done in" in lines[-1]


def test_a_short_run_prints_nothing() -> None:
    stream = io.StringIO()
    progress = Progress("generate", 3, stream=stream, every_seconds=3600)
    progress.advance(3)
    progress.finish()
    assert stream.getvalue() == ""


def test_hub_generate_reports_progress_per_submission(tmp_path: Path) -> None:
    from hub.settings import load_settings
    from hub.zones import load_catalogue

    settings = load_settings({"HUB_DATA_ROOT": str(tmp_path)})
    documents = [dict(item.document) for item in load_catalogue(settings).items.values()]
    stream = io.StringIO()
    progress = Progress("generate", 20, stream=stream, every_seconds=0)
    from datetime import date

    generate_batch(tmp_path / "drop", 20, 1, documents, "3201000001", date(2026, 11, 21), progress=progress)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 21 and lines[-1].startswith("[generate] 20/20 (100%)")
