"""Check digits of Chinese identifiers: resident ID (GB 11643), unified social credit
code (GB 32100) and organisation code (GB 11714)."""

from __future__ import annotations

from datetime import date
from operator import mul

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK = "10X98765432"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Character values by lookup and membership by set: every organisation applicant's code is
# checked on publication (and blanked by the scanner), where ``str.index`` in a generator
# was most of the time.
_USCC_VALUES = {char: value for value, char in enumerate(USCC_ALPHABET)}
_USCC_CHARS = frozenset(USCC_ALPHABET)
_ORG_CODE_VALUES = {char: value for value, char in enumerate(ORG_CODE_ALPHABET)}
_ORG_CODE_CHARS = frozenset(ORG_CODE_ALPHABET)


def resident_id_check_char(first17: str) -> str:
    """The 18th character of a resident ID (居民身份证号码) for its first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("a resident ID body is 17 ASCII digits")
    return RESIDENT_ID_CHECK[resident_id_weighted_sum(first17)]


def resident_id_weighted_sum(first17: str) -> int:
    """The GB 11643 weighted sum mod 11 of 17 ASCII digits (not checked here).

    The weights are 2**(17-i) mod 11, and 13 ≡ 2 (mod 11), so the sum is twice the
    digits read as a base-13 number, mod 11: one C-level ``int`` call instead of a loop.
    """
    return 2 * int(first17, 13) % 11


def resident_id_birth_date(number: str) -> date | None:
    """The date of birth in an 18- or 15-digit resident ID, or None if it is no real date."""
    if len(number) == 18:
        text = number[6:14]
    elif len(number) == 15:
        text = "19" + number[6:12]
    else:
        return None
    if not text.isascii() or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def is_valid_resident_id(number: str, *, allow_15: bool = False) -> bool:
    """True for an 18-character ID with a correct check character and a real birth date.

    Historic 15-digit IDs (no check character, two-digit year) pass only with ``allow_15``.
    """
    if len(number) == 15:
        return allow_15 and number.isascii() and number.isdigit() and (
            resident_id_birth_date(number) is not None
        )
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    if resident_id_check_char(number[:17]) != number[17]:
        return False
    born = resident_id_birth_date(number)
    return born is not None and date(1900, 1, 1) <= born


def org_code_check_char(first8: str) -> str:
    """The 9th character of an organisation code (组织机构代码) for its first 8."""
    if len(first8) != 8 or not _ORG_CODE_CHARS.issuperset(first8):
        raise ValueError("an organisation code body is 8 characters of 0-9A-Z")
    total = sum(map(mul, map(_ORG_CODE_VALUES.__getitem__, first8), ORG_CODE_WEIGHTS))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def is_valid_org_code(code: str) -> bool:
    """True for a 9-character organisation code with a correct check character.

    The common written form ``XXXXXXXX-X`` is accepted too.
    """
    if len(code) == 10 and code[8] == "-":
        code = code[:8] + code[9]
    if len(code) != 9 or not _ORG_CODE_CHARS.issuperset(code[:8]):
        return False
    return org_code_check_char(code[:8]) == code[8]


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code (统一社会信用代码)."""
    if len(first17) != 17 or not _USCC_CHARS.issuperset(first17):
        raise ValueError("a credit code body is 17 characters of the GB 32100 alphabet")
    total = sum(map(mul, map(_USCC_VALUES.__getitem__, first17), USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """True for an 18-character credit code whose check character and embedded
    organisation code (characters 9-17) are both correct."""
    if len(code) != 18 or not _USCC_CHARS.issuperset(code):
        return False
    return uscc_check_char(code[:17]) == code[17] and is_valid_org_code(code[8:17])


def net_id_format_error(net_id: str) -> str | None:
    """Why ``net_id`` is not an internet registration id (NET_ID), or None when it has the
    form the application schema requires: ``NET``, the 8-digit submission date, then 6 to 12
    digits or capital letters (e.g. ``NET20261121000001``)."""
    import re

    from schemas import load_schema

    pattern = load_schema("application")["properties"]["net_id"]["pattern"]
    if re.fullmatch(pattern, net_id):
        return None
    return (
        f"{net_id!r} is not a NET_ID: it must be 'NET', the 8-digit submission date (YYYYMMDD), "
        "then 6 to 12 digits or capital letters, e.g. NET20261121000001"
    )


def is_case_number(text: str) -> bool:
    """Whether ``text`` has the form of a case number (办件流水号): the 10-character agency
    code and a 10-digit sequence (DOMAIN "Identifiers")."""
    import re

    return re.fullmatch(r"[0-9A-Z]{10}[0-9]{10}", text) is not None


def identifier_valid(id_type: object, number: object) -> bool:
    """Whether a party's document number passes its check digit (resident ID, unified
    social credit code, organisation code; types without one, such as passports, pass)."""
    if not isinstance(number, str) or not number:
        return False
    if id_type == "resident_id":
        return is_valid_resident_id(number)
    if id_type == "uscc":
        return is_valid_uscc(number)
    if id_type == "org_code":
        return is_valid_org_code(number)
    return True
