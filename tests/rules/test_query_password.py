"""Query passwords and the lookup names of public status documents."""

from __future__ import annotations

import hashlib
import re
import struct
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.personal_data import scan_for_personal_data
from rules.query_password import (
    LEGACY_KDF_ITERATIONS,
    PASSWORD_ALPHABET,
    PASSWORD_LENGTH,
    QUERY_KDF_ITERATIONS,
    format_query_password,
    generate_query_password,
    generate_query_passwords,
    kdf_parameters,
    lookup_name,
)

CASE = "32010000010000000042"


def _letters(bits: bytes) -> str:
    return "".join("abcdefghijklmnop"[b >> 4] + "abcdefghijklmnop"[b & 15] for b in bits)


def test_passwords_are_random_and_unambiguous() -> None:
    passwords = {generate_query_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == PASSWORD_LENGTH == 12 and set(p) <= set(PASSWORD_ALPHABET) for p in passwords)
    assert not set("01258BILOSZ") & set(PASSWORD_ALPHABET)


def test_every_character_of_the_alphabet_is_equally_likely_in_every_position() -> None:
    counts = Counter(c for _ in range(4000) for c in generate_query_password())
    expected = 4000 * PASSWORD_LENGTH / len(PASSWORD_ALPHABET)  # 1,920 each
    assert set(counts) == set(PASSWORD_ALPHABET)
    assert all(abs(n - expected) < 0.15 * expected for n in counts.values())  # > 6 sigma
    first = Counter(generate_query_password()[0] for _ in range(5000))
    assert len(first) == len(PASSWORD_ALPHABET)



def test_a_batch_of_passwords_is_as_uniform_in_every_position() -> None:
    batch = generate_query_passwords(5000)
    assert len(batch) == len(set(batch)) == 5000
    expected = 5000 / len(PASSWORD_ALPHABET)  # 200 each
    for position in range(PASSWORD_LENGTH):
        counts = Counter(p[position] for p in batch)
        assert set(counts) == set(PASSWORD_ALPHABET)
        assert all(abs(n - expected) < 0.45 * expected for n in counts.values())  # > 6 sigma


@given(st.integers(min_value=0, max_value=len(PASSWORD_ALPHABET) ** PASSWORD_LENGTH - 1))
def test_a_draw_is_spelled_digit_by_digit_lowest_first(draw: int) -> None:
    from rules.query_password import _spelled

    digits, rest = [], draw
    for _ in range(PASSWORD_LENGTH):
        rest, index = divmod(rest, len(PASSWORD_ALPHABET))
        digits.append(PASSWORD_ALPHABET[index])
    assert _spelled(draw) == "".join(digits)


def test_draws_above_the_unbiased_bound_are_dropped_and_made_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from rules import query_password
    from rules.query_password import _CANDIDATES, _UNBIASED_BOUND

    reads: list[int] = []
    draws = iter([[_UNBIASED_BOUND, 5, 2**64 - 1, _CANDIDATES + 7], [_UNBIASED_BOUND - 1, 9]])

    def token_bytes(size: int) -> bytes:
        reads.append(size)
        chosen = next(draws)
        assert size == 8 * len(chosen)
        return struct.pack(f">{len(chosen)}Q", *chosen)

    monkeypatch.setattr(query_password.secrets, "token_bytes", token_bytes)
    passwords = generate_query_passwords(4)
    assert reads == [32, 16]  # one read for the batch, one for the two dropped draws
    spelled = query_password._spelled
    assert passwords == [spelled(5), spelled(7), spelled((_UNBIASED_BOUND - 1) % _CANDIDATES), spelled(9)]

def test_the_password_outweighs_the_former_scheme_against_guessing() -> None:
    """Work per case for an attacker: candidates times iterations, in bits."""
    import math

    now = math.log2(len(PASSWORD_ALPHABET) ** PASSWORD_LENGTH * QUERY_KDF_ITERATIONS)
    before = math.log2(len(PASSWORD_ALPHABET) ** 8 * LEGACY_KDF_ITERATIONS)
    assert now >= before + 8


def test_lookup_name_is_pbkdf2_sha256_salted_with_the_case_number() -> None:
    bits = hashlib.pbkdf2_hmac("sha256", b"3467ACDEFGHJ", ("pehub-status-v2|" + CASE).encode(), QUERY_KDF_ITERATIONS, 32)
    expected = _letters(bits)
    assert lookup_name(CASE, "3467ACDEFGHJ") == expected
    assert lookup_name(CASE, " 3467acdefghj ") == expected  # typed in lower case, with spaces
    assert lookup_name(CASE, "3467-ACDE-FGHJ") == expected  # as handed over, in groups
    assert lookup_name(CASE, "3467ACDEFGHK") != expected
    assert lookup_name("32010000010000000043", "3467ACDEFGHJ") != expected
    assert kdf_parameters()["iterations"] == QUERY_KDF_ITERATIONS


def test_a_password_of_the_first_scheme_keeps_its_name() -> None:
    bits = hashlib.pbkdf2_hmac("sha256", b"3467ACDE", ("pehub-status-v1|" + CASE).encode(), 20_000, 32)
    assert lookup_name(CASE, "3467acde") == _letters(bits)
    legacy = kdf_parameters()["legacy"]
    assert legacy == {"password_length": 8, "iterations": 20_000, "salt_prefix": "pehub-status-v1|"}


def test_the_password_is_handed_over_in_groups_of_four() -> None:
    assert format_query_password("3467ACDEFGHJ") == "3467-ACDE-FGHJ"
    assert format_query_password("3467-acde fghj") == "3467-ACDE-FGHJ"


@given(st.text(alphabet=PASSWORD_ALPHABET, min_size=12, max_size=12))
def test_a_lookup_name_never_looks_like_personal_data(password: str) -> None:
    name = lookup_name(CASE, password, iterations=1)
    assert re.fullmatch(r"[a-p]{64}", name)
    assert scan_for_personal_data({"lookup": name}) == []
