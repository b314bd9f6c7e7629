"""Masking, the status-event allow-list and the personal-data scanner of the public feed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import schemas
from rules.identifiers import (
    is_valid_resident_id,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)
from rules.personal_data import Finding, scan_for_personal_data
from rules.publication import (
    ALLOWED_FIELDS,
    DISCLOSURE_FIELDS,
    STATUS_EVENT_FIELDS,
    is_minor_at,
    mask_id_number,
    mask_name,
    mask_phone,
    public_disclosure_record,
    public_status_record,
    withheld_from_publication,
    withholding_reason,
)

AREA_CODES = ("110101", "320102", "320106", "320115", "440305", "510104")
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
PERSON_ID = "32010219900101123" + resident_id_check_char("32010219900101123")


def _luhn_check_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


def _valid_uscc() -> str:
    body = "91320102" + "12345678" + org_code_check_char("12345678")
    return body + uscc_check_char(body)


CREDIT_CODE = _valid_uscc()

resident_ids = st.builds(
    lambda area, born, sequence: (
        body := f"{area}{born:%Y%m%d}{sequence:03d}"
    ) + resident_id_check_char(body),
    st.sampled_from(AREA_CODES),
    st.dates(date(1900, 1, 1), date(2025, 12, 31)),
    st.integers(0, 999),
)
mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
bank_cards = st.builds(
    lambda body: body + _luhn_check_digit(body),
    st.from_regex(r"[1-9][0-9]{14,17}", fullmatch=True),
)
# Text around a number: words, or words ending in other digits set apart by a space.
surrounding = st.one_of(
    st.text(alphabet="申请人电话号码身份证卡是的，。：abc", max_size=12),
    st.from_regex(r"编号[0-9]{1,8} ", fullmatch=True),
)
separators = st.sampled_from(["", "", " ", "-", "－", "　", " - ", "\u200b", "."])


@st.composite
def disguised(draw: st.DrawFn, number: str) -> str:
    """``number`` as a person might type it: full-width, broken up, lower-case ``x``."""
    if draw(st.booleans()):
        number = number.translate(FULL_WIDTH)
    if draw(st.booleans()):
        number = number.replace("X", "x").replace("Ｘ", "ｘ")
    pieces = [number[0]]
    for char in number[1:]:
        pieces.append(draw(separators) + char)
    return draw(surrounding) + "".join(pieces) + draw(surrounding)


def _codes(record: dict[str, Any]) -> set[str]:
    return {finding.code for finding in scan_for_personal_data(record)}


def _internal_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": 7,
        "net_id": "NET20261123000001",
        "case_number": "32010000010000000001",
        "power_code": "113201000123456713XK00000000001",
        "power_name": "公路超限运输许可",
        "case_name": "张三公路超限运输许可申请",
        "applicant_type": "person",
        "applicant_name": "张三",
        "applicant_id_number": PERSON_ID,
        "status": "rejected",
        "at": "2026-11-23T10:15:00+08:00",
        "step": "受理",
        "opinion": "材料不全",
        "reasons": [
            {"code": "MATERIAL_MISSING", "path": "/materials", "message": "缺少申请书", "x": 1}
        ],
        "result": None,
        "applicant_mobile": "13812345678",
        "applicant_address": "南京市玄武区中山路1号",
        "secret": False,
        "minor": False,
    }
    event.update(changes)
    return event


# Masking


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("320102199001011234", "320102********1234"),
        ("32010219900101123X", "320102********123X"),
        ("320102900101123", "320102*****1123"),
        ("1234567890", "**********"),
        ("", ""),
    ],
)
def test_mask_id_number(raw: str, masked: str) -> None:
    assert mask_id_number(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("025-68788001", "*******8001"),
        ("110", "***"),
    ],
)
def test_mask_phone(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("张三", "张*"),
        ("王小明", "王**"),
        ("欧阳娜娜", "欧阳**"),
        ("诸葛亮", "诸葛*"),
        ("司马", "司*"),  # surname 司, given name 马
        ("李", "*"),
    ],
)
def test_mask_name_keeps_the_surname(raw: str, masked: str) -> None:
    assert mask_name(raw) == masked


def test_mask_name_leaves_organisations_alone() -> None:
    assert mask_name("南京恒通运输有限公司", "organisation") == "南京恒通运输有限公司"
    assert mask_name("张三", "unknown") == "张*"


# The public status record


def test_allow_list_is_the_status_event_schema() -> None:
    assert set(schemas.load_schema("status_event")["properties"]) == STATUS_EVENT_FIELDS


def test_public_record_keeps_only_allow_listed_fields() -> None:
    record = public_status_record(_internal_event())
    assert set(record) <= STATUS_EVENT_FIELDS
    for internal in ("applicant_mobile", "applicant_address", "secret", "minor"):
        assert internal not in record
    assert "applicant_id_number" not in record
    assert record["reasons"] == [
        {"code": "MATERIAL_MISSING", "path": "/materials", "message": "缺少申请书"}
    ]
    assert list(schemas.errors("status_event", record)) == []


def test_public_record_masks_a_person() -> None:
    record = public_status_record(_internal_event())
    assert record["applicant_name"] == "张*"
    assert record["applicant_id"] == mask_id_number(PERSON_ID)
    assert record["case_name"] == "张*公路超限运输许可申请"
    assert "张三" not in repr(record)
    assert PERSON_ID not in repr(record)


def test_public_record_shows_an_organisation() -> None:
    event = _internal_event(
        applicant_type="organisation",
        applicant_name="南京恒通运输有限公司",
        applicant_id_number=CREDIT_CODE,
    )
    record = public_status_record(event)
    assert record["applicant_name"] == "南京恒通运输有限公司"
    assert record["applicant_id"] == CREDIT_CODE


def test_an_organisation_with_a_personal_number_is_masked() -> None:
    event = _internal_event(applicant_type="organisation", applicant_id_number=PERSON_ID)
    assert public_status_record(event)["applicant_id"] == mask_id_number(PERSON_ID)


def test_public_record_is_plain_text() -> None:
    event = _internal_event(
        opinion="<script>alert(1)</script> & more",
        reasons=[{"code": "X_Y", "path": "/summary", "message": "<b>太短</b>"}],
        result={"code": 1, "note": "a<b", "finished_at": "2026-11-24", "officer": "李四"},
    )
    record = public_status_record(event)
    assert record["opinion"] == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"
    assert record["reasons"][0]["message"] == "&lt;b&gt;太短&lt;/b&gt;"
    assert record["result"] == {"code": 1, "finished_at": "2026-11-24", "note": "a&lt;b"}


def test_withheld_cases() -> None:
    assert not withheld_from_publication(_internal_event())
    assert withheld_from_publication(_internal_event(minor=True))
    assert withheld_from_publication(_internal_event(secret=True))


@given(resident_ids, st.sampled_from(["张三", "欧阳娜娜", "李小龙"]))
def test_a_published_person_passes_the_scanner(resident_id: str, name: str) -> None:
    event = _internal_event(applicant_name=name, applicant_id_number=resident_id)
    assert scan_for_personal_data(event)  # the internal row itself is caught
    assert scan_for_personal_data(public_status_record(event)) == []


# The scanner


@given(st.data(), resident_ids)
def test_a_disguised_resident_id_is_found(data: st.DataObject, resident_id: str) -> None:
    text = data.draw(disguised(resident_id))
    assert "RESIDENT_ID" in _codes({"opinion": text})


@given(st.data(), mobiles)
def test_a_disguised_mobile_is_found(data: st.DataObject, mobile: str) -> None:
    text = data.draw(disguised(mobile))
    assert "MOBILE" in _codes({"opinion": text})


@given(st.data(), bank_cards)
def test_a_disguised_bank_card_is_found(data: st.DataObject, card: str) -> None:
    assume(not is_valid_resident_id(card))
    text = data.draw(disguised(card))
    assert "BANK_CARD" in _codes({"opinion": text})


@given(resident_ids, mobiles)
def test_masked_numbers_are_not_flagged(resident_id: str, mobile: str) -> None:
    record = {
        "applicant_id": mask_id_number(resident_id),
        "opinion": f"证件 {mask_id_number(resident_id)} 电话 {mask_phone(mobile)}。",
        "phone": mask_phone(mobile),
    }
    assert scan_for_personal_data(record) == []


@given(resident_ids)
def test_findings_never_carry_the_number(resident_id: str) -> None:
    record = {"notes": [{"text": f"号码{resident_id}"}], resident_id: "as a key"}
    findings = scan_for_personal_data(record)
    masked_key = "".join("*" if c.isdigit() else c for c in resident_id)
    assert {f.path for f in findings} == {"/notes/0/text", "/" + masked_key}
    for finding in findings:
        assert resident_id not in finding.excerpt
        assert resident_id not in finding.path
        assert finding.excerpt == mask_id_number(resident_id)


def test_finding_is_frozen() -> None:
    finding = Finding("MOBILE", "/opinion", "138****5678")
    with pytest.raises(AttributeError):
        finding.code = "BANK_CARD"  # type: ignore[misc]


def test_numbers_that_are_not_personal_data_pass() -> None:
    record = {
        "case_number": "32010000010000000001",
        "net_id": "NET20261123000001",
        "at": "2026-11-23T10:15:00+08:00",
        "historic_id": "320102900101123",  # 15-digit IDs are deliberately skipped
        "phone": "025-68788001",
        "event_id": 123456,
        "amount": "1,000,000.00",
    }
    assert scan_for_personal_data(record) == []


def test_non_string_values_and_prefixes_are_scanned() -> None:
    findings = scan_for_personal_data(
        {"mobile": 13812345678, "intl": "+8613912345678", "raw": b"13712345678"}
    )
    assert [(f.code, f.path) for f in findings] == [
        ("MOBILE", "/mobile"),
        ("MOBILE", "/intl"),
        ("MOBILE", "/raw"),
    ]


def test_numbers_apart_are_each_found() -> None:
    card = "622202123456789012"
    card += _luhn_check_digit(card)
    findings = scan_for_personal_data({"opinion": f"{card}；13812345678；{PERSON_ID}"})
    assert [f.code for f in findings] == ["BANK_CARD", "MOBILE", "RESIDENT_ID"]


def test_an_id_ending_in_x_is_one_finding() -> None:
    # Its first 17 digits pass the Luhn check: no bank card may be reported inside an ID.
    findings = scan_for_personal_data({"opinion": "号码32010220050624001x"})
    assert findings == [Finding("RESIDENT_ID", "/opinion", "320102********001X")]


def test_an_organisations_credit_code_that_passes_luhn_is_not_a_bank_card() -> None:
    from rules.identifiers import org_code_check_char, uscc_check_char
    from rules.personal_data import _passes_luhn

    found = None
    for serial in range(10_000):
        org = f"{serial:08d}"
        body = "91320100" + org + org_code_check_char(org)
        if not body.isdigit():
            continue
        code = body + uscc_check_char(body)
        if code.isdigit() and _passes_luhn(code):
            found = code
            break
    assert found is not None
    assert scan_for_personal_data({"applicant_id": found}) == []
    # A credit code ending in a letter: its 17 leading digits pass the Luhn check.
    assert _passes_luhn("91320105075740521")
    assert scan_for_personal_data({"applicant_id": "91320105075740521D", "n": "南京某公司91320105075740521D"}) == []
    # The same digits with one changed are no credit code: a Luhn-valid 18-digit number is flagged.
    assert [f.code for f in scan_for_personal_data({"note": "6222021234567890128"})] == ["BANK_CARD"]


def test_a_resident_id_that_is_also_a_valid_credit_code_is_still_found() -> None:
    from rules.identifiers import is_valid_uscc

    number = "440305199701256481"
    assert is_valid_uscc(number) and is_valid_resident_id(number)
    assert [f.code for f in scan_for_personal_data({"text": f"号码{number}"})] == ["RESIDENT_ID"]


# Formatting tricks with markup (the published text is escaped, but a reader still sees
# the digits side by side)

markup = st.sampled_from(["<b>", "</b>", "<span class='x'>", "&#8203;", "&zwj;", "&amp;#8203;", "<!---->"])


@given(st.data(), resident_ids)
def test_a_resident_id_split_by_markup_is_found(data: st.DataObject, resident_id: str) -> None:
    pieces = [resident_id[0]]
    for char in resident_id[1:]:
        pieces.append(data.draw(st.one_of(st.just(""), markup)) + char)
    disguised_text = data.draw(surrounding) + "".join(pieces)
    assert "RESIDENT_ID" in _codes({"opinion": disguised_text})
    # ... and after the publication policy has escaped it.
    record = public_status_record(_internal_event(opinion=disguised_text))
    assert "RESIDENT_ID" in _codes(record)


@given(st.data(), mobiles)
def test_a_mobile_split_by_markup_is_found(data: st.DataObject, mobile: str) -> None:
    pieces = [mobile[0]] + [data.draw(st.one_of(st.just(""), markup)) + c for c in mobile[1:]]
    assert "MOBILE" in _codes({"note": "".join(pieces)})


# Minors, secrets and privacy: never published


def test_a_minor_is_a_person_under_18_at_the_decision_time() -> None:
    born = "32010220081124" + "123"
    number = born + resident_id_check_char(born)
    assert is_minor_at(number, "2026-11-23T17:00:00+08:00")
    assert not is_minor_at(number, "2026-11-24T09:00:00+08:00")  # 18th birthday
    assert is_minor_at(number.lower(), date(2026, 11, 23))
    assert not is_minor_at(PERSON_ID, "2026-11-23")
    assert not is_minor_at("not an id", "2026-11-23") and not is_minor_at(number, None)


def test_withholding_reasons() -> None:
    born = "32010220100101" + "123"
    child = born + resident_id_check_char(born)
    assert withholding_reason(_internal_event()) is None
    assert withholding_reason(_internal_event(applicant_id_number=child)) == "minor"
    assert withholding_reason(_internal_event(secret=True)) == "secret"
    assert withholding_reason(_internal_event(privacy=True)) == "privacy"
    # An organisation is never a minor, whatever its number looks like.
    assert withholding_reason(
        _internal_event(applicant_type="organisation", applicant_id_number=child)
    ) is None


# The 双公示 disclosure record


def test_the_disclosure_allow_list_is_its_schema() -> None:
    assert DISCLOSURE_FIELDS == frozenset(schemas.load_schema("disclosure_record")["properties"])
    assert ALLOWED_FIELDS == {
        "status_events": STATUS_EVENT_FIELDS,
        "disclosures": DISCLOSURE_FIELDS,
        "retractions": frozenset({"lookup", "record_ids"}),
    }


internal_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20)


@given(st.dictionaries(internal_keys, st.text(max_size=20), max_size=8), st.booleans())
def test_every_published_field_is_allow_listed(extra: dict[str, str], penalty: bool) -> None:
    event = {
        **extra,
        **_internal_event(status="decided" if penalty else "granted", agency_code="3201000001",
                          lookup="a" * 64),
        "penalty": {"penalty_kinds": ["fine"], "fine_amount": 500_000} if penalty else None,
    }
    status = public_status_record(event)
    disclosure = public_disclosure_record(event)
    assert set(status) <= STATUS_EVENT_FIELDS
    assert set(disclosure) <= DISCLOSURE_FIELDS
    assert list(schemas.errors("disclosure_record", disclosure)) == []
    assert disclosure["kind"] == ("penalty" if penalty else "licence")


def test_a_disclosure_masks_the_party_and_is_plain_text() -> None:
    record = public_disclosure_record(
        _internal_event(status="decided", agency_code="3201000001", opinion="<script>张三</script>罚款",
                        penalty={"penalty_kinds": ["warning", "fine"], "fine_amount": 1_234_500})
    )
    assert record["party_name"] == "张*"
    assert record["party_id"] == mask_id_number(PERSON_ID)
    assert record["decision"] == "&lt;script&gt;张*&lt;/script&gt;罚款"
    assert record["fine_amount"] == "12345.00" and record["penalty_kinds"] == ["警告", "罚款"]
    assert scan_for_personal_data(record) == []


def test_a_national_power_code_is_not_a_card_number() -> None:
    from rules.identifiers import org_code_check_char, uscc_check_char
    from rules.personal_data import _passes_luhn

    # Find an all-digit agency credit code whose digits pass the Luhn check, as about one
    # agency in ten has; its power codes begin with it.
    agency = next(
        code
        for serial in range(10_000)
        for body in ["12320100" + f"{serial:08d}" + org_code_check_char(f"{serial:08d}")]
        if body.isdigit()
        for code in [body + uscc_check_char(body)]
        if code.isdigit() and _passes_luhn(code)
    )
    power_code = agency + "XK" + "00000000007"
    assert scan_for_personal_data({"power_code": power_code, "note": f"事项编码{power_code}"}) == []
    # Still fail closed: a card number next to the power code is found.
    found = scan_for_personal_data({"note": f"事项编码{power_code}，卡号6222021234567890128"})
    assert [f.code for f in found] == ["BANK_CARD"]


@pytest.mark.parametrize("before, after", [("<", ">"), ("&#4", "9;"), ("<b", ">")])
def test_markup_split_over_two_fields_hides_no_number(before: str, after: str) -> None:
    """Each text is read on its own: a '<' in one field and a '>' in another must not
    make the fields between them look like one tag to the scanner's fast path."""
    person = "110105198906250006"
    record = {"a": f"公路超限运输许可{before}", "b": person, "c": f"{after}其他"}
    assert [f.code for f in scan_for_personal_data(record)] == ["RESIDENT_ID"]
    assert [f.path for f in scan_for_personal_data({"a": before, "b": {"c": person}, "d": [after]})] == ["/b/c"]


