"""Named crypto suites: each zone signs with one suite, and receivers look suites up by name.

Only signing is defined so far. Payload encryption and the national suite (SM2, SM3,
SM4) are added later as further methods and a further entry in :data:`SUITES`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ferry.errors import TerminalError


class CryptoSuite(ABC):
    """The algorithms one deployment uses; keys travel as raw bytes."""

    name: ClassVar[str]

    @abstractmethod
    def generate_signing_key(self) -> bytes:
        """A new raw private signing key."""

    @abstractmethod
    def public_key(self, private_raw: bytes) -> bytes:
        """The raw public key of ``private_raw``; TerminalError if it is not a valid key."""

    @abstractmethod
    def sign(self, private_raw: bytes, data: bytes) -> bytes:
        """Signature of ``data``; TerminalError if ``private_raw`` is not a valid key."""

    @abstractmethod
    def verify(self, public_raw: bytes, signature: bytes, data: bytes) -> bool:
        """True only for a valid signature; any malformed input gives False, never an error."""

    def key_id(self, public_raw: bytes) -> str:
        """``<suite>:<first 16 hex digits of SHA-256(public key)>``."""
        return f"{self.name}:{hashlib.sha256(public_raw).hexdigest()[:16]}"


class IntlSuite(CryptoSuite):
    """The default international suite: Ed25519 signatures, SHA-256 digests."""

    name: ClassVar[str] = "intl"

    def generate_signing_key(self) -> bytes:
        return Ed25519PrivateKey.generate().private_bytes_raw()

    def public_key(self, private_raw: bytes) -> bytes:
        return _ed25519_private(private_raw).public_key().public_bytes_raw()

    def sign(self, private_raw: bytes, data: bytes) -> bytes:
        return _ed25519_private(private_raw).sign(data)

    def verify(self, public_raw: bytes, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def _ed25519_private(private_raw: bytes) -> Ed25519PrivateKey:
    try:
        return Ed25519PrivateKey.from_private_bytes(private_raw)
    except (ValueError, TypeError):
        # Never echo the key material itself.
        raise TerminalError("not a valid Ed25519 private key") from None


SUITES: dict[str, CryptoSuite] = {IntlSuite.name: IntlSuite()}


def get_suite(name: str) -> CryptoSuite:
    """The registered suite called ``name``; TerminalError for an unknown name."""
    try:
        return SUITES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(SUITES))
        raise TerminalError(f"unknown crypto suite {name!r}; known suites: {known}") from None
