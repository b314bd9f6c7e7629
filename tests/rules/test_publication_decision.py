"""The pure publication decision (``rules.publication.decide_publication``): each status
change is withheld, held with findings, or published as its public records."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rules.catalogue import Catalogue
from rules.identifiers import resident_id_check_char
from rules.publication import (
    Held,
    Penalty,
    Publish,
    StatusChange,
    Withheld,
    decide_publication,
    status_change,
)


def _resident_id(born: str) -> str:
    body = "320102" + born + "123"
    return body + resident_id_check_char(body)


ADULT = _resident_id("19800101")
MINOR = _resident_id("20150101")


def change(**fields: Any) -> StatusChange:
    values: dict[str, Any] = {
        "event_id": 7, "net_id": "NET20261122000001", "case_number": "32010000010000000001",
        "status": "accepted", "at": "2026-11-22T10:00:00+08:00", "step": "受理", "opinion": "材料齐全",
        "reasons": None, "result": None, "lookup": "ab" * 16, "power_code": "P1",
        "power_name": "道路运输经营许可", "category": "XK", "agency_code": "3201000001",
        "case_name": "张三道路运输经营许可申请", "applicant_type": "person",
        "applicant_name": "张三", "applicant_id_number": ADULT,
    }
    values.update(fields)
    return StatusChange(**values)


def test_a_plain_change_is_published_masked_and_allow_listed() -> None:
    decision = decide_publication(change())
    assert isinstance(decision, Publish)
    assert set(decision.records) == {"status_events"}
    record = decision.records["status_events"]
    assert record["applicant_name"] == "张*"
    assert record["case_name"] == "张*道路运输经营许可申请"
    assert record["applicant_id"] == ADULT[:6] + "********" + ADULT[-4:]
    assert "secret" not in record and "applicant_id_number" not in record


def test_a_granted_licence_and_a_penalty_also_give_a_disclosure_record() -> None:
    granted = decide_publication(change(status="granted"))
    assert isinstance(granted, Publish) and granted.records["disclosures"]["kind"] == "licence"
    penalised = decide_publication(
        change(status="decided", category="CF", penalty=Penalty(["fine"], 20050))
    )
    assert isinstance(penalised, Publish)
    assert penalised.records["disclosures"]["kind"] == "penalty"
    assert penalised.records["disclosures"]["fine_amount"] == "200.50"
    assert "disclosures" not in decide_publication(change(status="granted", category="CF")).records  # type: ignore[union-attr]


def test_secret_privacy_and_minor_cases_are_withheld() -> None:
    assert decide_publication(change(secret=True)) == Withheld("secret")
    assert decide_publication(change(privacy=True)) == Withheld("privacy")
    assert decide_publication(change(applicant_id_number=MINOR)) == Withheld("minor")
    # Withholding comes first: nothing of a withheld case is even scanned.
    assert decide_publication(change(secret=True, opinion="13812345678")) == Withheld("secret")
    # An organisation is never a minor, whatever its number looks like.
    assert isinstance(decide_publication(change(applicant_type="organisation", applicant_id_number=MINOR,
                                                applicant_name="某某运输有限公司")), Held | Publish)


def test_a_case_withheld_before_withholds_its_later_changes() -> None:
    assert decide_publication(change(), case_withheld="secret") == Withheld("secret")


def test_personal_data_left_in_free_text_holds_the_change_with_findings() -> None:
    decision = decide_publication(change(opinion="请致电13812345678联系"))
    assert isinstance(decision, Held)
    assert decision.reason == "SCANNER:MOBILE"
    assert [(f.code, f.path, f.excerpt) for f in decision.findings] == [
        ("MOBILE", "/opinion", "138****5678")
    ]
    both = decide_publication(change(opinion=f"13812345678 {ADULT}"))
    assert isinstance(both, Held) and both.reason == "SCANNER:MOBILE,RESIDENT_ID"


def test_status_change_from_a_rejected_row_takes_the_party_from_the_envelope() -> None:
    row: dict[str, Any] = {
        "event_id": 3, "net_id": "NET1", "case_number": None, "status": "rejected",
        "at": "2026-11-22T10:00:00+08:00", "step": None, "opinion": None, "reasons": [],
        "result": None, "lookup": "cd" * 16, "power_code": None, "agency_code": None,
        "case_name": None, "applicant_type": None, "applicant_name": None,
        "applicant_id_number": None, "secret": None, "privacy": None, "penalty_kinds": None,
        "fine_amount": None, "decision": None, "penalty_decided_at": None,
        "rejected_envelope": '{"power_code": "P9", "case_name": "李四申请", "applicant": '
                             '{"type": "person", "name": "李四", "id_number": 5}}',
    }
    typed = status_change(row, Catalogue({}, "empty"))
    assert (typed.power_code, typed.case_name, typed.applicant_name) == ("P9", "李四申请", "李四")
    assert typed.applicant_id_number is None  # not a string: left out
    assert typed.power_name is None and typed.penalty is None
    penalised = status_change(
        {**row, "status": "decided", "decision": 1, "penalty_decided_at": "2026-11-22",
         "penalty_kinds": ["fine"], "fine_amount": 100}, Catalogue({}, "empty")
    )
    assert penalised.penalty == Penalty(["fine"], 100)
    not_penalised = status_change({**penalised.fields(), **row, "status": "decided", "decision": 2,
                                   "penalty_decided_at": "2026-11-22"}, Catalogue({}, "empty"))
    assert not_penalised.penalty is None
    assert replace(typed, secret=True).fields()["secret"] is True


@given(
    status=st.sampled_from(["accepted", "decided", "corrected", "granted"]),
    decision=st.one_of(st.none(), st.integers(1, 4)),
    penalty_decided_at=st.one_of(st.none(), st.just("2026-11-22")),
    texts=st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=8, max_size=8),
    flags=st.tuples(st.one_of(st.none(), st.booleans()), st.one_of(st.none(), st.booleans())),
    origin=st.one_of(st.none(), st.sampled_from(["internet", "counter"])),
    case_result=st.one_of(st.none(), st.integers(1, 3)),
)
def test_status_change_gives_the_change_its_constructor_gives(
    status: str, decision: int | None, penalty_decided_at: str | None, texts: list[str | None],
    flags: tuple[bool | None, bool | None], origin: str | None, case_result: int | None,
) -> None:
    """``status_change`` sets the fields of the frozen change at once, without ``__init__``:
    every field, in the declared order, with the values ``StatusChange(...)`` would hold."""
    power_code, agency_code, case_name, applicant_type, applicant_name, id_number, lookup, step = texts
    row: dict[str, Any] = {
        "event_id": 9, "net_id": "NET1", "case_number": "32010000010000000001", "status": status,
        "at": "2026-11-22T10:00:00+08:00", "step": step, "opinion": None, "reasons": None, "result": None,
        "lookup": lookup, "power_code": power_code, "agency_code": agency_code, "case_name": case_name,
        "applicant_type": applicant_type, "applicant_name": applicant_name, "applicant_id_number": id_number,
        "secret": flags[0], "privacy": flags[1], "penalty_kinds": ["fine"], "fine_amount": 100,
        "decision": decision, "penalty_decided_at": penalty_decided_at, "origin": origin,
        "case_result": case_result, "rejected_envelope": None,
    }
    catalogue = Catalogue({}, "empty")
    typed = status_change(row, catalogue)
    assert list(vars(typed)) == [f.name for f in fields(StatusChange)]
    built = StatusChange(**vars(typed))
    assert typed == built and vars(typed) == vars(built)
    penalised = penalty_decided_at is not None and decision == 1 and status in ("decided", "corrected")
    assert typed.penalty == (Penalty(["fine"], 100) if penalised else None)
    assert (typed.power_code, typed.lookup, typed.origin) == (power_code, lookup, origin or "internet")


def test_published_changes_reads_both_forms_of_a_publication_event() -> None:
    """One event per application and bundle lists its changes; an event of an earlier hub
    records one change; anything else records none (and proves nothing on the page)."""
    from rules.publication import PUBLISHED, published_changes

    assert published_changes(PUBLISHED, {"events": [[3, "accepted"], [9, "granted"]]}) == [(3, "accepted"), (9, "granted")]
    assert published_changes("granted", {"event_id": 9}) == [(9, "granted")]
    for outcome, detail in [
        (PUBLISHED, {"events": [[3, "accepted"], [9]]}),  # one malformed change spoils the list
        (PUBLISHED, {"events": [["3", "accepted"]]}),
        (PUBLISHED, {"events": [[True, "accepted"]]}),
        (PUBLISHED, {"event_id": 3}),
        (PUBLISHED, None),
        ("granted", {"event_id": "9"}),
        ("granted", ["event_id", 9]),
    ]:
        assert published_changes(outcome, detail) == [], (outcome, detail)
