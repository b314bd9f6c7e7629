"""The demo's summary table: what each count counts."""

from __future__ import annotations

from hub.demo import format_summary


def test_rejection_counts_say_one_application_can_carry_several_reasons() -> None:
    counts = {
        "submitted": 10, "accepted": 7, "rejected": 3, "quarantined": 0, "in_flight": 0,
        "rejected_by_reason": {"IDENTIFIER_CHECK_DIGIT": 2, "MATERIAL_MISSING": 2},
        "status_changes_published": 5, "status_changes_held": 0, "status_changes_withheld": 0,
        "public_documents": 7, "balanced": True,
    }
    lines = format_summary(counts).splitlines()
    assert lines[2].startswith("rejected (applications)") and lines[2].endswith(" 3")
    assert "one application may have several" in lines[3]
    # The reasons (4 in all) are indented under that line, not presented as applications.
    assert [line.split() for line in lines[4:6]] == [["IDENTIFIER_CHECK_DIGIT", "2"], ["MATERIAL_MISSING", "2"]]
    assert all(line.startswith("    ") for line in lines[4:6])
