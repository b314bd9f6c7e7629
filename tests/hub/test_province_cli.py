"""`hub run province_report`, `hub simulate province --once` and `hub province status` on a
real data root and the province simulator's sshd."""

from __future__ import annotations

import json

import pytest

from hub.cli import main
from tests.connectors.province_testkit import Hub, add_case, hours, hub

__all__ = ["hub"]


def test_report_answer_and_status_from_the_command_line(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    add_case(hub.engine, 1, hours(0), case_name="")
    add_case(hub.engine, 2, hours(0))
    assert main(["run", "province_report"]) == 0
    capsys.readouterr()
    assert main(["simulate", "province", "--once", "--folder", str(hub.province.folder), "--reject-share", "0"]) == 0
    receipts = json.loads(capsys.readouterr().out)
    # Case 1 refused by schema, and its step with it (the province takes no orphaned step).
    assert (receipts[0]["accepted"], receipts[0]["rejected"]) == (2, 2)
    assert main(["run", "province_report"]) == 0
    capsys.readouterr()
    assert main(["province", "status"]) == 0
    out = capsys.readouterr().out
    assert "case              pending      0  sent      0  accepted      1  failed      1" in out
    assert "rejected 2" in out and "rejected-rows.csv" in out
    assert main(["province", "status", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["marks"]["step"] == {"pending": 0, "sent": 0, "accepted": 1, "failed": 1}
    assert found["acknowledged_watermark"] == 4
