"""The legal documents in the exchange database (SQLite and PostgreSQL), rendered for real
with WeasyPrint: the Chinese text read back out of each PDF, the CJK font embedded,
incremental and exactly once across a rerun and a SIGKILL between the file and the
commit, refusals as steward findings, and the operator's re-render."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, delete, func, select

from connectors.alarms import open_alarm_rows
from connectors.clock import CST
from connectors.db import (
    applications,
    case_documents,
    status_outbox,
    supervision_positions,
    transaction,
)
from connectors.legal_documents import (
    REFUSED_ALARM,
    case_documents_of,
    render_documents,
    rerender_case,
)
from rules.catalogue import Catalogue, build_catalogue

DEFAULTS = Path(__file__).parents[2] / "hub" / "defaults" / "catalogue.json"
LICENCE = "113201000123456713XK00000000001"  # 公路超限运输许可
PENALTY = "113201000123456713CF00000000001"
APPLIED = datetime(2026, 11, 20, 15, 40, tzinfo=CST)
REASONS = "申请事项依法不属于本机关职权范围，应向江苏省交通运输厅提出申请"


def documents_of(codes: tuple[str, ...] = (LICENCE, PENALTY)) -> list[dict[str, Any]]:
    return [d for d in json.loads(DEFAULTS.read_text("utf-8")) if d["code"] in codes]


@pytest.fixture
def catalogue() -> Catalogue:
    return build_catalogue(documents_of())


def add_application(engine: Engine, serial: int, *, code: str = LICENCE, applicant: str = "欧阳明华") -> str:
    number = f"3201000001{serial:010d}"
    with transaction(engine) as connection:
        connection.execute(applications.insert().values(
            net_id=f"NET20261120{serial:06d}", case_number=number, power_code=code, power_version=1,
            agency_code="3201000001", case_name="公路超限运输许可", applicant_type="person",
            applicant_name=applicant, applicant_id_type="resident_id", applicant_id_number="11010519491231002X",
            submitted_at=APPLIED.isoformat(), registered_at=APPLIED.isoformat(), bundle="b", envelope="{}"))
    return number


def add_change(engine: Engine, number: str, status: str, opinion: str | None, hours: int = 20) -> int:
    with transaction(engine) as connection:
        key = connection.execute(status_outbox.insert().values(
            net_id="NET20261120" + number[-6:], case_number=number, status=status,
            at=(APPLIED + timedelta(hours=hours)).isoformat(), step="受理", opinion=opinion,
        )).inserted_primary_key
    assert key is not None
    return int(key[0])


def three_cases(engine: Engine) -> dict[str, str]:
    """An accepted case, a case not accepted, a case asked for corrections, and changes that
    call for no document (a penalty's 立案, a grant)."""
    accepted = add_application(engine, 101)
    add_change(engine, accepted, "accepted", "材料齐全，符合法定形式，予以受理")
    refused = add_application(engine, 102, applicant="张三丰")
    add_change(engine, refused, "not_accepted", REASONS + "，不予受理")
    corrected = add_application(engine, 103, applicant="南京通达物流有限公司")
    add_change(engine, corrected, "correction_requested",
               "请补正：1. 申请书未加盖公章；2. 缺少车辆行驶证复印件。请一次性补正后重新提交。")
    penalty = add_application(engine, 104, code=PENALTY)
    add_change(engine, penalty, "accepted", "经初步核实，予以立案")
    add_change(engine, accepted, "granted", "经审查符合条件，准予许可", hours=60)
    return {"accepted": accepted, "not_accepted": refused, "correction_requested": corrected, "penalty": penalty}


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(case_documents).order_by(case_documents.c.event_id)).mappings()]


def pdf_text(path: Path) -> str:
    """The text of every page, without white space (CJK lines break anywhere)."""
    reader = PdfReader(path)
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))


def embedded_font_names(path: Path) -> list[str]:
    """Base names of the fonts whose font program is embedded in the PDF."""
    found = []
    for page in PdfReader(path).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            for descendant in font.get("/DescendantFonts", [font]):
                descriptor = descendant.get_object()["/FontDescriptor"].get_object()
                if "/FontFile2" in descriptor or "/FontFile3" in descriptor or "/FontFile" in descriptor:
                    found.append(str(font["/BaseFont"]))
    return found


