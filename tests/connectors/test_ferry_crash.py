"""Crash safety: the receiver and the sender are killed with SIGKILL (in a child process)
at each step boundary and run again; the exact set of applied records must come out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from loopkit import (
    applied_sequences,
    assert_exactly,
    carried,
    ferry_file,
    make_loop,
    outbox_file,
    quarantined,
    submit,
)

from hub import stages

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).parents[2]


def run_child(data_root: Path, point: str) -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(data_root), point],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-2000:])


@pytest.mark.parametrize("point", ["after_verify", "after_attachments", "before_commit", "after_commit"])
def test_receiver_killed_at_each_step_then_rerun_applies_exactly_once(tmp_path: Path, point: str) -> None:
    settings = make_loop(tmp_path / "data")
    submit(settings, 8, 1)
    stages.intake(settings)
    expected = carried(settings)
    assert expected
    run_child(settings.data_root, point)
    if point in ("after_verify", "after_attachments", "before_commit"):
        assert applied_sequences(settings) == {}  # nothing committed
        assert_exactly(settings, set())
    else:
        assert list(applied_sequences(settings)) == [1]  # committed, file still there
        assert ferry_file(settings, "inbound", 1).exists()
    report = stages.inbound_receive(settings)
    assert report["applied"] == ([] if point == "after_commit" else ["inbound#1"])
    assert report["duplicates"] == (["inbound#1"] if point == "after_commit" else [])
    assert not ferry_file(settings, "inbound", 1).exists()
    assert quarantined(settings) == []
    assert_exactly(settings, expected)


@pytest.mark.parametrize("point", ["send_after_plan", "send_after_build", "send_after_put"])
def test_sender_killed_then_rerun_sends_the_same_bytes_once(tmp_path: Path, point: str) -> None:
    settings = make_loop(tmp_path / "data")
    submit(settings, 8, 1)
    run_child(settings.data_root, point)
    in_ferry = ferry_file(settings, "inbound", 1)
    before = in_ferry.read_bytes() if in_ferry.exists() else None
    assert (before is not None) == (point == "send_after_put")
    built = outbox_file(settings, "inbound", 1)
    assert built.exists() == (point != "send_after_plan")
    outbox_before = built.read_bytes() if built.exists() else None
    report = stages.intake(settings)
    assert report["bundles"] == ["inbound#1"]  # the planned bundle, not a new one
    after = in_ferry.read_bytes()
    assert after == built.read_bytes()
    if before is not None:
        assert after == before  # byte-identical to what already crossed
    if outbox_before is not None:
        assert after == outbox_before
    assert stages.inbound_receive(settings)["applied"] == ["inbound#1"]
    assert stages.inbound_receive(settings)["applied"] == []
    assert_exactly(settings, carried(settings))
