"""Reading and moving submission folders of the portal drop."""

from __future__ import annotations

from pathlib import Path

import orjson

from connectors import portal
from connectors.portal import MAX_SUBMISSION_BYTES, Refusal, Submission, inspect_submission


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
    portal._move_into(collected, "NET1", source)  # the collected folder does not exist yet
    assert (collected / "NET1" / "submission.json").read_bytes() == b"{}" and not source.exists()
    portal._move_into(collected, "NET1", source)  # already moved: nothing to do
    assert (collected / "NET1").is_dir()
    # An earlier run copied part of it before crashing: the drop's complete copy wins.
    source = _folder(drop, "NET2", b'{"complete": true}')
    (collected / "NET2").mkdir()
    (collected / "NET2" / "partial").write_bytes(b"")
    portal._move_into(collected, "NET2", source)
    assert sorted(p.name for p in (collected / "NET2").iterdir()) == ["submission.json"]
    assert not source.exists()


def test_documents_of_the_flat_layout_move_into_their_folders(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.mkdir()
    flat = "ab" + "c" * 62
    (status / f"{flat}.json").write_bytes(b'{"events": []}')
    (status / "readme.txt").write_bytes(b"not a document")
    portal._shard_flat_documents(status)
    assert portal.status_document_path(tmp_path, flat).read_bytes() == b'{"events": []}'
    assert sorted(p.name for p in status.iterdir()) == ["ab", "readme.txt"]
    assert list(portal.status_documents(tmp_path)) == [portal.status_document_path(tmp_path, flat)]


class _Bundle:
    """Just what the disclosure writer reads of a verified bundle."""

    def __init__(self, sequence: int, records: list[dict[str, object]]) -> None:
        self.manifest = type("Manifest", (), {"sequence": sequence})()
        self._lines = [orjson.dumps(r) for r in records]

    def iter_records(self, kind: str) -> list[bytes]:
        return self._lines if kind == "disclosures" else []


def _disclosure(record_id: int, day: str, kind: str = "licence") -> dict[str, object]:
    return {"record_id": record_id, "kind": kind, "decided_at": f"{day}T10:00:00+08:00",
            "power_code": "P", "decision": "准予许可"}


def test_each_bundle_writes_its_own_page_of_a_day_and_again_the_same(tmp_path: Path) -> None:
    folder = tmp_path / "disclosure"
    first = _Bundle(1, [_disclosure(2, "2026-11-12"), _disclosure(1, "2026-11-12", "penalty")])
    second = _Bundle(2, [_disclosure(3, "2026-11-12"), _disclosure(4, "2026-11-13")])
    assert portal._merge_disclosures(folder, first) == 2
    assert portal._merge_disclosures(folder, second) == 2
    page = folder / "2026-11-12" / "b00000001.json"
    before = page.read_bytes()
    assert portal._merge_disclosures(folder, first) == 2  # applied again after a crash
    assert page.read_bytes() == before
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"]["licence"] == 2 and index["days"]["2026-11-12"]["penalty"] == 1
    assert sorted(index["days"]["2026-11-12"]["pages"]) == ["b00000001.json", "b00000002.json"]
    ids = [r["record_id"] for p in portal.disclosure_pages(tmp_path) for r in orjson.loads(p.read_bytes())["records"]]
    assert sorted(ids) == [1, 2, 3, 4]  # nothing twice
    portal._retract_disclosures(folder, {2, 4})
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"]["licence"] == 1 and index["days"]["2026-11-13"]["licence"] == 0


def test_a_daily_list_of_the_earlier_layout_becomes_its_days_first_page(tmp_path: Path) -> None:
    folder = tmp_path / "disclosure"
    folder.mkdir()
    (folder / "2026-11-12.json").write_bytes(orjson.dumps({"date": "2026-11-12", "records": [_disclosure(1, "2026-11-12")]}))
    (folder / "index.json").write_bytes(orjson.dumps({"days": {"2026-11-12": {"licence": 1, "penalty": 0}}}))
    portal._merge_disclosures(folder, _Bundle(5, [_disclosure(9, "2026-11-12", "penalty")]))
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"] == {"licence": 1, "penalty": 1, "pages": {
        "b00000000.json": {"licence": 1, "penalty": 0}, "b00000005.json": {"licence": 0, "penalty": 1}}}
    assert not (folder / "2026-11-12.json").exists()


def test_the_public_side_keeps_only_allow_listed_fields_whatever_arrives(tmp_path: Path) -> None:
    # Defence in depth: the administration side sends nothing else, but a field that is
    # not on the allow-list must never reach a public page.
    leaky = {**_disclosure(1, "2026-11-12"), "applicant_id_number": "110101199003074258"}
    folder = tmp_path / "disclosure"
    assert portal._merge_disclosures(folder, _Bundle(1, [leaky, _disclosure(2, "2026-11-12")])) == 2
    records = orjson.loads((folder / "2026-11-12" / "b00000001.json").read_bytes())["records"]
    assert [sorted(r) for r in records] == [sorted(_disclosure(1, "2026-11-12"))] * 2

    event = {"net_id": "NET2026112000000001", "status": "accepted", "internal_note": "x"}
    assert portal._allowed(event, "status_events") == {"net_id": "NET2026112000000001", "status": "accepted"}
    clean = {"net_id": "NET2026112000000001", "status": "accepted"}
    assert portal._allowed(clean, "status_events") == clean
    assert portal._allowed(["not", "a", "record"], "status_events") is None
