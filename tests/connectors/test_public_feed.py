"""Writing the public feed: documents of the layout before the store, the daily 双公示 pages
and the public side's own allow-lists."""

from __future__ import annotations

from pathlib import Path

import orjson

from connectors import public_feed, status_store


def test_documents_of_the_flat_layout_move_into_their_folders(tmp_path: Path) -> None:
    """Documents published before the store, in the earliest flat layout, are still found:
    moved into their folders on the way."""
    status = tmp_path / "status"
    status.mkdir()
    flat = "ab" + "c" * 62
    (status / f"{flat}.json").write_bytes(b'{"events": []}')
    (status / "readme.txt").write_bytes(b"not a document")
    assert status_store.public_lookup(tmp_path, None, flat) == {
        "lookup": flat, "events": [], "audit": [], "legacy": {"events": []}}
    assert status_store.legacy_document_path(tmp_path, flat).read_bytes() == b'{"events": []}'
    assert sorted(p.name for p in status.iterdir()) == ["ab", "readme.txt"]
    assert list(status_store.legacy_documents(tmp_path)) == [status_store.legacy_document_path(tmp_path, flat)]


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
    assert public_feed._merge_disclosures(folder, first) == 2
    assert public_feed._merge_disclosures(folder, second) == 2
    page = folder / "2026-11-12" / "b00000001.json"
    before = page.read_bytes()
    assert public_feed._merge_disclosures(folder, first) == 2  # applied again after a crash
    assert page.read_bytes() == before
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"]["licence"] == 2 and index["days"]["2026-11-12"]["penalty"] == 1
    assert sorted(index["days"]["2026-11-12"]["pages"]) == ["b00000001.json", "b00000002.json"]
    ids = [r["record_id"] for p in public_feed.disclosure_pages(tmp_path) for r in orjson.loads(p.read_bytes())["records"]]
    assert sorted(ids) == [1, 2, 3, 4]  # nothing twice
    public_feed._retract_disclosures(folder, {2, 4})
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"]["licence"] == 1 and index["days"]["2026-11-13"]["licence"] == 0


def test_a_daily_list_of_the_earlier_layout_becomes_its_days_first_page(tmp_path: Path) -> None:
    folder = tmp_path / "disclosure"
    folder.mkdir()
    (folder / "2026-11-12.json").write_bytes(orjson.dumps({"date": "2026-11-12", "records": [_disclosure(1, "2026-11-12")]}))
    (folder / "index.json").write_bytes(orjson.dumps({"days": {"2026-11-12": {"licence": 1, "penalty": 0}}}))
    public_feed._merge_disclosures(folder, _Bundle(5, [_disclosure(9, "2026-11-12", "penalty")]))
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"] == {"licence": 1, "penalty": 1, "pages": {
        "b00000000.json": {"licence": 1, "penalty": 0}, "b00000005.json": {"licence": 0, "penalty": 1}}}
    assert not (folder / "2026-11-12.json").exists()


def test_the_public_side_keeps_only_allow_listed_fields_whatever_arrives(tmp_path: Path) -> None:
    # Defence in depth: the administration side sends nothing else, but a field that is
    # not on the allow-list must never reach a public page.
    leaky = {**_disclosure(1, "2026-11-12"), "applicant_id_number": "110101199003074258"}
    folder = tmp_path / "disclosure"
    assert public_feed._merge_disclosures(folder, _Bundle(1, [leaky, _disclosure(2, "2026-11-12")])) == 2
    records = orjson.loads((folder / "2026-11-12" / "b00000001.json").read_bytes())["records"]
    assert [sorted(r) for r in records] == [sorted(_disclosure(1, "2026-11-12"))] * 2

    event = {"net_id": "NET2026112000000001", "status": "accepted", "internal_note": "x"}
    assert public_feed._allowed(event, "status_events") == {"net_id": "NET2026112000000001", "status": "accepted"}
    clean = {"net_id": "NET2026112000000001", "status": "accepted"}
    assert public_feed._allowed(clean, "status_events") == clean
    assert public_feed._allowed(["not", "a", "record"], "status_events") is None
