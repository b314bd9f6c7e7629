"""Catalogue down: approved catalogue files pulled from the province's SFTP outbox (real
sshd), kept under their hash, pulled once per content, and applied with the catalogue
import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connectors.db import province_catalogue_files
from connectors.province_catalogue import pending_files
from connectors.province_feed import scan_changes
from hub import province as stages
from tests.connectors.province_testkit import Hub, hub

__all__ = ["hub"]

CHANGE = {
    "by": "省平台同步", "at": "2026-01-05T09:00:00+08:00", "reason": "年度目录发布",
    "approvals": [
        {"role": "department", "approver": "王建", "at": "2026-01-02"},
        {"role": "legal_office", "approver": "李敏", "at": "2026-01-03"},
        {"role": "bureau_leader", "approver": "陈刚", "at": "2026-01-04"},
        {"role": "provincial_legal_office", "approver": "赵磊", "at": "2026-01-05"},
    ],
}


def catalogue_file(path: Path) -> Path:
    """The embedded catalogue as the province's JSON Lines catalogue changes."""
    documents: list[dict[str, Any]] = json.loads((Path(__file__).parents[2] / "hub" / "defaults" / "catalogue.json").read_text("utf-8"))
    lines = [
        json.dumps({"item": {k: v for k, v in d.items() if k != "version"}, "change": CHANGE}, ensure_ascii=False)
        for d in documents
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def pulled(hub: Hub) -> list[Any]:
    with hub.engine.connect() as connection:
        return connection.execute(select(province_catalogue_files)).all()


def test_catalogue_files_are_pulled_once_per_content_under_their_hash(hub: Hub, tmp_path: Path) -> None:
    hub.province.offer_catalogue(catalogue_file(tmp_path / "approved.jsonl"), "2026年度目录.jsonl")
    (hub.province.root / "outbox" / "catalogue" / "readme.txt").write_text("not a catalogue")
    (hub.province.root / "outbox" / "catalogue" / "half.jsonl.part").write_text("{")

    def sync() -> Any:
        return stages.catalogue_sync(hub.settings, sftp=hub.sftp())

    sync()
    rows = pulled(hub)
    assert [r.remote_name for r in rows] == ["2026年度目录.jsonl"]
    stored = Path(rows[0].stored_as)
    assert stored.name == f"{rows[0].sha256}.jsonl"  # the province's name never becomes a path
    assert stored.read_bytes() == (hub.province.root / "outbox" / "catalogue" / "2026年度目录.jsonl").read_bytes()

    sync()  # the same file again: not pulled twice
    assert len(pulled(hub)) == 1
    assert pending_files(hub.engine) == []  # applied, not waiting


def test_pulled_catalogue_is_applied_and_its_changes_go_up_in_the_feed(hub: Hub, tmp_path: Path) -> None:
    hub.province.offer_catalogue(catalogue_file(tmp_path / "approved.jsonl"))
    report = stages.catalogue_sync(hub.settings, sftp=hub.sftp())
    assert report["applied"][0]["state"] == "applied" and report["applied"][0]["applied"] > 0
    assert pulled(hub)[0].state == "applied"
    assert scan_changes(hub.engine)["catalogue_change"] == report["applied"][0]["applied"]
    again = stages.catalogue_sync(hub.settings, sftp=hub.sftp())
    assert again["pulled"] == [] and again["applied"] == []


def _with_a_bad_row(path: Path) -> Path:
    catalogue_file(path)
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps({"item": {"code": "BROKEN-1", "name": "缺字段的事项"}, "change": CHANGE},
                                ensure_ascii=False) + "\n")
    return path


def _alarms(hub: Hub) -> list[Any]:
    from connectors.db import alarms

    with hub.engine.connect() as connection:
        return connection.execute(select(alarms).where(alarms.c.kind == "CATALOGUE_SIGNATURE")).all()


