"""Sealing of public status records: the key comes with the lookup name from one derivation,
opens only what was sealed for that name, event and purpose, and seals the same text to the
same bytes (a rebuilt bundle is byte-identical)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.query_password import (
    PASSWORD_ALPHABET,
    lookup_bytes,
    lookup_from_bytes,
    lookup_name,
    status_keys,
)
from rules.status_seal import EVENT_PURPOSE, LEAF_PURPOSE, SealBroken, Sealer

CASE = "32010000010000000042"
PASSWORD = "3467ACDEFGHJ"


def test_the_key_is_the_second_block_of_the_lookup_names_derivation() -> None:
    lookup, key = status_keys(CASE, PASSWORD)
    assert lookup == lookup_name(CASE, PASSWORD)
    bits = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), ("pehub-status-v2|" + CASE).encode(), 16, 64)
    assert key == bits[32:] and lookup_bytes(lookup) == bits[:32]
    # The first scheme's passwords (8 characters) derive their key the same way.
    legacy_lookup, legacy_key = status_keys(CASE, "3467ACDE", iterations=3)
    assert legacy_lookup == lookup_name(CASE, "3467ACDE", iterations=3) and len(legacy_key) == 32
    assert legacy_key != key


@settings(max_examples=50)
@given(st.text(PASSWORD_ALPHABET, min_size=12, max_size=12))
def test_the_name_never_gives_the_key(password: str) -> None:
    lookup, key = status_keys(CASE, password, iterations=1)
    assert lookup_from_bytes(lookup_bytes(lookup)) == lookup
    assert key not in (lookup_bytes(lookup), hashlib.sha256(lookup_bytes(lookup)).digest())


def test_sealed_bytes_open_only_for_their_name_event_and_purpose() -> None:
    lookup, key = status_keys(CASE, PASSWORD)
    sealer = Sealer(key, lookup)
    plain = '{"status":"accepted","applicant_name":"张**"}'.encode()
    sealed = sealer.seal(7, plain)
    assert sealed == sealer.seal(7, plain)  # derived nonce: a rebuild gives the same bytes
    assert plain not in sealed and len(sealed) == len(plain) + 16
    assert sealer.open(7, sealed) == plain
    with pytest.raises(SealBroken):
        sealer.open(8, sealed)  # moved to another event
    with pytest.raises(SealBroken):
        sealer.open(7, sealed, LEAF_PURPOSE)  # passed off as an audit leaf
    other_lookup, _ = status_keys("32010000010000000043", PASSWORD)
    with pytest.raises(SealBroken):
        Sealer(key, other_lookup).open(7, sealed)  # moved to another document
    with pytest.raises(SealBroken):
        Sealer(status_keys(CASE, "3467ACDEFGHK")[1], lookup).open(7, sealed)  # another password
    with pytest.raises(SealBroken):
        sealer.open(7, sealed[:-1] + bytes([sealed[-1] ^ 1]))  # one bit changed
    # The two purposes never share a nonce: the same text seals differently as a leaf.
    assert sealer.seal(7, plain, LEAF_PURPOSE) != sealer.seal(7, plain, EVENT_PURPOSE)


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short", "a" * 64)
