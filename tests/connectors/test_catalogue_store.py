"""Catalogue import from the provincial platform's files (JSON Lines, XLSX), its history
in the exchange database, and the public catalogue across the outbound channel."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, func, select

from connectors.catalogue_store import (
    import_file,
    item_history,
    read_catalogue_file,
    stored_catalogue,
)
from connectors.db import catalogue_items, catalogue_transitions, engine_for
from connectors.migrate import create_schema
from rules.catalogue import APPROVAL_ROLE_NAMES, CATEGORIES, DISCLOSURE_FIELDS, STATES
from rules.catalogue_import import COLUMNS, MEDIA_TYPES, diff_entries

CATALOGUE_FILE = Path(__file__).parents[2] / "hub" / "defaults" / "catalogue.json"
DOCUMENTS: list[dict[str, Any]] = json.loads(CATALOGUE_FILE.read_text("utf-8"))
CHAIN = [
    {"role": "department", "approver": "王建", "at": "2026-01-02"},
    {"role": "legal_office", "approver": "李敏", "at": "2026-01-03"},
    {"role": "bureau_leader", "approver": "陈刚", "at": "2026-01-04"},
    {"role": "provincial_legal_office", "approver": "赵磊", "at": "2026-01-05"},
]
CHANGE = {"by": "省平台同步", "at": "2026-01-05T09:00:00+08:00", "reason": "年度目录发布", "approvals": CHAIN}
SHORT_TYPES = {v: k for k, v in reversed(list(MEDIA_TYPES.items()))}
FIELD_COLUMN = {target: header for header, target in COLUMNS.items()}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = engine_for(f"sqlite:///{tmp_path / 'exchange.sqlite'}")
    create_schema(engine, "admin")
    return engine


def jsonl(path: Path, entries: list[Any]) -> Path:
    lines = [e if isinstance(e, str) else json.dumps(e, ensure_ascii=False) for e in entries]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def entry(document: dict[str, Any], **change: Any) -> dict[str, Any]:
    return {"item": {k: v for k, v in document.items() if k != "version"}, "change": {**CHANGE, **change}}


def sheet_row(document: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for field, value in document.items():
        if field in ("version", "disclosure", "materials", "form_schema", "discretion", "major_case"):
            continue
        row[FIELD_COLUMN[field]] = value
    row["事项类别"] = CATEGORIES[document["category"]]
    row["状态"] = STATES[document["state"]]
    row["时限单位"] = {"working_days": "工作日", "calendar_days": "自然日"}[document["limit_unit"]]
    for field, value in document["disclosure"].items():
        row[FIELD_COLUMN[f"disclosure.{field}"]] = value
    row["申请材料"] = "\n".join(
        f"{m['material_code']}|{m['name']}|{'必要' if m['required'] else '可选'}|"
        + ",".join(SHORT_TYPES[t] for t in m["media_types"])
        for m in document["materials"]
    )
    if "form_schema" in document:
        row["表单定义"] = json.dumps(document["form_schema"], ensure_ascii=False)
    if "discretion" in document:
        row["自由裁量基准"] = json.dumps(document["discretion"], ensure_ascii=False)
    if "major_case" in document:
        row["重大案件报备"] = json.dumps(document["major_case"], ensure_ascii=False)
    row["变更人"] = change["by"]
    row["变更时间"] = change["at"]
    row["变更原因"] = change["reason"]
    row["审批链"] = "；".join(f"{APPROVAL_ROLE_NAMES[a['role']]}/{a['approver']}/{a['at']}" for a in change["approvals"])
    return row


def xlsx(path: Path, rows: list[dict[str, Any]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    header = list(COLUMNS)
    sheet.append(header)
    for row in rows:
        sheet.append([row.get(h) for h in header])
    workbook.save(path)
    return path


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        items = connection.execute(select(func.count()).select_from(catalogue_items)).scalar()
        transitions = connection.execute(select(func.count()).select_from(catalogue_transitions)).scalar()
    return int(items or 0), int(transitions or 0)


def test_json_lines_import_reports_bad_rows_applies_good_ones_and_is_idempotent(
    engine: Engine, tmp_path: Path
) -> None:
    good = [entry(d) for d in DOCUMENTS]
    too_long = entry({**DOCUMENTS[0], "code": "X" + DOCUMENTS[0]["code"], "promised_limit_days": 99})
    penalty = next(d for d in DOCUMENTS if d["category"] == "CF")
    no_disclosure = copy.deepcopy(entry({**penalty, "code": penalty["code"] + "9"}))
    del no_disclosure["item"]["disclosure"]["penalty_kinds"]
    no_chain = entry({**DOCUMENTS[1], "code": DOCUMENTS[1]["code"] + "9"}, approvals=CHAIN[:2])
    path = jsonl(tmp_path / "catalogue.jsonl", [*good, "{not json", too_long, no_disclosure, no_chain, [1, 2]])

    report = import_file(engine, path)
    assert len(report.applied) == len(DOCUMENTS)
    bad = {e["row"]: e["reason"] for e in report.errors}
    n = len(DOCUMENTS)
    assert sorted(bad) == [n + 1, n + 2, n + 3, n + 4, n + 5]
    assert "not JSON" in bad[n + 1]
    assert "promised limit exceeds" in bad[n + 2]
    assert "penalty_kinds" in bad[n + 3]
    assert "/change/approvals" in bad[n + 4]
    assert counts(engine) == (n, n)

    again = import_file(engine, path)
    assert again.applied == [] and again.unchanged == n and len(again.errors) == 5
    assert counts(engine) == (n, n)
    catalogue = stored_catalogue(engine)
    assert catalogue is not None and again.catalogue_version == catalogue.version


def test_transitions_are_recorded_with_who_when_why_and_chain(engine: Engine, tmp_path: Path) -> None:
    document = next(d for d in DOCUMENTS if d["state"] == "A" and d["category"] == "QZ")
    import_file(engine, jsonl(tmp_path / "v1.jsonl", [entry(document)]))
    suspend = entry({**document, "state": "T"}, at="2026-05-01T08:00:00+08:00", reason="三年未行使，挂起",
                    approvals=[{**a, "at": "2026-04-2" + str(i)} for i, a in enumerate(CHAIN)])
    resume = entry(document, at="2026-08-01T08:00:00+08:00", reason="解挂", approvals=[{**a, "at": "2026-07-2" + str(i)} for i, a in enumerate(CHAIN)])
    backdated = entry({**document, "state": "X"}, at="2026-07-01T08:00:00+08:00")
    report = import_file(engine, jsonl(tmp_path / "v2.jsonl", [suspend, resume, backdated]))
    assert [a["action"] for a in report.applied] == ["suspend", "resume"]
    assert "predates" in report.errors[0]["reason"]
    history = item_history(engine, document["code"])
    assert history is not None
    assert [v["state"] for v in history["versions"]] == ["A", "T", "A"]
    assert [h["action"] for h in history["history"]] == ["create", "suspend", "resume"]
    step = history["history"][1]
    assert (step["by"], step["reason"], step["at"]) == ("省平台同步", "三年未行使，挂起", "2026-05-01T08:00:00+08:00")
    assert [a["role"] for a in step["approvals"]] == ["department", "legal_office", "bureau_leader", "provincial_legal_office"]
    abolished = entry({**document, "state": "X"}, at="2026-10-01T08:00:00+08:00")
    back = entry(document, at="2026-11-01T08:00:00+08:00")
    report = import_file(engine, jsonl(tmp_path / "v3.jsonl", [abolished, back]))
    assert [a["action"] for a in report.applied] == ["abolish"]
    assert "abolished" in report.errors[0]["reason"]


def test_xlsx_import_with_broken_rows(engine: Engine, tmp_path: Path) -> None:
    rows = [sheet_row(d, CHANGE) for d in DOCUMENTS]
    broken_days = {**rows[0], "事项编码": "BROKEN1", "法定时限": "二十"}
    broken_material = {**rows[1], "事项编码": "BROKEN2", "申请材料": "APP_FORM|申请书|必要|exe"}
    broken_chain = {**rows[2], "事项编码": "BROKEN3", "审批链": "法制处/李敏/2026-01-03"}
    broken_state = {**rows[3], "事项编码": "BROKEN4", "状态": "暂停"}
    missing_name = {**rows[4], "事项编码": "BROKEN5", "事项名称": None}
    path = xlsx(tmp_path / "目录.xlsx", [*rows, broken_days, broken_material, broken_chain, broken_state, missing_name])

    report = import_file(engine, path)
    assert len(report.applied) == len(DOCUMENTS)
    by_code = {e["code"]: e["reason"] for e in report.errors}
    first_bad = len(DOCUMENTS) + 2  # the header is row 1
    assert [e["row"] for e in report.errors] == list(range(first_bad, first_bad + 5))
    assert "法定时限" in report.errors[0]["reason"]
    assert "exe" in report.errors[1]["reason"]
    assert "/change/approvals" in by_code["BROKEN3"]
    assert "/item/state" in by_code["BROKEN4"] or "state" in by_code["BROKEN4"]
    assert "事项名称" in report.errors[4]["reason"]
    catalogue = stored_catalogue(engine)
    assert catalogue is not None
    for document in DOCUMENTS:  # the spreadsheet round-trips every item exactly
        stored = dict(catalogue.items[document["code"]].document)
        assert stored == document, document["code"]
    assert import_file(engine, path).applied == []


def test_xlsx_and_json_lines_of_the_same_catalogue_agree(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, xlsx(tmp_path / "a.xlsx", [sheet_row(d, CHANGE) for d in DOCUMENTS]))
    report = import_file(engine, jsonl(tmp_path / "a.jsonl", [entry(d) for d in DOCUMENTS]))
    assert report.applied == [] and report.unchanged == len(DOCUMENTS)


def test_diff_of_two_files(tmp_path: Path) -> None:
    old = jsonl(tmp_path / "old.jsonl", [entry(d) for d in DOCUMENTS[:5]])
    changed = {**DOCUMENTS[1], "state": "T"}
    new = xlsx(tmp_path / "new.xlsx", [sheet_row(d, CHANGE) for d in [DOCUMENTS[0], changed, *DOCUMENTS[3:6]]])
    diff = diff_entries(read_catalogue_file(old), read_catalogue_file(new))
    assert diff["added"] == [DOCUMENTS[5]["code"]]
    assert diff["removed"] == [DOCUMENTS[2]["code"]]
    assert diff["changed"] == [{"code": DOCUMENTS[1]["code"], "fields": ["state"], "state": ["A", "T"]}]


def test_cli_import_show_and_diff(hub_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hub.cli import main

    path = jsonl(tmp_path / "c.jsonl", [entry(d) for d in DOCUMENTS])
    assert main(["catalogue", "import", str(path)]) == 0
    assert f"{len(DOCUMENTS)} changes applied" in capsys.readouterr().out
    assert main(["catalogue", "import", str(path)]) == 0
    assert f"0 changes applied, {len(DOCUMENTS)} unchanged" in capsys.readouterr().out
    assert main(["catalogue", "show", DOCUMENTS[0]["code"]]) == 0
    shown = capsys.readouterr().out
    assert "新增" in shown and "省法制办 赵磊" in shown
    assert main(["catalogue", "diff", str(path), str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == []


def test_public_catalogue_goes_out_and_is_published(hub_env: Path, tmp_path: Path) -> None:
    from hub import stages
    from hub.keys import init_keys
    from hub.settings import load_settings
    from hub.zones import load_catalogue, zone_engine

    settings = load_settings()
    init_keys(settings)
    first = stages.catalogue_publish(settings)
    assert first["bundles"] == ["outbound#1"] and first["items"] == sum(d["state"] == "A" for d in DOCUMENTS)
    assert stages.catalogue_publish(settings)["bundles"] == []  # unchanged catalogue: nothing to send
    stages.portal_publish(settings)
    public = settings.public_root / "catalogue"
    index = json.loads((public / "index.json").read_text("utf-8"))
    assert index["catalogue_version"] == load_catalogue(settings).version
    assert len(index["items"]) == first["items"]

    # Suspend one item through an import: the admin zone now validates against the store,
    # the public catalogue drops the item, and the bundle carries the new version.
    target = next(d for d in DOCUMENTS if d["state"] == "A" and d["category"] == "CF")
    changes = [entry(d) for d in DOCUMENTS] + [
        entry({**target, "state": "T"}, at="2026-02-01T09:00:00+08:00", reason="挂起")
    ]
    imported = import_file(zone_engine(settings, "admin"), jsonl(tmp_path / "c.jsonl", changes))
    assert imported.errors == []
    catalogue = load_catalogue(settings)
    assert catalogue.items[target["code"]].state == "T" and catalogue.history
    second = stages.catalogue_publish(settings)
    assert second["bundles"] == ["outbound#2"] and second["items"] == first["items"] - 1
    stages.portal_publish(settings)
    index = json.loads((public / "index.json").read_text("utf-8"))
    assert index["catalogue_version"] == catalogue.version
    assert target["code"] not in {i["code"] for i in index["items"]}
    assert not (public / "items" / f"{target['code']}.json").exists()
    some = next(i for i in index["items"] if i["category"] == "ZS")
    published = json.loads((public / "items" / f"{some['code']}.json").read_text("utf-8"))
    assert set(published["disclosure"]) == set(DISCLOSURE_FIELDS["ZS"])
    assert "materials" not in published and "state" not in published


def test_a_catalogue_bundle_left_planned_by_a_crash_is_sent_before_any_status_bundle(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.db import ferry_sent
    from ferry.transport import LocalFolderTransport
    from hub import stages
    from hub.keys import init_keys
    from hub.settings import load_settings
    from hub.zones import zone_engine
    from schemas.exceptions import TransientError

    settings = load_settings()
    init_keys(settings)
    real_put = LocalFolderTransport.put

    def unreachable(self: LocalFolderTransport, name: str, source: Path) -> None:
        raise TransientError("gap appliance unreachable")

    monkeypatch.setattr(LocalFolderTransport, "put", unreachable)
    with pytest.raises(TransientError):
        stages.catalogue_publish(settings)
    monkeypatch.setattr(LocalFolderTransport, "put", real_put)

    # status_publish runs first in its DAG: it must finish the catalogue plan (#1), not
    # plan #2 on top of it or rebuild #1 as a status bundle.
    stages.status_publish(settings)
    with zone_engine(settings, "admin").connect() as connection:
        rows = connection.execute(
            select(ferry_sent.c.sequence, ferry_sent.c.kind, ferry_sent.c.state, ferry_sent.c.digest)
            .where(ferry_sent.c.channel == "outbound").order_by(ferry_sent.c.sequence)
        ).all()
    assert (rows[0].sequence, rows[0].kind, rows[0].state) == (1, "catalogue", "sent")
    assert all(r.state == "sent" and r.digest for r in rows)
    stages.portal_publish(settings)
    index = json.loads((settings.public_root / "catalogue" / "index.json").read_text("utf-8"))
    assert len(index["items"]) == sum(d["state"] == "A" for d in DOCUMENTS)