def test_a_signed_file_applies_and_the_province_gets_a_receipt_with_every_refused_row(hub: Hub, tmp_path: Path) -> None:
    hub.province.offer_catalogue(_with_a_bad_row(tmp_path / "approved.jsonl"), "2026年度目录.jsonl")
    report = stages.catalogue_sync(hub.settings, sftp=hub.sftp())
    assert report["receipts"] == ["2026年度目录.jsonl"]
    (row,) = pulled(hub)
    (receipt,) = hub.province.catalogue_receipts().values()
    assert receipt["file"] == "2026年度目录.jsonl" and receipt["sha256"] == row.sha256 and receipt["state"] == "applied"
    assert receipt["applied"] == report["applied"][0]["applied"] > 0 and receipt["rows"] == receipt["applied"] + 1
    (refused,) = receipt["rejected_rows"]
    assert refused["row"] == receipt["rows"] and refused["reason"]
    assert stages.catalogue_sync(hub.settings, sftp=hub.sftp())["receipts"] == []  # once
    assert _alarms(hub) == []


def test_an_unsigned_file_is_kept_refused_alarmed_and_answered(hub: Hub, tmp_path: Path) -> None:
    hub.province.offer_catalogue(catalogue_file(tmp_path / "approved.jsonl"), signed=False)
    report = stages.catalogue_sync(hub.settings, sftp=hub.sftp())
    assert report["applied"] == [] and "CATALOGUE_SIGNATURE_MISSING" in report["skipped"][0]["reason"]
    (row,) = pulled(hub)
    assert row.state == "refused" and row.report["code"] == "CATALOGUE_SIGNATURE_MISSING"
    assert Path(row.stored_as).read_bytes() == (tmp_path / "approved.jsonl").read_bytes()  # kept, not dropped
    assert scan_changes(hub.engine).get("catalogue_change", 0) == 0  # nothing applied
    (alarm,) = _alarms(hub)
    assert alarm.detail["code"] == "CATALOGUE_SIGNATURE_MISSING" and alarm.resolved_at is None
    (receipt,) = hub.province.catalogue_receipts().values()
    assert receipt["state"] == "refused" and receipt["code"] == "CATALOGUE_SIGNATURE_MISSING"


def test_a_tampered_file_or_an_unpinned_key_is_refused(hub: Hub, tmp_path: Path) -> None:
    target = hub.province.offer_catalogue(catalogue_file(tmp_path / "approved.jsonl"))
    target.write_bytes(target.read_bytes().replace("年度目录发布".encode(), "擅自修改".encode()))
    stages.catalogue_sync(hub.settings, sftp=hub.sftp())
    assert [r.report["code"] for r in pulled(hub)] == ["CATALOGUE_SIGNATURE_INVALID"]
    hub.province.offer_catalogue(catalogue_file(tmp_path / "other.jsonl"), "other.jsonl")
    (target.parent / "other.jsonl").write_bytes(b"{}\n" + (target.parent / "other.jsonl").read_bytes())
    stages.catalogue_sync(hub.settings, sftp=hub.sftp(catalogue_key=""))
    assert sorted(r.report["code"] for r in pulled(hub)) == ["CATALOGUE_KEY_NOT_PINNED", "CATALOGUE_SIGNATURE_INVALID"]
    assert len(_alarms(hub)) == 2


def test_a_crash_before_the_receipt_is_recorded_resends_the_same_receipt(hub: Hub, tmp_path: Path) -> None:
    from sqlalchemy import update

    from connectors.db import transaction

    hub.province.offer_catalogue(catalogue_file(tmp_path / "approved.jsonl"))
    stages.catalogue_sync(hub.settings, sftp=hub.sftp())
    (path,) = (hub.province.root / "inbox" / "catalogue-receipts").iterdir()
    first = path.read_bytes()
    with transaction(hub.engine) as connection:  # uploaded, but the crash came before it was recorded
        connection.execute(update(province_catalogue_files).values(receipt_sent_at=None))
    assert stages.catalogue_sync(hub.settings, sftp=hub.sftp())["receipts"] == ["approved.jsonl"]
    assert [p.read_bytes() for p in path.parent.iterdir()] == [first]  # the same bytes, one file