# The scanner's fast path (pre-filter, texts already found clean) against a plain reference
# that reads every text on its own, with no pre-filter and no cache.


def _reference_scan(record: dict[str, Any]) -> list[Finding]:
    from rules.personal_data import _mask_number, _numbers_in_suspect, _texts, _visible

    findings: list[Finding] = []
    for path, text in _texts(record, ""):
        for code, number in _numbers_in_suspect(_visible(text)):
            finding = Finding(code, path, _mask_number(code, number))
            if finding not in findings:
                findings.append(finding)
    return findings


# Pieces that a number can be hidden among: digits of other scripts and enclosed forms,
# separators of every kind the skeleton ignores, markup and entities (also of digits),
# capitals (a credit code between two halves of a number is blanked to one separator),
# ideographs and punctuation the skeleton treats as breaks.
tricky_pieces = st.sampled_from([
    *"0123456789", "０", "１", "３", "８", "٣", "८", "①", "⒛", "㉑", "⑴", "¹",
    " ", "-", ".", ",", "/", "_", "·", "•", "・", "、", "　", "\u200b", "\u00ad", "\u2013",
    "\u2060", "\ufeff", "\u00a0", "\t", "\n", "x", "X", "Ｘ",
    "<b>", "</b>", "<!---->", "&#8203;", "&#49;", "&#x38;", "&amp;#51;", "&nbsp;",
    "A", "M", "N", "Y", "T", ":", "+", "*", "号", "码", "申请", "㐀", "\x00",
])
tricky_texts = st.one_of(
    st.lists(tricky_pieces, max_size=40).map("".join),
    st.builds(lambda before, number, after: before + number + after,
              st.lists(tricky_pieces, max_size=6).map("".join),
              st.one_of(resident_ids, mobiles, bank_cards, st.just(CREDIT_CODE)).flatmap(disguised),
              st.lists(tricky_pieces, max_size=6).map("".join)),
)


