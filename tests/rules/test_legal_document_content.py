"""The content of the legal documents: each kind's mandatory parts, the document number,
the reasons and the correction items read from the opinion, and the refusals."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from rules.legal_documents import (
    ACCEPTANCE_NOTICE,
    CORRECTION_NOTICE,
    NON_ACCEPTANCE_DECISION,
    REMEDIES,
    CaseFacts,
    DocumentRefused,
    build_document,
    correction_items,
    document_kind,
    document_number,
    non_acceptance_reasons,
)
from schemas.exceptions import TerminalError

CST = timezone(timedelta(hours=8))
FACTS = CaseFacts(
    event_id=41, case_number="32010000010000000123", status="accepted",
    event_at=datetime(2026, 11, 23, 10, 5, tzinfo=CST), applied_at=datetime(2026, 11, 21, 16, 30, tzinfo=CST),
    applicant_name="欧阳明华", item_name="公路超限运输许可", category="XK",
    legal_basis="《中华人民共和国公路法》第五十条", agency_name="南京市交通运输局",
    opinion="材料齐全，符合法定形式，予以受理", office="行政审批处", place="南京市江东中路265号",
    phone="025-68788001", promised_limit=15, statutory_limit=20, limit_unit="working_days",
)


def facts(**changes: object) -> CaseFacts:
    return dataclasses.replace(FACTS, **changes)  # type: ignore[arg-type]


def test_the_kind_follows_the_status_and_never_an_ex_officio_item() -> None:
    assert document_kind("accepted", "XK") == ACCEPTANCE_NOTICE
    assert document_kind("not_accepted", "SP") == NON_ACCEPTANCE_DECISION
    assert document_kind("correction_requested", "QR") == CORRECTION_NOTICE
    assert document_kind("granted", "XK") is None
    assert document_kind("accepted", "CF") is None  # a penalty's 立案 accepts no application
    with pytest.raises(ValueError, match="calls for no legal document"):
        build_document(facts(category="CF"))


def test_an_acceptance_notice_names_the_case_the_item_the_ground_and_the_limit() -> None:
    document = build_document(FACTS)
    assert (document.kind, document.title, document.number) == (ACCEPTANCE_NOTICE, "受理通知书", "〔2026〕受字第0123号")
    assert document.addressee == "欧阳明华："
    text = document.text()
    for part in ("2026年11月21日提出的公路超限运输许可申请", "办件流水号：32010000010000000123",
                 "《中华人民共和国行政许可法》第三十二条第一款第（五）项", "决定予以受理",
                 "自受理之日起15个工作日内作出决定（法定办理时限20个工作日）",
                 "事项设定依据：《中华人民共和国公路法》第五十条", "联系电话：025-68788001"):
        assert part in text, part
    assert document.agency_name == "南京市交通运输局" and document.issued_on.isoformat() == "2026-11-23"
    assert REMEDIES not in text


def test_an_item_other_than_a_licence_is_not_decided_under_the_licensing_law() -> None:
    text = build_document(facts(category="SP")).text()
    assert "行政许可法" not in text and "根据有关法律、法规的规定，本机关决定予以受理" in text


def test_a_non_acceptance_decision_gives_the_reasons_and_the_remedies() -> None:
    document = build_document(facts(
        status="not_accepted", opinion="申请事项依法不属于本机关职权范围，不予受理",
        reasons=("请向省交通运输厅申请。",)))
    assert document.title == "不予受理决定书" and document.number == "〔2026〕不受字第0123号"
    text = document.text()
    assert "经审查，申请事项依法不属于本机关职权范围；请向省交通运输厅申请。" in text
    assert "第三十二条第一款的规定，本机关决定不予受理" in text
    assert "六十日内依法申请行政复议" in text and "六个月内依法向人民法院提起行政诉讼" in text


@pytest.mark.parametrize("opinion", [None, "", "   ", "不予受理", "决定不予受理。", "，本机关不予受理"])
def test_a_non_acceptance_decision_without_reasons_is_refused(opinion: str | None) -> None:
    with pytest.raises(DocumentRefused) as refused:
        build_document(facts(status="not_accepted", opinion=opinion))
    assert refused.value.code == "NO_REASONS"
    assert isinstance(refused.value, TerminalError)  # a retry cannot help


def test_reasons_recorded_with_the_change_suffice_without_an_opinion() -> None:
    assert non_acceptance_reasons("不予受理", ["申请人不具备主体资格"]) == "申请人不具备主体资格"


def test_a_correction_notice_lists_every_item_once_and_cites_article_32() -> None:
    document = build_document(facts(
        status="correction_requested",
        opinion="请补正：1. 申请书未签章；2. 缺少车辆行驶证复印件\n3、通行路线方案不清晰。请一次性补正后重新提交。",
        occurrence=2))
    assert document.items == ("申请书未签章", "缺少车辆行驶证复印件", "通行路线方案不清晰")
    assert document.number == "〔2026〕补字第0123-2号"  # the case's second correction notice
    text = document.text()
    assert "第三十二条第一款第（四）项" in text and "一次性告知" in text
    assert "1. 申请书未签章\n2. 缺少车辆行驶证复印件\n3. 通行路线方案不清晰" in text


@pytest.mark.parametrize(("opinion", "items"), [
    ("请补正：申请书未签章，请一次性补正后重新提交", ("申请书未签章",)),
    ("请补正：（1）申请书未签章（2）身份证明已过期", ("申请书未签章", "身份证明已过期")),
    ("需补正的材料如下：①车货总质量2.5吨的称重证明 ②护送方案", ("车货总质量2.5吨的称重证明", "护送方案")),
    ("申请书未签章", ("申请书未签章",)),
])
def test_correction_items_as_the_opinion_gives_them(opinion: str, items: tuple[str, ...]) -> None:
    assert correction_items(opinion) == items


@pytest.mark.parametrize("opinion", [None, "", "请补正：", "请补正：请一次性补正后重新提交。"])
def test_a_correction_notice_without_items_is_refused(opinion: str | None) -> None:
    with pytest.raises(DocumentRefused) as refused:
        build_document(facts(status="correction_requested", opinion=opinion))
    assert refused.value.code == "NO_CORRECTION_ITEMS"


def test_a_document_without_its_addressee_or_agency_is_refused() -> None:
    with pytest.raises(DocumentRefused, match="MISSING_FACTS: the case lacks applicant_name, agency_name"):
        build_document(facts(applicant_name=" ", agency_name=""))


def test_document_numbers_are_deterministic_and_distinct_per_kind_and_case() -> None:
    numbers = {
        document_number(case, kind, 2026, n)
        for case in ("32010000010000000123", "32010000010000000124")
        for kind in (ACCEPTANCE_NOTICE, NON_ACCEPTANCE_DECISION, CORRECTION_NOTICE)
        for n in (1, 2)
    }
    assert len(numbers) == 12
    assert document_number("32010000010000000123", ACCEPTANCE_NOTICE, 2026) == "〔2026〕受字第0123号"
    assert document_number("32010000011234567890", CORRECTION_NOTICE, 2027) == "〔2027〕补字第1234567890号"