def test_each_notice_is_rendered_with_its_chinese_text_and_the_cjk_font(
    exchange_engine: Engine, catalogue: Catalogue, tmp_path: Path,
) -> None:
    store = tmp_path / "documents"
    cases = three_cases(exchange_engine)
    report = render_documents(exchange_engine, store=store, catalogue=catalogue)
    assert report.rendered == {"acceptance_notice": 1, "non_acceptance_decision": 1, "correction_notice": 1}
    assert report.not_applicable == 1 and report.refused == []
    recorded = rows(exchange_engine)
    assert [(r["case_number"], r["kind"]) for r in recorded] == [
        (cases["accepted"], "acceptance_notice"), (cases["not_accepted"], "non_acceptance_decision"),
        (cases["correction_requested"], "correction_notice"),
    ]
    texts = {}
    for row in recorded:
        path = store / row["file_name"]
        assert row["file_name"] == f"{row['case_number'][:12]}/{row['case_number']}-{row['kind']}-{row['event_id']}.pdf"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
        assert row["pages"] == len(PdfReader(path).pages) >= 1
        assert row["template_version"] == "2026.1"
        # Every glyph, Latin digits too, in the family the style names (no fallback font).
        fonts = embedded_font_names(path)
        assert fonts and all("WenQuanYi-Zen-Hei" in name for name in fonts), fonts
        text = texts[row["kind"]] = pdf_text(path)
        assert row["case_number"] in text and "公路超限运输许可" in text and "南京市交通运输局" in text
        assert "2026年11月20日提出的公路超限运输许可申请" in text
    assert "受理通知书" in texts["acceptance_notice"] and "欧阳明华" in texts["acceptance_notice"]
    assert "〔2026〕受字第0101号" in texts["acceptance_notice"] and "决定予以受理" in texts["acceptance_notice"]
    decision = texts["non_acceptance_decision"]
    assert "不予受理决定书" in decision and "张三丰" in decision and REASONS in decision
    assert "六十日内依法申请行政复议" in decision and "六个月内依法向人民法院提起行政诉讼" in decision
    notice = texts["correction_notice"]
    assert "补正告知书" in notice and "一次性告知" in notice
    assert "申请书未加盖公章" in notice and "缺少车辆行驶证复印件" in notice
    assert "请一次性补正后重新提交。1." not in notice  # the closing request is no item


def test_a_rerun_renders_nothing_again_and_picks_up_new_changes(
    exchange_engine: Engine, catalogue: Catalogue, tmp_path: Path,
) -> None:
    store = tmp_path / "documents"
    cases = three_cases(exchange_engine)
    first = render_documents(exchange_engine, store=store, catalogue=catalogue)
    files = {p: p.read_bytes() for p in store.rglob("*.pdf")}
    again = render_documents(exchange_engine, store=store, catalogue=catalogue)
    assert again.rendered == {} and again.position == first.position
    # Position lost (restored backup): the (event, kind) rows make the rerun skip, not duplicate.
    with transaction(exchange_engine) as connection:
        connection.execute(delete(supervision_positions))
    lost = render_documents(exchange_engine, store=store, catalogue=catalogue)
    assert lost.rendered == {} and lost.already == 3
    assert len(rows(exchange_engine)) == 3
    assert {p: p.read_bytes() for p in store.rglob("*.pdf")} == files
    # A second correction request of the same case: its own document and number.
    event = add_change(exchange_engine, cases["correction_requested"], "correction_requested",
                       "请补正：申请书签章不清晰", hours=80)
    later = render_documents(exchange_engine, store=store, catalogue=catalogue)
    assert later.rendered == {"correction_notice": 1} and later.position == event
    [row] = [r for r in rows(exchange_engine) if r["event_id"] == event]
    text = pdf_text(store / row["file_name"])
    assert "〔2026〕补字第0103-2号" in text and "申请书签章不清晰" in text