@given(tricky_texts)
def test_the_pre_filter_never_clears_a_text_with_a_long_digit_run(text: str) -> None:
    from rules.personal_data import (
        _DIGIT_RUN,
        _FEWEST_DIGITS,
        _may_hold_number,
        _numbers_in_suspect,
        _run_skeleton,
        _visible,
    )

    visible = _visible(text)
    longest = max(
        (sum(c.isdigit() for c in run) for run in _DIGIT_RUN.findall(_run_skeleton(visible))),
        default=0,
    )
    if longest >= _FEWEST_DIGITS or any(_numbers_in_suspect(visible)):
        assert _may_hold_number(visible)


@given(st.one_of(tricky_texts, st.text(alphabet="0123456789-:T+ ", max_size=40)))
def test_the_pre_filter_starting_only_at_groups_of_digits_finds_what_starting_anywhere_finds(text: str) -> None:
    import re

    from rules.personal_data import _BETWEEN_DIGITS, _FEWEST_DIGITS, _may_hold_number, _visible

    anywhere = re.compile(rf"[0-9](?:{_BETWEEN_DIGITS}*+[0-9]){{{_FEWEST_DIGITS - 1}}}")
    visible = _visible(text)
    assert _may_hold_number(visible) == (anywhere.search(visible) is not None)


