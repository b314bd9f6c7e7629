"""Reading and moving submission folders of the portal drop."""

from __future__ import annotations

from pathlib import Path

import orjson

from connectors import intake
from connectors.intake import MAX_SUBMISSION_BYTES, Refusal, Submission, inspect_submission


def _folder(root: Path, net_id: str, content: bytes) -> Path:
    folder = root / net_id
    folder.mkdir(parents=True)
    (folder / "submission.json").write_bytes(content)
    return folder


def test_an_oversized_submission_is_refused_with_its_reason(tmp_path: Path) -> None:
    net_id = "NET20261123000001"
    padded = orjson.dumps({"net_id": net_id, "summary": "x" * MAX_SUBMISSION_BYTES})
    found = inspect_submission(_folder(tmp_path, net_id, padded))
    assert isinstance(found, Refusal) and found.code == "SUBMISSION_UNREADABLE" and "exceeds" in found.detail
    fitting = inspect_submission(_folder(tmp_path, "NET20261123000002", orjson.dumps({"net_id": "NET20261123000002"})))
    assert isinstance(fitting, Submission) and fitting.envelope == {"net_id": "NET20261123000002"}


def test_a_folder_is_moved_once_whatever_an_earlier_run_left(tmp_path: Path) -> None:
    drop, collected = tmp_path / "drop", tmp_path / "collected"
    source = _folder(drop, "NET1", b"{}")
    intake._move_into(collected, "NET1", source)  # the collected folder does not exist yet
    assert (collected / "NET1" / "submission.json").read_bytes() == b"{}" and not source.exists()
    intake._move_into(collected, "NET1", source)  # already moved: nothing to do
    assert (collected / "NET1").is_dir()
    # An earlier run copied part of it before crashing: the drop's complete copy wins.
    source = _folder(drop, "NET2", b'{"complete": true}')
    (collected / "NET2").mkdir()
    (collected / "NET2" / "partial").write_bytes(b"")
    intake._move_into(collected, "NET2", source)
    assert sorted(p.name for p in (collected / "NET2").iterdir()) == ["submission.json"]
    assert not source.exists()
