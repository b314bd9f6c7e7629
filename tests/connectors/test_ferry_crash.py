"""Crash safety: the receiver and the sender are killed with SIGKILL (in a child process)
at each step boundary and run again; the exact set of applied records must come out."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
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

from connectors.exchange import STAGING_FOLDER, STALE_STAGING_SECONDS
from hub import stages
from hub.settings import Settings

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).parents[2]


def run_child(data_root: Path, point: str) -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(data_root), point],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-2000:])


def stored_attachments(settings: Settings) -> set[str]:
    """The attachments visible in the store (by digest), not what is being staged."""
    store = settings.attachment_store
    return {p.name for p in store.glob("??/*")} if store.is_dir() else set()


def staged_files(settings: Settings) -> list[Path]:
    return list((settings.attachment_store / STAGING_FOLDER).glob("*/*"))


@pytest.mark.parametrize(
    "point", ["while_staging", "after_verify", "after_attachments", "before_commit", "after_commit"]
)
def test_receiver_killed_at_each_step_then_rerun_applies_exactly_once(tmp_path: Path, point: str) -> None:
    settings = make_loop(tmp_path / "data")
    submit(settings, 8, 1)
    stages.intake(settings)
    expected = carried(settings)
    assert expected
    run_child(settings.data_root, point)
    if point in ("while_staging", "after_verify"):
        assert staged_files(settings)  # staged by the killed receiver, never committed
        assert stored_attachments(settings) == set()
    if point in ("while_staging", "after_verify", "after_attachments", "before_commit"):
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
    assert stored_attachments(settings) == attachment_digests(settings)
    for path in stored_attachments_paths(settings):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def attachment_digests(settings: Settings) -> set[str]:
    """The digests of every attachment the portal drop held (what the store must hold)."""
    collected = settings.portal_collected
    return {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in collected.glob("inbound-*/*/*") if p.name != "submission.json"
    }


def stored_attachments_paths(settings: Settings) -> list[Path]:
    return list(settings.attachment_store.glob("??/*"))


def test_a_staging_folder_left_by_a_killed_receiver_is_removed_once_stale(tmp_path: Path) -> None:
    settings = make_loop(tmp_path / "data")
    submit(settings, 8, 1)
    stages.intake(settings)
    run_child(settings.data_root, "after_verify")
    left = {p.parent for p in staged_files(settings)}
    assert len(left) == 1
    assert stages.inbound_receive(settings)["applied"] == ["inbound#1"]
    assert left <= {p.parent for p in staged_files(settings)}  # another receiver's, maybe
    stale = time.time() - STALE_STAGING_SECONDS - 60
    for folder in left:
        os.utime(folder, (stale, stale))
    submit(settings, 8, 101)
    stages.intake(settings)
    assert stages.inbound_receive(settings)["applied"] == ["inbound#2"]
    assert staged_files(settings) == []
    assert list((settings.attachment_store / STAGING_FOLDER).iterdir()) == []


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