def test_the_pre_filter_joins_digits_over_every_character_the_skeleton_does() -> None:
    import re

    from rules.personal_data import _BETWEEN_DIGITS, _skeleton_char

    between = re.compile(_BETWEEN_DIGITS)
    for code in range(0x110000):
        char = chr(code)
        if _skeleton_char(char) in " X" or "A" <= char <= "Z":  # separators, X, credit codes
            assert between.fullmatch(char), hex(code)


def test_the_pre_filter_catches_numbers_split_every_way() -> None:
    from rules.identifiers import is_valid_uscc
    from rules.personal_data import _may_hold_number, _visible

    # A credit code with few digits is blanked to one separator: the digits on its two
    # sides become one mobile number, though no 11 of them stand together in the text.
    lettered_code = "91320100MA1ABQRT8C"
    assert is_valid_uscc(lettered_code)
    split_by_code = f"13 {lettered_code} 812345678"
    assert _codes({"note": split_by_code}) == {"MOBILE"}
    for text in [
        "138 1234 5678", "138-1234-5678", "１３８１２３４５６７８", "1<b>38</b>12345678",
        "13&#56;12345678", "138\u200b1234\u30005678", split_by_code,
        "⒔⒏⒓⒊⒋⒌⒍⒎⒏", f"{PERSON_ID[:9]}ＸX{PERSON_ID[9:]}",
    ]:
        assert _may_hold_number(_visible(text)), text
    for text in ["2026-11-23T10:15:00+08:00", "320102********1234", "申请1381234号5678", ""]:
        assert not _may_hold_number(_visible(text)), text


