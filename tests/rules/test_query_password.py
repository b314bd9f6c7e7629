"""Query passwords and the lookup names of public status documents."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from rules.publication import scan_for_personal_data
from rules.query_password import (
    PASSWORD_ALPHABET,
    PASSWORD_LENGTH,
    QUERY_KDF_ITERATIONS,
    generate_query_password,
    kdf_parameters,
    lookup_name,
)

CASE = "32010000010000000042"


def test_passwords_are_random_and_unambiguous() -> None:
    passwords = {generate_query_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == PASSWORD_LENGTH and set(p) <= set(PASSWORD_ALPHABET) for p in passwords)
    assert not set("01258BILOSZ") & set(PASSWORD_ALPHABET)


def test_lookup_name_is_pbkdf2_sha256_salted_with_the_case_number() -> None:
    bits = hashlib.pbkdf2_hmac("sha256", b"3467ACDE", ("pehub-status-v1|" + CASE).encode(), QUERY_KDF_ITERATIONS, 32)
    expected = "".join("abcdefghijklmnop"[b >> 4] + "abcdefghijklmnop"[b & 15] for b in bits)
    assert lookup_name(CASE, "3467ACDE") == expected
    assert lookup_name(CASE, " 3467acde ") == expected  # typed in lower case, with spaces
    assert lookup_name(CASE, "3467ACDF") != expected
    assert lookup_name("32010000010000000043", "3467ACDE") != expected
    assert kdf_parameters()["iterations"] == QUERY_KDF_ITERATIONS


@given(st.text(alphabet=PASSWORD_ALPHABET, min_size=8, max_size=8))
def test_a_lookup_name_never_looks_like_personal_data(password: str) -> None:
    name = lookup_name(CASE, password, iterations=1)
    assert re.fullmatch(r"[a-p]{64}", name)
    assert scan_for_personal_data({"lookup": name}) == []
