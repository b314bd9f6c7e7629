"""Check digits of resident IDs, credit codes and organisation codes."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rules.identifiers import (
    USCC_ALPHABET,
    is_valid_org_code,
    is_valid_resident_id,
    is_valid_uscc,
    org_code_check_char,
    resident_id_birth_date,
    resident_id_check_char,
    uscc_check_char,
)

births = st.dates(min_value=date(1920, 1, 1), max_value=date(2025, 12, 31))
areas = st.sampled_from(["110101", "320102", "320106", "440305", "510104"])
serials = st.integers(min_value=0, max_value=999).map(lambda n: f"{n:03d}")


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    body = draw(areas) + draw(births).strftime("%Y%m%d") + draw(serials)
    return body + resident_id_check_char(body)


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    org_body = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=8, max_size=8)))
    head = draw(st.sampled_from(["11", "12", "51", "52", "91", "92", "93"])) + draw(areas)
    body = head + org_body + org_code_check_char(org_body)
    if any(c not in USCC_ALPHABET for c in body):
        body = head + org_body + "0"
    return body + uscc_check_char(body)


def test_published_examples() -> None:
    # GB 11643 worked example and a widely cited real credit code.
    assert is_valid_resident_id("11010519491231002X")
    assert is_valid_uscc("91350100M000100Y43")
    assert is_valid_org_code("M000100Y4")
    assert is_valid_org_code("M000100Y-4")


@given(resident_ids())
def test_generated_resident_ids_pass(number: str) -> None:
    assert is_valid_resident_id(number)


@given(resident_ids(), st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
def test_any_single_character_change_of_a_resident_id_fails(number: str, position: int, char: str) -> None:
    changed = number[:position] + char + number[position + 1 :]
    if changed != number:
        assert not is_valid_resident_id(changed)


def test_resident_id_needs_a_real_birth_date() -> None:
    body = "32010219990230123"  # 30 February
    assert not is_valid_resident_id(body + resident_id_check_char(body))
    assert resident_id_birth_date(body + "0") is None


def test_historic_15_digit_ids_only_when_allowed() -> None:
    assert not is_valid_resident_id("320102880101123")
    assert is_valid_resident_id("320102880101123", allow_15=True)
    assert not is_valid_resident_id("320102881301123", allow_15=True)  # month 13


def test_lower_case_x_is_not_the_check_character() -> None:
    assert not is_valid_resident_id("11010519491231002x")


@given(credit_codes())
def test_generated_credit_codes_pass(code: str) -> None:
    assert is_valid_uscc(code)


@given(credit_codes(), st.integers(min_value=0, max_value=17), st.sampled_from(USCC_ALPHABET))
def test_any_single_character_change_of_a_credit_code_fails(code: str, position: int, char: str) -> None:
    changed = code[:position] + char + code[position + 1 :]
    if changed != code:
        assert not is_valid_uscc(changed)


@given(st.text(alphabet="0123456789", min_size=8, max_size=8), st.integers(0, 7), st.sampled_from("0123456789"))
def test_organisation_code_detects_any_digit_change(body: str, position: int, digit: str) -> None:
    code = body + org_code_check_char(body)
    assert is_valid_org_code(code)
    changed = code[:position] + digit + code[position + 1 :]
    if changed != code:
        assert not is_valid_org_code(changed)


def test_adult_birth_dates_round_trip() -> None:
    born = date(2000, 1, 1) + timedelta(days=100)
    body = "320102" + born.strftime("%Y%m%d") + "123"
    assert resident_id_birth_date(body + resident_id_check_char(body)) == born


def test_a_net_id_is_checked_against_the_application_schema_form() -> None:
    from rules.identifiers import net_id_format_error

    assert net_id_format_error("NET20261121000001") is None
    assert net_id_format_error("NET20261121ABCDEF123456") is None
    for malformed in ("", "NET2026112100001", "net20261121000001", "NET20261121000001 ", "32010000010000000001",
                      "NET2026112100000X1234567"):
        message = net_id_format_error(malformed)
        assert message is not None and "is not a NET_ID" in message and "NET20261121000001" in message, malformed
