"""Each suite passes on clean data and catches a deliberately seeded defect, and names
the record to look up."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from quality.data import (
    applications_frame,
    cases_frame,
    catalogue_frame,
    penalties_frame,
    provincial_batch_frame,
    results_frame,
    steps_frame,
)
from quality.runner import RuleOutcome, validate
from rules.catalogue import DISCLOSURE_FIELDS
from rules.identifiers import org_code_check_char, resident_id_check_char, uscc_check_char

PERSON_ID = "32010219800101001" + resident_id_check_char("32010219800101001")
ORG_CODE = "MA1MXY80" + org_code_check_char("MA1MXY80")
USCC = "91320100" + ORG_CODE + uscc_check_char("91320100" + ORG_CODE)


def failures(outcomes: list[RuleOutcome]) -> dict[str, RuleOutcome]:
    return {o.rule: o for o in outcomes if not o.success}


# --- catalogue ------------------------------------------------------------------------


def item(code: str, category: str = "XK", **changes: Any) -> dict[str, Any]:
    doc = {
        "code": code, "version": 1, "name": f"事项{code}", "category": category, "state": "A",
        "statutory_limit_days": 20, "promised_limit_days": 10,
        "disclosure": {f: "已公开" for f in DISCLOSURE_FIELDS[category]},
    }
    doc.update(changes)
    return doc


def clean_catalogue() -> list[dict[str, Any]]:
    return [item("C1"), item("C2", "CF"), item("C3", "QZ", state="T"), item("C4", "JL", state="X")]


def test_catalogue_suite_passes_clean_and_catches_each_defect(gx_context: Any) -> None:
    assert failures(validate(gx_context, {"catalogue": catalogue_frame(clean_catalogue())}, "t")) == {}

    broken = clean_catalogue() + [
        item("C1"),  # duplicate code
        item("C5", promised_limit_days=30),  # promised beyond the statutory limit
        item("C6", state="Z"),
        item("C7", "CF", disclosure={"procedure": "简易程序"}),  # penalty kinds, time limit missing
    ]
    found = failures(validate(gx_context, {"catalogue": catalogue_frame(broken)}, "t"))
    assert set(found) == {
        "catalogue.unique_code", "catalogue.promised_within_statutory", "catalogue.valid_state",
        "catalogue.disclosure_complete",
    }
    assert found["catalogue.promised_within_statutory"].record_ids == ["C5"]
    assert found["catalogue.promised_within_statutory"].severity == "critical"
    assert found["catalogue.disclosure_complete"].severity == "warning"
    assert found["catalogue.disclosure_complete"].examples[0]["missing_disclosure"] == "penalty_kinds,time_limit"


# --- applications ---------------------------------------------------------------------


def application(net_id: str, **changes: Any) -> dict[str, Any]:
    row = {
        "net_id": net_id, "case_number": "3201000001" + net_id[-10:], "power_code": "C1",
        "agency_code": "3201000001", "case_name": "张三道路运输经营许可申请",
        "applicant_type": "person", "applicant_name": "张三", "applicant_id_type": "resident_id",
        "applicant_id_number": PERSON_ID, "applicant_mobile": "13812345678",
        "submitted_at": "2026-11-20T09:00:00+08:00", "registered_at": "2026-11-20T10:00:00+08:00",
        "bundle": "inbound#1", "envelope": json.dumps({"summary": "申请道路运输经营许可证"}),
    }
    row.update(changes)
    return row


def clean_applications() -> list[dict[str, Any]]:
    return [
        application("NET202611200000000001"),
        application("NET202611200000000002", applicant_type="organisation", applicant_name="南京某运输有限公司",
                    applicant_id_type="uscc", applicant_id_number=USCC),
        application("NET202611200000000003", applicant_id_type="passport", applicant_id_number="E12345678"),
    ]


def test_applications_suite_passes_clean_and_catches_each_defect(gx_context: Any) -> None:
    frame = applications_frame(pd.DataFrame(clean_applications()))
    assert frame["identifier_valid"].all()
    assert failures(validate(gx_context, {"applications": frame}, "t")) == {}

    wrong_digit = PERSON_ID[:17] + ("0" if PERSON_ID[17] != "0" else "1")
    broken = clean_applications() + [
        application("NET202611200000000004", applicant_id_number=wrong_digit),
        application("NET202611200000000005", applicant_name=None),
        application("NET202611200000000006", submitted_at="2026-11-21T09:00:00+08:00"),
    ]
    found = failures(validate(gx_context, {"applications": applications_frame(pd.DataFrame(broken))}, "t"))
    assert set(found) == {
        "applications.identifier_check_digit", "applications.required.applicant_name",
        "applications.plausible_dates",
    }
    check = found["applications.identifier_check_digit"]
    assert check.record_ids == ["NET202611200000000004"] and check.failed == 1
    # The example row a steward sees is masked: first 6 and last 4 characters only.
    assert check.examples[0]["applicant_id_number"] == wrong_digit[:6] + "********" + wrong_digit[-4:]
    assert check.examples[0]["applicant_name"] == "张*"
    assert check.examples[0]["applicant_mobile"] == "138****5678"
    assert found["applications.plausible_dates"].record_ids == ["NET202611200000000006"]


# --- cases, steps and results ---------------------------------------------------------

REG = "2026-11-20T10:00:00+08:00"


def case_frames(cases: list[tuple[str, str]], steps: list[tuple[str, int, int, str]],
                results: list[tuple[str, str, int, int]], accepted: list[tuple[str, str]],
                *, origins: dict[str, str] | None = None, bad_party_ids: frozenset[str] = frozenset(),
                unregistered: frozenset[str] = frozenset()) -> dict[str, pd.DataFrame]:
    origins = origins or {}
    case_rows = pd.DataFrame([
        {"case_number": c, "net_id": None if origins.get(c, "internet") != "internet" else f"NET-{c}",
         "state": "granted", "origin": origins.get(c, "internet")} for c, _ in cases
    ])
    registered = pd.DataFrame([
        {"case_number": c, "net_id": None if origins.get(c, "internet") != "internet" else f"NET-{c}",
         "registered_at": REG, "summary": s, "party_identifier_valid": c not in bad_party_ids}
        for c, s in cases if c not in unregistered
    ])
    step_rows = pd.DataFrame([
        {"case_number": c, "step_no": n, "node": "审查", "status": st, "officer_name": "王建国",
         "started_at": at, "finished_at": at}
        for c, n, st, at in steps
    ], columns=["case_number", "step_no", "node", "status", "officer_name", "started_at", "finished_at"])
    result_rows = pd.DataFrame([
        {"case_number": c, "result": 2, "finished_at": at, "fee_due": due, "fee_paid": paid}
        for c, at, due, paid in results
    ])
    accepted_at = pd.DataFrame([{"case_number": c, "accepted_at": at} for c, at in accepted],
                               columns=["case_number", "accepted_at"])
    return {
        "cases": cases_frame(case_rows, registered, step_rows, accepted_at),
        "steps": steps_frame(step_rows, registered, result_rows),
        "results": results_frame(result_rows, step_rows, registered),
    }


CLEAN_CASES = [("A1", "申请道路运输经营许可"), ("A2", "申请公路超限运输许可")]
CLEAN_STEPS = [
    ("A1", 1, 1, "2026-11-20T10:05:00+08:00"), ("A1", 2, 1, "2026-11-21T10:00:00+08:00"),
    ("A2", 1, 4, "2026-11-20T10:05:00+08:00"), ("A2", 2, 1, "2026-11-20T11:00:00+08:00"),
    ("A2", 3, 1, "2026-11-20T11:05:00+08:00"),
]
CLEAN_RESULTS = [("A1", "2026-11-21T10:00:00+08:00", 0, 0), ("A2", "2026-11-22T10:00:00+08:00", 200, 205)]
CLEAN_ACCEPTED = [("A1", "2026-11-20T10:05:00+08:00"), ("A2", "2026-11-20T11:05:00+08:00")]


def test_case_suites_pass_clean(gx_context: Any) -> None:
    frames = case_frames(CLEAN_CASES, CLEAN_STEPS, CLEAN_RESULTS, CLEAN_ACCEPTED)
    assert failures(validate(gx_context, frames, "t")) == {}


@pytest.mark.parametrize(("defect", "rule", "record"), [
    ("short summary", "cases.summary_length", "B1"),
    ("step before registration", "steps.not_before_registration", "B1"),
    ("step after finish", "steps.not_after_finish", "B1"),
    ("result without steps", "results.has_steps", "B2"),
    ("fee off by more than 5%", "results.fee_within_5_percent", "B1"),
    ("repeated correction", "cases.repeated_correction", "B1"),
    ("correction after acceptance", "cases.correction_after_acceptance", "B1"),
    ("counter case with a wrong party id", "cases.party_identifier_check_digit", "B1"),
    ("case without a registration record", "cases.registered", "B2"),
    ("unknown origin", "cases.valid_origin", "B1"),
])
def test_case_suites_catch_each_seeded_defect(gx_context: Any, defect: str, rule: str, record: str) -> None:
    cases = list(CLEAN_CASES) + [("B1", "申请许可证件"), ("B2", "申请许可证件")]
    steps = list(CLEAN_STEPS) + [("B1", 1, 1, "2026-11-20T10:30:00+08:00")]
    results = list(CLEAN_RESULTS) + [("B1", "2026-11-21T10:00:00+08:00", 100, 100)]
    accepted = list(CLEAN_ACCEPTED) + [("B1", "2026-11-20T10:30:00+08:00")]
    if defect == "short summary":
        cases[2] = ("B1", "申请")
    elif defect == "step before registration":
        steps.append(("B1", 2, 1, "2026-11-20T09:00:00+08:00"))
    elif defect == "step after finish":
        steps.append(("B1", 2, 1, "2026-11-23T09:00:00+08:00"))
    elif defect == "result without steps":
        results.append(("B2", "2026-11-21T10:00:00+08:00", 0, 0))
    elif defect == "fee off by more than 5%":
        results[-1] = ("B1", "2026-11-21T10:00:00+08:00", 100, 90)
    elif defect == "repeated correction":
        steps += [("B1", 2, 4, "2026-11-20T10:10:00+08:00"), ("B1", 3, 4, "2026-11-20T10:20:00+08:00")]
    elif defect == "correction after acceptance":
        steps.append(("B1", 2, 4, "2026-11-20T12:00:00+08:00"))
    # B1 a counter case and B2 an ex-officio one (no NET_ID): the same rules hold for them.
    origins = {"B1": "counter", "B2": "ex_officio"}
    bad_party_ids: frozenset[str] = frozenset()
    unregistered: frozenset[str] = frozenset()
    if defect == "counter case with a wrong party id":
        bad_party_ids = frozenset({"B1"})
    elif defect == "case without a registration record":
        unregistered = frozenset({"B2"})
    elif defect == "unknown origin":
        origins["B1"] = "fax"
    found = failures(validate(gx_context, case_frames(
        cases, steps, results, accepted, origins=origins, bad_party_ids=bad_party_ids, unregistered=unregistered), "t"))
    # A case nobody registered has no summary either.
    assert set(found) == {rule} | ({"cases.summary_present"} if rule == "cases.registered" else set())
    assert found[rule].record_ids == [record]


# --- penalty cases --------------------------------------------------------------------


def penalty(case: str, occurred: str, registered: str, kinds: list[str], amount: int) -> dict[str, Any]:
    return {"case_number": case, "net_id": f"NET-{case}", "occurred_on": occurred,
            "registered_at": registered, "penalty_kinds": json.dumps(kinds), "fine_amount": amount}


def test_penalty_suite_counts_working_days_and_catches_fines_without_amount(gx_context: Any) -> None:
    clean = [
        penalty("P1", "2026-09-01", "2026-09-03T10:00:00+08:00", ["fine"], 50_000),
        # 国庆 2026: 20 calendar days but only 10 working days (the National Day holiday).
        penalty("P2", "2026-09-25", "2026-10-15T10:00:00+08:00", ["warning"], 0),
    ]
    frame = penalties_frame(pd.DataFrame(clean))
    assert list(frame["working_days_to_registration"]) == [2, 10]
    assert failures(validate(gx_context, {"penalties": frame}, "t")) == {}

    broken = clean + [
        penalty("P3", "2026-09-25", "2026-10-16T10:00:00+08:00", ["warning"], 0),  # 11 working days
        penalty("P4", "2026-11-02", "2026-11-03T10:00:00+08:00", ["warning", "fine"], 0),
    ]
    found = failures(validate(gx_context, {"penalties": penalties_frame(pd.DataFrame(broken))}, "t"))
    assert set(found) == {"penalties.registered_within_10_working_days", "penalties.fine_has_amount"}
    assert found["penalties.registered_within_10_working_days"].record_ids == ["P3"]
    assert found["penalties.fine_has_amount"].record_ids == ["P4"]
    assert found["penalties.fine_has_amount"].severity == "critical"


# --- provincial batches ---------------------------------------------------------------


def write_batch(folder: Path) -> dict[str, Any]:
    files = {"cases.jsonl": b'{"a":1}\n{"a":2}\n', "steps.jsonl": b'{"s":1}\n'}
    entries = []
    for name, content in files.items():
        (folder / name).write_bytes(content)
        entries.append({"name": name, "sha256": hashlib.sha256(content).hexdigest(),
                        "count": content.count(b"\n")})
    return {"files": entries}


def test_provincial_batch_suite_checks_counts_and_hashes_against_the_manifest(
    gx_context: Any, tmp_path: Path
) -> None:
    manifest = write_batch(tmp_path)
    frame = provincial_batch_frame(tmp_path, manifest)
    assert failures(validate(gx_context, {"provincial_batch": frame}, "t")) == {}

    manifest["files"][0]["count"] = 3  # the manifest claims a row the file does not hold
    (tmp_path / "steps.jsonl").write_bytes(b'{"s":2}\n')  # same count, other content
    manifest["files"].append({"name": "../results.jsonl", "sha256": "0" * 64, "count": 1})
    found = failures(validate(gx_context, {"provincial_batch": provincial_batch_frame(tmp_path, manifest)}, "t"))
    assert found["provincial_batch.count_matches"].record_ids == ["cases.jsonl", "../results.jsonl"]
    assert found["provincial_batch.hash_matches"].record_ids == ["steps.jsonl", "../results.jsonl"]
    assert found["provincial_batch.file_present"].record_ids == ["../results.jsonl"]