tricky_records = st.recursive(
    st.one_of(tricky_texts, st.integers(), st.none(), st.booleans()),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(tricky_texts, st.sampled_from(["opinion", "note"])), children,
                        max_size=4),
    ),
    max_leaves=12,
)


@given(tricky_records)
def test_the_fast_path_collects_the_same_texts(record: Any) -> None:
    from rules.personal_data import _collect_values, _texts

    values: list[str] = []
    _collect_values(record, values)
    assert values == [text for _, text in _texts(record, "")]


@given(st.dictionaries(st.sampled_from(["opinion", "note", "at", "case_name"]), tricky_records,
                       max_size=4))
def test_the_fast_path_finds_what_reading_every_text_finds(record: dict[str, Any]) -> None:
    expected = _reference_scan(record)
    assert scan_for_personal_data(record) == expected
    assert scan_for_personal_data(record) == expected  # texts now known clean, if it was
    # Each text on its own first (those found clean are remembered), then together.
    for key, value in record.items():
        scan_for_personal_data({key: value})
    assert scan_for_personal_data(record) == expected


def test_a_number_next_to_texts_already_found_clean_is_found() -> None:
    clean = _internal_event(applicant_type="organisation", applicant_name="南京某公司",
                            applicant_id_number=CREDIT_CODE)
    public = public_status_record(clean)
    assert scan_for_personal_data(public) == []
    assert scan_for_personal_data(public) == []
    assert _codes({**public, "opinion": "电话13812345678"}) == {"MOBILE"}
    # The same number split over two texts seen clean on their own is no number at all.
    assert scan_for_personal_data({"a": "138123", "b": "45678"}) == []


