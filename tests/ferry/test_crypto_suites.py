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


@pytest.mark.parametrize(
    ("name", "hash_name", "empty", "abc"),
    [
        # FIPS 180-2 appendix B.1 ("abc") and the well-known digest of the empty string.
        (
            "intl",
            "SHA-256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        # GB/T 32905-2016 appendix A.1 ("abc"); the empty string as OpenSSL and gmssl give it.
        (
            "gm",
            "SM3",
            "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b",
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
        ),
    ],
)
def test_suite_hash_is_its_named_digest(name: str, hash_name: str, empty: str, abc: str) -> None:
    crypto = get_suite(name)
    assert crypto.hash_name == hash_name
    assert crypto.hash(b"").hex() == empty
    assert crypto.hash(b"abc").hex() == abc
    assert len(crypto.hash(b"x" * 1000)) == 32