def test_a_crash_between_the_files_and_the_commit_is_repaired_exactly_once(
    exchange_url: str, exchange_engine: Engine, catalogue: Catalogue, tmp_path: Path,
) -> None:
    store = tmp_path / "documents"
    three_cases(exchange_engine)
    catalogue_file = tmp_path / "catalogue.json"
    catalogue_file.write_text(json.dumps(documents_of(), ensure_ascii=False), "utf-8")
    root = Path(__file__).parents[2]
    child = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("documents_crash_child.py")), exchange_url, str(store),
         str(catalogue_file)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    written = {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*.pdf")}
    assert len(written) == 3 and not list(store.rglob("*.part"))
    assert rows(exchange_engine) == []
    report = render_documents(exchange_engine, store=store, catalogue=catalogue)
    assert sum(report.rendered.values()) == 3
    recorded = rows(exchange_engine)
    assert sorted(r["file_name"] for r in recorded) == sorted(written)
    for row in recorded:  # the rerun wrote the very same bytes the killed run had written
        data = (store / row["file_name"]).read_bytes()
        assert data == written[row["file_name"]]
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
    assert render_documents(exchange_engine, store=store, catalogue=catalogue).rendered == {}
    with exchange_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(case_documents)).scalar_one() == 3


def test_a_refused_document_is_a_steward_finding_until_it_is_rendered(
    exchange_engine: Engine, catalogue: Catalogue, tmp_path: Path,
) -> None:
    from quality.report import STEWARD_ALARMS, steward_findings

    assert REFUSED_ALARM in STEWARD_ALARMS
    store = tmp_path / "documents"
    bare = add_application(exchange_engine, 201)
    event = add_change(exchange_engine, bare, "not_accepted", "不予受理")
    unknown = add_application(exchange_engine, 202, code="113201000123456713XK00000000002")
    add_change(exchange_engine, unknown, "accepted", "予以受理")
    report = render_documents(exchange_engine, store=store, catalogue=catalogue)
    assert report.rendered == {}
    assert {(r["case_number"], r["code"]) for r in report.refused} == {(bare, "NO_REASONS"), (unknown, "MISSING_FACTS")}
    findings = steward_findings(exchange_engine)
    assert {f["kind"] for f in findings} == {REFUSED_ALARM}
    assert any(f"{bare} (not_accepted, event {event})" in f["message"] for f in findings)
    assert rows(exchange_engine) == [] and not store.exists()
    # Once the catalogue knows the item, the operator's re-render issues it and the finding closes.
    fuller = build_catalogue(documents_of((LICENCE, PENALTY, "113201000123456713XK00000000002")))
    repaired = rerender_case(exchange_engine, unknown, store=store, catalogue=fuller)
    assert repaired.rendered == {"acceptance_notice": 1}
    with exchange_engine.connect() as connection:
        still_open = [r.detail["case_number"] for r in open_alarm_rows(connection, REFUSED_ALARM)]
    assert still_open == [bare]
    # The refusal of the bare decision stands, and is not raised a second time.
    assert rerender_case(exchange_engine, bare, store=store, catalogue=fuller).refused[0]["code"] == "NO_REASONS"
    with exchange_engine.connect() as connection:
        assert len(open_alarm_rows(connection, REFUSED_ALARM)) == 1


def test_a_re_render_restores_a_lost_file_byte_identical(
    exchange_engine: Engine, catalogue: Catalogue, tmp_path: Path,
) -> None:
    store = tmp_path / "documents"
    cases = three_cases(exchange_engine)
    render_documents(exchange_engine, store=store, catalogue=catalogue)
    [before] = case_documents_of(exchange_engine, cases["not_accepted"], store=store)
    path = Path(before["path"])
    original = path.read_bytes()
    path.unlink()
    assert case_documents_of(exchange_engine, cases["not_accepted"], store=store)[0]["file"] == "missing"
    report = rerender_case(exchange_engine, cases["not_accepted"], store=store, catalogue=catalogue)
    assert report.rendered == {"non_acceptance_decision": 1}
    [after] = case_documents_of(exchange_engine, cases["not_accepted"], store=store)
    assert after["file"] == "ok" and path.read_bytes() == original
    assert (after["id"], after["sha256"], after["rendered_at"]) == (before["id"], before["sha256"], before["rendered_at"])
    path.write_bytes(original + b"%tampered")
    assert case_documents_of(exchange_engine, cases["not_accepted"], store=store)[0]["file"] == "changed"
    assert len(rows(exchange_engine)) == 3