def test_texts_found_clean_are_remembered_within_bounds() -> None:
    from rules.personal_data import _CleanTexts

    clean = _CleanTexts(4)
    for start in range(0, 40, 3):
        clean.add([str(n) for n in range(start, start + 3)])
        assert len(clean.recent) < 4 and len(clean.older) < 4 + 3
    assert "39" in clean.recent | clean.older and "0" not in clean.recent | clean.older


# Values the copied fields of a status record can hold: text with markup, entities and the
# party's name in it, numbers, None, and the odd other type (dates, nested lists and maps).
copied_values = st.one_of(
    st.text(alphabet="张三欧阳娜<>&;#a1 申请", max_size=12),
    st.integers(), st.floats(allow_nan=False), st.none(), st.booleans(),
    st.dates(),
    st.lists(st.text(alphabet="张三<&1", max_size=4), max_size=3),
    st.dictionaries(st.sampled_from(["a", "张三"]), st.text(alphabet="张三<&", max_size=4), max_size=2),
)


@given(st.dictionaries(st.sampled_from(["case_name", "opinion", "step", "status", "at", "event_id",
                                        "power_name", "net_id"]), copied_values),
       st.sampled_from(["张三", "欧阳娜娜", "南京某公司", None]), st.sampled_from(["person", "organisation"]))
