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
