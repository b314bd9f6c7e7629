"""Application validation: every reason of a record, each with code, pointer and message."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.applications import SUBMITTED_AT_UNREADABLE, validate_application
from rules.catalogue import Catalogue, CatalogueError, build_catalogue
from rules.identifiers import (
    USCC_ALPHABET,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)

CATALOGUE_FILE = Path(__file__).parents[2] / "hub" / "defaults" / "catalogue.json"
RECEIVED = datetime.fromisoformat("2026-11-23T12:00:00+08:00")
ID_BODY = "32010219900307123"
PDF_SHA = "a" * 64
JPG_SHA = "b" * 64


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return build_catalogue(json.loads(CATALOGUE_FILE.read_text("utf-8")))


def item_code(catalogue: Catalogue, state: str) -> str:
    return next(i.code for i in catalogue.items.values() if i.state == state and i.category == "XK")


@pytest.fixture
def envelope(catalogue: Catalogue) -> dict[str, Any]:
    return {
        "net_id": "NET20261123000001",
        "submitted_at": "2026-11-23T09:30:00+08:00",
        "channel": 1,
        "power_code": item_code(catalogue, "A"),
        "agency_code": "3201000001",
        "case_name": "张三申请公路超限运输许可",
        "summary": "申请大件运输车辆通行许可",
        "applicant": {
            "type": "person",
            "name": "张三",
            "id_type": "resident_id",
            "id_number": ID_BODY + resident_id_check_char(ID_BODY),
            "mobile": "13812345678",
        },
        "form": {},
        "materials": [
            {"material_code": "APP_FORM", "name": "申请书", "sha256": PDF_SHA, "media_type": "application/pdf", "size": 10},
            {"material_code": "ID_COPY", "name": "身份证明", "sha256": JPG_SHA, "media_type": "image/jpeg", "size": 10},
        ],
    }


def codes(reasons: list[Any]) -> list[str]:
    return [r.code for r in reasons]


def validate(envelope: Any, catalogue: Catalogue, attachments: set[str] | None = None) -> list[Any]:
    return validate_application(
        envelope, catalogue, received_at=RECEIVED, attachments={PDF_SHA, JPG_SHA} if attachments is None else attachments
    )


def test_valid_application_has_no_reasons(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    assert validate(envelope, catalogue) == []


def test_suspended_item_gives_its_own_reason(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    envelope["power_code"] = item_code(catalogue, "T")
    envelope["materials"] = envelope["materials"][:1]
    reasons = validate(envelope, catalogue)
    assert codes(reasons) == ["ITEM_SUSPENDED"]
    assert reasons[0].path == "/power_code" and "挂起" in reasons[0].message


def test_abolished_and_unknown_items(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    documents = [dict(i.document) for i in catalogue.items.values()]
    documents[0] = {**documents[0], "state": "X"}
    abolished = build_catalogue(documents)
    assert codes(validate(envelope, abolished)) == ["ITEM_ABOLISHED"]
    envelope["power_code"] = "NO-SUCH-ITEM"
    assert codes(validate(envelope, catalogue)) == ["ITEM_UNKNOWN"]


def test_all_reasons_of_one_record_are_reported(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    envelope["applicant"]["id_number"] = envelope["applicant"]["id_number"][:17] + (
        "0" if envelope["applicant"]["id_number"][17] != "0" else "1"
    )
    envelope["materials"] = envelope["materials"][1:]
    envelope["submitted_at"] = "2026-11-24T09:30:00+08:00"
    reasons = validate(envelope, catalogue)
    assert codes(reasons) == ["ID_CHECK_DIGIT", "MATERIAL_MISSING", "SUBMITTED_IN_FUTURE"]
    assert {r.path for r in reasons} == {"/applicant/id_number", "/materials", "/submitted_at"}
    assert all(r.message for r in reasons)


def test_schema_violations_keep_their_location(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    broken = copy.deepcopy(envelope)
    broken["summary"] = "太短"
    del broken["case_name"]
    reasons = validate(broken, catalogue)
    assert ("SCHEMA_MINLENGTH", "/summary") in [(r.code, r.path) for r in reasons]
    assert ("SCHEMA_REQUIRED", "") in [(r.code, r.path) for r in reasons]


def test_schema_and_identifier_reasons_together(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    envelope["summary"] = "短"
    envelope["applicant"]["id_number"] = "320102199003071230"  # wrong check character
    assert codes(validate(envelope, catalogue)) == ["ID_CHECK_DIGIT", "SCHEMA_MINLENGTH"]


def test_organisation_with_bad_credit_code(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    envelope["applicant"] = {"type": "organisation", "name": "南京某运输有限公司", "id_type": "uscc", "id_number": "91350100M000100Y44"}
    assert codes(validate(envelope, catalogue)) == ["USCC_CHECK_DIGIT"]


def test_material_type_and_missing_file(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    envelope["materials"][0]["media_type"] = "image/png"  # the form must be a PDF
    reasons = validate(envelope, catalogue, attachments={PDF_SHA})
    assert codes(reasons) == ["MATERIAL_FILE_ABSENT", "MATERIAL_TYPE_NOT_ALLOWED"]
    assert reasons[0].path == "/materials/1"


def test_not_an_object_is_a_schema_reason(catalogue: Catalogue) -> None:
    assert codes(validate(["not", "an", "object"], catalogue)) == ["SCHEMA_TYPE"]


def test_catalogue_refuses_promised_limit_above_statutory(catalogue: Catalogue) -> None:
    documents = [dict(i.document) for i in catalogue.items.values()]
    documents[0] = {**documents[0], "promised_limit_days": documents[0]["statutory_limit_days"] + 1}
    with pytest.raises(CatalogueError, match="promised limit exceeds the statutory limit"):
        build_catalogue(documents)


def test_catalogue_version_follows_content(catalogue: Catalogue) -> None:
    documents = [dict(i.document) for i in catalogue.items.values()]
    assert build_catalogue(reversed(documents)).version == catalogue.version
    documents[0] = {**documents[0], "name": documents[0]["name"] + "（修订）"}
    assert build_catalogue(documents).version != catalogue.version


# --- state at the time of submission, forms, identifiers, materials ---------------------


def _with_history(catalogue: Catalogue, code: str, suspended_at: str) -> Catalogue:
    from rules.catalogue import catalogue_from_versions

    first = dict(catalogue.items[code].document)
    second = {**first, "version": 2, "state": "T"}
    return catalogue_from_versions(
        [(first, datetime.fromisoformat("2026-01-01T00:00:00+08:00")), (second, datetime.fromisoformat(suspended_at))]
    )


def test_suspended_after_submission_still_accepts(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    history = _with_history(catalogue, envelope["power_code"], "2026-11-23T10:00:00+08:00")
    assert history.items[envelope["power_code"]].state == "T"
    assert validate(envelope, history) == []  # submitted 09:30, suspended 10:00


def test_suspended_before_submission_is_refused(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    history = _with_history(catalogue, envelope["power_code"], "2026-11-23T09:00:00+08:00")
    reasons = validate(envelope, history)
    assert codes(reasons) == ["ITEM_SUSPENDED"]
    assert reasons[0].path == "/power_code"


def test_item_not_yet_in_force(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    history = _with_history(catalogue, envelope["power_code"], "2026-12-01T00:00:00+08:00")
    envelope["submitted_at"] = "2025-12-31T09:00:00+08:00"
    assert codes(validate(envelope, history, )) == ["ITEM_NOT_IN_FORCE"]


def test_many_reasons_each_with_code_pointer_and_chinese_message(
    envelope: dict[str, Any], catalogue: Catalogue
) -> None:
    envelope["power_code"] = item_code(catalogue, "T")
    envelope["agency_code"] = "3201000099"
    envelope["contact"] = {"type": "organisation", "name": "南京某公司", "id_type": "org_code", "id_number": "12345678-0"}
    envelope["materials"].append(
        {"material_code": "OTHER", "name": "其他材料", "sha256": "c" * 64, "media_type": "application/pdf", "size": 5}
    )
    envelope["summary"] = "短"
    reasons = validate(envelope, catalogue)
    assert codes(reasons) == [
        "AGENCY_MISMATCH", "ITEM_SUSPENDED", "MATERIAL_FILE_ABSENT", "MATERIAL_NOT_LISTED",
        "MATERIAL_NOT_LISTED", "ORG_CODE_CHECK_DIGIT", "SCHEMA_MINLENGTH",
    ]
    assert ("ORG_CODE_CHECK_DIGIT", "/contact/id_number") in [(r.code, r.path) for r in reasons]
    assert all(r.path.startswith("/") and any("\u4e00" <= ch <= "\u9fff" for ch in r.message) for r in reasons)


def test_form_schema_of_the_item(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    item = catalogue.items[envelope["power_code"]]
    assert item.form_schema is not None
    envelope["form"] = {"plate_number": "苏A12345", "axles": 6, "travel_date": "2026-11-30"}
    assert validate(envelope, catalogue) == []
    envelope["form"] = {"plate_number": "A12345", "axles": 1, "travel_date": "2026-02-30"}
    reasons = validate(envelope, catalogue)
    assert [(r.code, r.path) for r in reasons] == [
        ("FORM_FORMAT", "/form/travel_date"), ("FORM_MINIMUM", "/form/axles"), ("FORM_PATTERN", "/form/plate_number"),
    ]
    assert reasons[2].message.startswith("车牌号码")


def test_historic_15_digit_id_and_birth_dates(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    envelope["applicant"]["id_number"] = "320102880101123"
    assert validate(envelope, catalogue) == []
    envelope["applicant"]["id_number"] = "320102881301123"
    assert codes(validate(envelope, catalogue)) == ["ID_BIRTH_DATE"]
    body = "32010220300101123"  # born after the submission
    envelope["applicant"]["id_number"] = body + resident_id_check_char(body)
    assert codes(validate(envelope, catalogue)) == ["ID_BIRTH_DATE"]
    envelope["applicant"]["id_number"] = "3201021990"
    assert codes(validate(envelope, catalogue)) == ["ID_FORMAT"]


def test_old_submission_and_party_type(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    envelope["submitted_at"] = "2025-10-01T09:00:00+08:00"
    envelope["applicant"]["id_type"] = "uscc"
    found = codes(validate(envelope, catalogue))
    assert "SUBMITTED_TOO_OLD" in found and "PARTY_ID_TYPE" in found and "USCC_CHECK_DIGIT" in found


def test_accept_path_agrees_with_the_detailed_rules(envelope: dict[str, Any], catalogue: Catalogue) -> None:
    from rules.applications import _passes, _rule_reasons

    variants = [copy.deepcopy(envelope) for _ in range(6)]
    variants[1]["applicant"]["id_number"] = "320102880101123"
    variants[2]["contact"] = {"type": "person", "name": "李四", "id_type": "passport", "id_number": "E12345678"}
    variants[3]["applicant"]["credit_code"] = "91350100M000100Y43"
    variants[4]["materials"][0]["media_type"] = "image/png"
    variants[5]["power_code"] = item_code(catalogue, "T")
    attachments = {PDF_SHA, JPG_SHA}
    for variant in variants:
        detailed = _rule_reasons(variant, catalogue, RECEIVED, attachments, guarded=False)
        if _passes(variant, catalogue, RECEIVED, attachments):
            assert detailed == []
        assert validate(variant, catalogue) == sorted(detailed)


# --- the accept path against the detailed rules, property-tested ------------------------


@st.composite
def resident_id_like(draw: st.DrawFn) -> str:
    """18-character resident IDs, mostly well formed, with impossible and future birth
    dates, lower-case check characters and single-character corruptions mixed in."""
    if draw(st.booleans()):
        born = draw(st.dates(min_value=date(1895, 1, 1), max_value=date(2030, 12, 31))).strftime("%Y%m%d")
    else:
        year = draw(st.integers(min_value=1850, max_value=2110))
        month, day = draw(st.integers(min_value=0, max_value=13)), draw(st.integers(min_value=0, max_value=32))
        born = f"{year:04d}{month:02d}{day:02d}"
    body = draw(st.sampled_from(["110101", "320102", "440305"])) + born
    body += f"{draw(st.integers(min_value=0, max_value=999)):03d}"
    right = resident_id_check_char(body)
    number = body + draw(st.sampled_from([right, right, right.lower(), *"0123456789Xx"]))
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        position = draw(st.integers(min_value=0, max_value=17))
        number = number[:position] + draw(st.sampled_from(list("0123456789aXx _+-\u0661\uff11"))) + number[position + 1 :]
    return number


def _base13_check(body: str) -> str:
    """The check character a bare base-13 reading of ``body`` gives (int() also reads
    "a"-"c", "_" and non-ASCII digits)."""
    return "10X98765432"[2 * int(body, 13) % 11]


# IDs the accept path must get right: lower-case check character; non-ASCII digits, a
# letter or "_" in the body with the check character their base-13 reading gives; birth
# dates that do not exist, are before 1900, or after the submission (2026-11-23).
TRICKY_IDS = [
    "11010519491231002x",
    "11010519491231002X",
    "1101051949123100\u0662X",
    "\u06611010519491231002X",
    "11010519491231a02" + _base13_check("11010519491231a02"),
    "1101051949123_002" + _base13_check("1101051949123_002"),
    "11010518991231002" + _base13_check("11010518991231002"),
    "32010219900229123" + _base13_check("32010219900229123"),
    "32010220000229123" + _base13_check("32010220000229123"),
    "32010220261124123" + _base13_check("32010220261124123"),
    "32010220261123123" + _base13_check("32010220261123123"),
]


@pytest.mark.parametrize("number", TRICKY_IDS)
def test_accept_path_resident_id_on_tricky_numbers(number: str) -> None:
    from rules.applications import _party_passes, _party_reasons

    party = {"type": "person", "name": "张三", "id_type": "resident_id", "id_number": number}
    detailed = _party_reasons(party, "/applicant", date(2026, 11, 23))
    assert _party_passes(party, "2026-11-23") == (detailed == [])
    ascii_digits = number.isascii() and number[:17].isdigit()
    assert ascii_digits or detailed  # the non-ASCII and letter cases must be refused


@given(resident_id_like(), st.dates(min_value=date(1899, 1, 1), max_value=date(2110, 12, 31)))
def test_accept_path_resident_id_agrees_with_the_detailed_rule(number: str, submitted_on: date) -> None:
    from rules.applications import _party_passes, _party_reasons

    party = {"type": "person", "name": "张三", "id_type": "resident_id", "id_number": number}
    detailed = _party_reasons(party, "/applicant", submitted_on)
    assert _party_passes(party, submitted_on.isoformat()) == (detailed == [])


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_birth_day_table_holds_only_real_days(yyyymmdd: str) -> None:
    from rules.applications import _BIRTH_DAYS, _NO_BIRTH_DAY, _birth_day

    try:
        real = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        real = None
    expected = real.isoformat() if real is not None and real >= date(1900, 1, 1) else _NO_BIRTH_DAY
    assert _birth_day(yyyymmdd) == expected
    assert _BIRTH_DAYS.get(yyyymmdd, expected) == expected
    assert all(key[:4] <= "2099" for key in _BIRTH_DAYS)


def _detailed(envelope: Any, catalogue: Catalogue, attachments: set[str]) -> list[Any]:
    """What validate_application must return, from the detailed rules alone."""
    from rules.applications import _rule_reasons, _schema_reasons

    schema = _schema_reasons(envelope)
    if not schema:
        return sorted(_rule_reasons(envelope, catalogue, RECEIVED, attachments, guarded=False))
    rules = _rule_reasons(envelope, catalogue, RECEIVED, attachments, guarded=True)
    if any(r.path == "/submitted_at" for r in schema):
        rules = [r for r in rules if r != SUBMITTED_AT_UNREADABLE]
    return sorted(set(schema + rules))


def _organisation(draw: st.DrawFn) -> dict[str, Any]:
    org_body = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=8, max_size=8)))
    body = "91320102" + org_body + org_code_check_char(org_body)
    code = body + uscc_check_char(body)
    if draw(st.booleans()):
        code = code[:17] + draw(st.sampled_from(USCC_ALPHABET))
    return {"type": "organisation", "name": "南京某运输有限公司", "id_type": "uscc", "id_number": code}


MUTATIONS = (
    "applicant_id", "contact", "submitted_at", "power_code", "agency_code", "drop_material",
    "media_type", "absent_file", "unlisted_material", "form", "credit_code", "organisation", "summary",
)


@st.composite
def application_variants(draw: st.DrawFn, envelope: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    variant = copy.deepcopy(envelope)
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3, unique=True)):
        if mutation == "applicant_id":
            variant["applicant"]["id_number"] = draw(resident_id_like())
        elif mutation == "contact":
            variant["contact"] = draw(st.sampled_from([
                {"type": "person", "name": "李四", "id_type": "resident_id", "id_number": draw(resident_id_like())},
                {"type": "person", "name": "李四", "id_type": "passport", "id_number": "E12345678"},
                {"type": "person", "name": "李四", "id_type": "uscc", "id_number": "91350100M000100Y43"},
                _organisation(draw),
            ]))
        elif mutation == "submitted_at":
            moment = RECEIVED + timedelta(minutes=draw(st.integers(min_value=-530_000, max_value=30)))
            offset = draw(st.sampled_from([timedelta(hours=8), timedelta(0), timedelta(hours=-5)]))
            variant["submitted_at"] = moment.astimezone(timezone(offset)).isoformat()
        elif mutation == "power_code":
            variant["power_code"] = draw(st.sampled_from([item_code(catalogue, "T"), "NO-SUCH-ITEM", *catalogue.items]))
        elif mutation == "agency_code":
            variant["agency_code"] = "3201000099"
        elif mutation == "drop_material":
            del variant["materials"][draw(st.integers(min_value=0, max_value=len(variant["materials"]) - 1))]
        elif mutation == "media_type":
            variant["materials"][-1]["media_type"] = draw(st.sampled_from(["image/png", "application/xml"]))
        elif mutation == "absent_file":
            variant["materials"][0]["sha256"] = "c" * 64
        elif mutation == "unlisted_material":
            variant["materials"].append(
                {"material_code": "OTHER", "name": "其他材料", "sha256": PDF_SHA, "media_type": "application/pdf", "size": 5}
            )
        elif mutation == "form":
            variant["form"] = draw(st.sampled_from([
                {"plate_number": "苏A12345", "axles": 6}, {"axles": 1}, {"travel_date": "2026-02-30"}, {"other": 1},
            ]))
        elif mutation == "credit_code":
            variant["applicant"]["credit_code"] = draw(st.sampled_from(["91350100M000100Y43", "91350100M000100Y44"]))
        elif mutation == "organisation":
            variant["applicant"] = _organisation(draw)
        elif mutation == "summary":
            variant["summary"] = "短"
    return variant


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_accept_path_agrees_with_the_detailed_rules_on_generated_records(
    data: st.DataObject, envelope: dict[str, Any], catalogue: Catalogue
) -> None:
    from rules.applications import _passes

    variant = data.draw(application_variants(envelope, catalogue))
    attachments = {PDF_SHA, JPG_SHA}
    expected = _detailed(variant, catalogue, attachments)
    assert validate(variant, catalogue, attachments) == expected
    if not _schema_reasons_of(variant) and _passes(variant, catalogue, RECEIVED, attachments):
        assert expected == []


def _schema_reasons_of(envelope: Any) -> list[Any]:
    from rules.applications import _schema_reasons

    return _schema_reasons(envelope)


# --- a record the compiled check refuses is never accepted ------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # No real day: jsonschema-rs refuses it; the Python validator does not check
        # date-time at all without the optional rfc3339-validator package.
        ({"submitted_at": "2026-02-29T09:30:00+08:00"}, [("SCHEMA_FORMAT", "/submitted_at")]),
        ({"submitted_at": "2026-11-23T09:30:60+08:00"}, [("SCHEMA_FORMAT", "/submitted_at")]),
        # A leap second passes both schema engines, but Python's datetime cannot hold it.
        ({"submitted_at": "2026-06-30T23:59:60Z"}, [("SCHEMA_FORMAT", "/submitted_at")]),
        # Python's re lets "$" match before a final newline; jsonschema-rs does not.
        ({"net_id": "NET20261123000001\n"}, [("SCHEMA_PATTERN", "/net_id")]),
        ({"agency_code": "3201000001\n"}, [("AGENCY_MISMATCH", "/agency_code"), ("SCHEMA_PATTERN", "/agency_code")]),
        ({"form": {"plate_number": "苏A12345\n"}}, [("FORM_PATTERN", "/form/plate_number")]),
        # Together with a problem the Python validator does see, both are reported.
        (
            {"net_id": "NET20261123000001\n", "summary": "短"},
            [("SCHEMA_MINLENGTH", "/summary"), ("SCHEMA_PATTERN", "/net_id")],
        ),
        (
            {"submitted_at": "2026-06-30T23:59:60Z", "summary": "短"},
            [("SCHEMA_FORMAT", "/submitted_at"), ("SCHEMA_MINLENGTH", "/summary")],
        ),
        # A malformed time keeps its one schema reason (no second one from the rules).
        ({"submitted_at": "yesterday"}, [("SCHEMA_FORMAT", "/submitted_at"), ("SCHEMA_PATTERN", "/submitted_at")]),
    ],
)
def test_where_the_schema_engines_differ_the_record_is_refused_with_reasons(
    change: dict[str, Any], expected: list[tuple[str, str]], envelope: dict[str, Any], catalogue: Catalogue
) -> None:
    envelope.update(change)
    reasons = validate(envelope, catalogue)
    assert [(r.code, r.path) for r in reasons] == expected
    assert reasons == _detailed(envelope, catalogue, {PDF_SHA, JPG_SHA})
