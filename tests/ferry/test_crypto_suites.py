"""Crypto suites: Ed25519 signing, key ids, and a verify that never raises."""

from __future__ import annotations

import hashlib

import pytest

from ferry.suites import SUITES, CryptoSuite, IntlSuite, get_suite
from schemas.exceptions import TerminalError


@pytest.fixture
def suite() -> CryptoSuite:
    return get_suite("intl")


def test_registry_holds_the_international_suite() -> None:
    assert isinstance(SUITES["intl"], IntlSuite)
    assert get_suite("intl") is SUITES["intl"]


def test_unknown_suite_is_terminal() -> None:
    with pytest.raises(TerminalError, match="unknown crypto suite 'sm-national'"):
        get_suite("sm-national")


def test_sign_then_verify(suite: CryptoSuite) -> None:
    private = suite.generate_signing_key()
    public = suite.public_key(private)
    signature = suite.sign(private, b"manifest bytes")
    assert len(private) == 32 and len(public) == 32 and len(signature) == 64
    assert suite.verify(public, signature, b"manifest bytes")
    assert not suite.verify(public, signature, b"manifest bytes!")


def test_signatures_are_deterministic(suite: CryptoSuite) -> None:
    private = suite.generate_signing_key()
    assert suite.sign(private, b"x") == suite.sign(private, b"x")


def test_other_key_does_not_verify(suite: CryptoSuite) -> None:
    signer, other = suite.generate_signing_key(), suite.generate_signing_key()
    signature = suite.sign(signer, b"data")
    assert not suite.verify(suite.public_key(other), signature, b"data")


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (b"", b""),
        (b"\x00" * 31, b"\x00" * 64),
        (b"\x00" * 32, b"\x00" * 63),
        (b"\xff" * 32, b"\xff" * 64),
        (b"\x00" * 33, b"\x00" * 65),
        ("not bytes", "not bytes"),
    ],
)
def test_verify_returns_false_on_malformed_input(
    suite: CryptoSuite, public: bytes, signature: bytes
) -> None:
    assert suite.verify(public, signature, b"data") is False


def test_key_id_is_suite_and_sha256_prefix(suite: CryptoSuite) -> None:
    public = suite.public_key(suite.generate_signing_key())
    assert suite.key_id(public) == "intl:" + hashlib.sha256(public).hexdigest()[:16]


def test_bad_private_key_is_terminal_and_not_echoed(suite: CryptoSuite) -> None:
    secret = b"\x5a" * 31
    with pytest.raises(TerminalError) as raised:
        suite.sign(secret, b"data")
    assert secret.hex() not in str(raised.value)
    assert repr(secret) not in str(raised.value)