def test_the_pdf_metadata_is_fixed_so_the_bytes_do_not_depend_on_the_render_time(
    exchange_engine: Engine, catalogue: Catalogue, tmp_path: Path,
) -> None:
    store = tmp_path / "documents"
    cases = three_cases(exchange_engine)
    render_documents(exchange_engine, store=store, catalogue=catalogue)
    [row] = case_documents_of(exchange_engine, cases["accepted"], store=store)
    reader = PdfReader(io.BytesIO(Path(row["path"]).read_bytes()))
    metadata = reader.metadata
    assert metadata is not None
    assert metadata.title == "受理通知书 〔2026〕受字第0101号" and metadata.author == "南京市交通运输局"
    assert str(metadata["/CreationDate"]).startswith("D:20261121")  # the day of issue, not today


def test_the_stage_and_the_operator_commands(hub_settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from hub import stages
    from hub.cli import main
    from hub.zones import zone_engine

    engine = zone_engine(hub_settings, "admin")
    cases = three_cases(engine)
    bare = add_application(engine, 301)
    add_change(engine, bare, "not_accepted", "")
    report = stages.legal_documents(hub_settings)
    assert report["rendered"] == {"acceptance_notice": 1, "non_acceptance_decision": 1, "correction_notice": 1}
    assert [r["code"] for r in report["refused"]] == ["NO_REASONS"]
    store = hub_settings.admin_root / "documents"
    assert sorted(p.relative_to(store).as_posix() for p in store.rglob("*.pdf")) == sorted(report["files"])

    assert main(["documents", "list", cases["not_accepted"]]) == 0
    listed = capsys.readouterr().out
    assert "不予受理决定书" in listed and "[ok]" in listed
    assert f"{cases['not_accepted']}-non_acceptance_decision-" in listed
    assert main(["documents", "list", bare]) == 1  # an open refusal needs someone
    refusal = capsys.readouterr().out
    assert "refused  event" in refusal and "(not_accepted): NO_REASONS" in refusal
    assert main(["documents", "list", "32010000019999999999"]) == 1
    assert "no legal documents recorded" in capsys.readouterr().out

    [path] = [p for p in store.rglob("*.pdf") if cases["correction_requested"] in p.name]
    original = path.read_bytes()
    path.unlink()
    assert main(["documents", "list", cases["correction_requested"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"][0]["file"] == "missing"
    assert main(["documents", "list", cases["correction_requested"]]) == 1  # a missing file is a failure
    capsys.readouterr()
    assert main(["documents", "render", "--case", cases["correction_requested"]]) == 0
    assert "1 document(s) rendered" in capsys.readouterr().out
    assert path.read_bytes() == original
    assert main(["documents", "render", "--case", bare]) == 1  # still refused: no reasons
    assert "NO_REASONS" in capsys.readouterr().out


def test_a_file_is_never_named_from_anything_but_a_case_number_and_dates_are_the_agencys(
    exchange_engine: Engine, catalogue: Catalogue, tmp_path: Path,
) -> None:
    store = tmp_path / "documents"
    with transaction(exchange_engine) as connection:
        connection.execute(applications.insert().values(
            net_id="NET20261120000401", case_number="3201/../../000000401", power_code=LICENCE, power_version=1,
            agency_code="3201000001", case_name="x", applicant_type="person", applicant_name="李四",
            applicant_id_type="resident_id", applicant_id_number="11010519491231002X",
            submitted_at=APPLIED.isoformat(), registered_at=APPLIED.isoformat(), bundle="b", envelope="{}"))
        connection.execute(status_outbox.insert().values(
            net_id="NET20261120000401", case_number="3201/../../000000401", status="accepted",
            at=APPLIED.isoformat(), opinion="予以受理"))
    number = add_application(exchange_engine, 402)
    with transaction(exchange_engine) as connection:  # 17:30 UTC is 01:30 the next day in Nanjing
        connection.execute(status_outbox.insert().values(
            net_id="NET20261120000402", case_number=number, status="accepted",
            at="2026-11-21T17:30:00+00:00", opinion="予以受理"))
    report = render_documents(exchange_engine, store=store, catalogue=catalogue)
    assert [r["code"] for r in report.refused] == ["BAD_CASE_NUMBER"]
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.pdf")] == [
        f"documents/{number[:12]}/{number}-acceptance_notice-2.pdf"]
    [row] = case_documents_of(exchange_engine, number, store=store)
    assert "2026年11月22日" in pdf_text(Path(row["path"])) and "〔2026〕受字第0402号" in pdf_text(Path(row["path"]))