def test_copied_fields_are_the_plain_text_of_each_value(
    fields: dict[str, Any], name: str | None, party_type: str
) -> None:
    """``public_status_record`` copies most fields with ``_plain_text`` inlined for the common
    types: the same values as ``_plain_text`` field by field."""
    from rules.publication import _COPIED_FIELDS, _plain_text

    event = {**fields, "applicant_name": name, "applicant_type": party_type}
    masked = None if name is None else mask_name(name, party_type)
    hidden = {name: masked} if masked is not None and len(masked) > 1 and masked != name else {}
    record = public_status_record(event)
    expected = {f: _plain_text(event[f], hidden) for f in _COPIED_FIELDS if f in event}
    assert {f: record[f] for f in _COPIED_FIELDS if f in record} == expected
    assert all(type(record[f]) is type(expected[f]) for f in expected)


@given(st.one_of(resident_ids, st.just(CREDIT_CODE), st.text(alphabet="0123456789X－ ", max_size=20)),
       st.sampled_from(["person", "organisation"]))
def test_the_cached_applicant_number_is_the_masking_rule(number: str, party_type: str) -> None:
    from rules.identifiers import is_valid_org_code, is_valid_uscc
    from rules.publication import _public_applicant_id

    public = number if party_type == "organisation" and (
        is_valid_uscc(number) or is_valid_org_code(number)) else mask_id_number(number)
    assert _public_applicant_id(number, party_type) == public
    assert _public_applicant_id(number, party_type) == public  # from the cache
