"""Named crypto suites: each zone signs and encrypts with one suite, looked up by name.

A suite bundles the algorithms of one deployment behind one interface: deterministic
signatures over the manifest, a static key-agreement key pair per zone (the receiver's
"encryption key"), a deterministic ephemeral key for each bundle, a KDF and a segment
AEAD. ``intl`` uses Ed25519, X25519, HKDF-SHA-256 and AES-256-GCM (all from
``cryptography``); ``gm`` (国密) uses SM2 with SM3 (signatures with a deterministic k,
and SM2's public-key-encryption key derivation as the key agreement), HKDF-HMAC-SM3 and
SM4-GCM (SM3 and SM4 from ``cryptography``/OpenSSL, SM2 point arithmetic from ``gmssl``).
See docs/ferry.md, "Crypto suites", for why each choice is what it is.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from schemas.exceptions import TerminalError

AEAD_TAG_BYTES = 16
AEAD_NONCE_BYTES = 12


class DecryptionFailed(Exception):
    """An AEAD tag or a key agreement did not verify (the bytes were not what was sealed)."""


class CryptoSuite(ABC):
    """The algorithms one deployment uses; keys travel as raw bytes."""

    name: ClassVar[str]
    aead_key_bytes: ClassVar[int]
    hash_name: ClassVar[str]

    # -- hash --------------------------------------------------------------------------
    @abstractmethod
    def hash(self, data: bytes) -> bytes:
        """The suite's 32-byte message digest of ``data`` (the audit log's tree hash)."""

    # -- signatures --------------------------------------------------------------------
    @abstractmethod
    def generate_signing_key(self) -> bytes:
        """A new raw private signing key."""

    @abstractmethod
    def public_key(self, private_raw: bytes) -> bytes:
        """The raw public key of ``private_raw``; TerminalError if it is not a valid key."""

    @abstractmethod
    def sign(self, private_raw: bytes, data: bytes) -> bytes:
        """Deterministic signature of ``data``; TerminalError if the key is not valid."""

    @abstractmethod
    def verify(self, public_raw: bytes, signature: bytes, data: bytes) -> bool:
        """True only for a valid signature; any malformed input gives False, never an error."""

    # -- key agreement -----------------------------------------------------------------
    @abstractmethod
    def generate_agreement_key(self) -> bytes:
        """A new raw private key-agreement (encryption) key."""

    @abstractmethod
    def agreement_private_from_seed(self, seed: bytes) -> bytes:
        """A valid private agreement key derived deterministically from 64 seed bytes."""

    @abstractmethod
    def agreement_public_key(self, private_raw: bytes) -> bytes:
        """The raw public agreement key of ``private_raw``; TerminalError if invalid."""

    @abstractmethod
    def agree(self, private_raw: bytes, peer_public: bytes) -> bytes:
        """The shared secret of ``private_raw`` and ``peer_public``; DecryptionFailed if the
        peer key is not a valid public key (or gives a degenerate secret)."""

    # -- symmetric ---------------------------------------------------------------------
    @abstractmethod
    def kdf(self, secret: bytes, info: bytes, length: int) -> bytes:
        """HKDF (RFC 5869, no salt) with the suite's hash."""

    @abstractmethod
    def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """AEAD encryption: ciphertext followed by a 16-byte tag."""

    @abstractmethod
    def open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        """AEAD decryption; DecryptionFailed when the tag does not verify."""

    def key_id(self, public_raw: bytes) -> str:
        """``<suite>:<first 16 hex digits of SHA-256(public key)>``."""
        return f"{self.name}:{hashlib.sha256(public_raw).hexdigest()[:16]}"


class IntlSuite(CryptoSuite):
    """The default international suite: Ed25519, X25519, HKDF-SHA-256, AES-256-GCM."""

    name: ClassVar[str] = "intl"
    aead_key_bytes: ClassVar[int] = 32
    hash_name: ClassVar[str] = "SHA-256"

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def generate_signing_key(self) -> bytes:
        return Ed25519PrivateKey.generate().private_bytes_raw()

    def public_key(self, private_raw: bytes) -> bytes:
        return _ed25519_private(private_raw).public_key().public_bytes_raw()

    def sign(self, private_raw: bytes, data: bytes) -> bytes:
        # Ed25519 signatures are deterministic (RFC 8032).
        return _ed25519_private(private_raw).sign(data)

    def verify(self, public_raw: bytes, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def generate_agreement_key(self) -> bytes:
        return X25519PrivateKey.generate().private_bytes_raw()

    def agreement_private_from_seed(self, seed: bytes) -> bytes:
        # Any 32 bytes are a valid X25519 private key (clamped by the algorithm).
        return seed[:32]

    def agreement_public_key(self, private_raw: bytes) -> bytes:
        return _x25519_private(private_raw).public_key().public_bytes_raw()

    def agree(self, private_raw: bytes, peer_public: bytes) -> bytes:
        try:
            peer = X25519PublicKey.from_public_bytes(peer_public)
            shared = _x25519_private(private_raw).exchange(peer)
        except (ValueError, TypeError):
            raise DecryptionFailed("X25519 key agreement failed") from None
        return shared

    def kdf(self, secret: bytes, info: bytes, length: int) -> bytes:
        return HKDF(hashes.SHA256(), length, None, info).derive(secret)

    def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return AESGCM(key).encrypt(nonce, plaintext, aad)

    def open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(key).decrypt(nonce, sealed, aad)
        except (InvalidTag, ValueError):
            raise DecryptionFailed("AES-256-GCM tag does not verify") from None


def _ed25519_private(private_raw: bytes) -> Ed25519PrivateKey:
    try:
        return Ed25519PrivateKey.from_private_bytes(private_raw)
    except (ValueError, TypeError):
        # Never echo the key material itself.
        raise TerminalError("not a valid Ed25519 private key") from None


def _x25519_private(private_raw: bytes) -> X25519PrivateKey:
    try:
        return X25519PrivateKey.from_private_bytes(private_raw)
    except (ValueError, TypeError):
        raise TerminalError("not a valid X25519 private key") from None


# --------------------------------------------------------------------------------------
# SM2 / SM3 / SM4
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sm2Curve:
    """Domain parameters of an SM2 curve y² = x³ + ax + b over F_p with generator G of order n."""

    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    def ecc_table(self) -> dict[str, str]:
        """The parameter table in the form ``gmssl.sm2.CryptSM2`` takes."""
        return {
            "n": f"{self.n:064x}",
            "p": f"{self.p:064x}",
            "g": f"{self.gx:064x}{self.gy:064x}",
            "a": f"{self.a:064x}",
            "b": f"{self.b:064x}",
        }

    def on_curve(self, x: int, y: int) -> bool:
        return (
            0 <= x < self.p
            and 0 <= y < self.p
            and (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0
        )


# The recommended curve sm2p256v1 of GB/T 32918.5-2017 (GM/T 0003.5-2012).
SM2P256V1 = Sm2Curve(
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
)

# The default user identity of GB/T 35276-2017 (used in Z_A when none is agreed).
SM2_DEFAULT_ID = b"1234567812345678"


def sm3(data: bytes) -> bytes:
    """SM3 digest (GB/T 32905), from OpenSSL through ``cryptography``."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm3_hmac(key: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hmac as crypto_hmac

    mac = crypto_hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


def sm2_kdf(z: bytes, length: int) -> bytes:
    """The key derivation function of GB/T 32918.4 §5.4.3 (SM3, 32-bit big-endian counter)."""
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:length])


class Sm2:
    """SM2 over one curve: scalar multiplication from gmssl, everything else here.

    gmssl's ``sign`` takes the per-signature k as an argument, which is what lets the
    bundle signature be deterministic (k derived below) and lets the tests reproduce the
    standard's example with its fixed k.
    """

    def __init__(self, curve: Sm2Curve = SM2P256V1) -> None:
        from gmssl.sm2 import CryptSM2

        self.curve = curve
        self._table = curve.ecc_table()
        self._engine = CryptSM2(private_key="00", public_key="00" * 64, ecc_table=self._table)

    def multiply(self, k: int, point: tuple[int, int]) -> tuple[int, int]:
        """k·P in affine coordinates."""
        result: str = self._engine._kg(k, f"{point[0]:064x}{point[1]:064x}")
        return int(result[:64], 16), int(result[64:128], 16)

    def public_point(self, d: int) -> tuple[int, int]:
        return self.multiply(d, (self.curve.gx, self.curve.gy))

    def z_a(self, public: tuple[int, int], user_id: bytes = SM2_DEFAULT_ID) -> bytes:
        """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)."""
        c = self.curve
        parts = [(len(user_id) * 8).to_bytes(2, "big"), user_id]
        parts += [v.to_bytes(32, "big") for v in (c.a, c.b, c.gx, c.gy, public[0], public[1])]
        return sm3(b"".join(parts))

    def sign_digest(self, d: int, e: bytes, k: int) -> tuple[int, int] | None:
        """(r, s) for the message digest ``e`` with the given k, or None if k is unusable."""
        from gmssl.sm2 import CryptSM2

        engine = CryptSM2(private_key=f"{d:064x}", public_key="00" * 64, ecc_table=self._table)
        signature: str | None = engine.sign(e, f"{k:064x}")
        if signature is None:
            return None
        return int(signature[:64], 16), int(signature[64:], 16)

    def verify_digest(self, public: tuple[int, int], e: bytes, r: int, s: int) -> bool:
        from gmssl.sm2 import CryptSM2

        n = self.curve.n
        # gmssl checks neither the ranges nor the key; GB/T 32918.2 §7.1 B1, B2 do.
        if not (1 <= r < n and 1 <= s < n) or (r + s) % n == 0:
            return False
        if not self.curve.on_curve(*public):
            return False
        engine = CryptSM2(private_key="00", public_key="00" * 64, ecc_table=self._table)
        # Set after construction: gmssl's constructor strips a leading "04" with
        # str.lstrip("04"), which also eats the key's own leading 0 and 4 digits whenever
        # x begins with the byte 04 (one key in 256 could then never verify).
        engine.public_key = f"{public[0]:064x}{public[1]:064x}"
        return bool(engine.verify(f"{r:064x}{s:064x}", e))

    def deterministic_k(self, d: int, e: bytes) -> int:
        """k from the private key and the digest, in the manner of RFC 6979 §3.2 with HMAC-SM3.

        The same key and message always give the same k (and so the same signature); a
        different message gives an unrelated k, and nobody without d can predict it.
        """
        n = self.curve.n
        x = d.to_bytes(32, "big")
        h1 = (int.from_bytes(e, "big") % n).to_bytes(32, "big")
        v, key = b"\x01" * 32, b"\x00" * 32
        key = sm3_hmac(key, v + b"\x00" + x + h1)
        v = sm3_hmac(key, v)
        key = sm3_hmac(key, v + b"\x01" + x + h1)
        v = sm3_hmac(key, v)
        while True:
            v = sm3_hmac(key, v)
            k = int.from_bytes(v, "big")
            if 1 <= k < n:
                return k
            key = sm3_hmac(key, v + b"\x00")
            v = sm3_hmac(key, v)

    def encrypt_with_k(self, public: tuple[int, int], message: bytes, k: int) -> bytes:
        """GB/T 32918.4 encryption with a given k, as C1 || C3 || C2 (C1 uncompressed, 04-prefixed).

        Only the tests use it (to reproduce the standard's example); the bundle's key
        agreement uses the same steps A2-A5: C1 = kG, (x2, y2) = k·P_B, t = KDF(x2 || y2).
        """
        c1 = self.public_point(k)
        x2, y2 = self.multiply(k, public)
        xb, yb = x2.to_bytes(32, "big"), y2.to_bytes(32, "big")
        t = sm2_kdf(xb + yb, len(message))
        c2 = bytes(a ^ b for a, b in zip(message, t, strict=True))
        c3 = sm3(xb + message + yb)
        return b"\x04" + c1[0].to_bytes(32, "big") + c1[1].to_bytes(32, "big") + c3 + c2


class GmSuite(CryptoSuite):
    """The national suite (国密): SM2 (with SM3) signatures and key agreement, SM4-GCM, HKDF-SM3.

    Keys: private keys are 32-byte big-endian scalars; public keys are 64 bytes x || y.
    """

    name: ClassVar[str] = "gm"
    aead_key_bytes: ClassVar[int] = 16
    hash_name: ClassVar[str] = "SM3"

    def __init__(self, curve: Sm2Curve = SM2P256V1) -> None:
        self._curve = curve
        self._sm2: Sm2 | None = None

    @property
    def sm2(self) -> Sm2:
        # gmssl is imported on first use, so the intl-only path never loads it.
        if self._sm2 is None:
            self._sm2 = Sm2(self._curve)
        return self._sm2

    def _scalar(self, private_raw: bytes) -> int:
        if not isinstance(private_raw, bytes) or len(private_raw) != 32:
            raise TerminalError("not a valid SM2 private key")
        d = int.from_bytes(private_raw, "big")
        if not 1 <= d < self._curve.n - 1:
            raise TerminalError("not a valid SM2 private key")
        return d

    def _point(self, public_raw: bytes) -> tuple[int, int] | None:
        if not isinstance(public_raw, bytes) or len(public_raw) != 64:
            return None
        x, y = int.from_bytes(public_raw[:32], "big"), int.from_bytes(public_raw[32:], "big")
        return (x, y) if self._curve.on_curve(x, y) else None

    def _random_scalar(self) -> bytes:
        import secrets

        return (secrets.randbelow(self._curve.n - 2) + 1).to_bytes(32, "big")

    def hash(self, data: bytes) -> bytes:
        return sm3(data)

    def generate_signing_key(self) -> bytes:
        return self._random_scalar()

    def public_key(self, private_raw: bytes) -> bytes:
        x, y = self.sm2.public_point(self._scalar(private_raw))
        return x.to_bytes(32, "big") + y.to_bytes(32, "big")

    def message_digest(self, public: tuple[int, int], data: bytes) -> bytes:
        """e = SM3(Z_A || M) with the default identity."""
        return sm3(self.sm2.z_a(public) + data)

    def sign(self, private_raw: bytes, data: bytes) -> bytes:
        d = self._scalar(private_raw)
        public = self.sm2.public_point(d)
        e = self.message_digest(public, data)
        k = self.sm2.deterministic_k(d, e)
        while (signature := self.sm2.sign_digest(d, e, k)) is None:
            # Probability about 2^-255; continue deterministically.
            k = self.sm2.deterministic_k(d, sm3(e + k.to_bytes(32, "big")))
        r, s = signature
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, public_raw: bytes, signature: bytes, data: bytes) -> bool:
        point = self._point(public_raw)
        if point is None or not isinstance(signature, bytes) or len(signature) != 64:
            return False
        if not isinstance(data, bytes):
            return False
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        try:
            return self.sm2.verify_digest(point, self.message_digest(point, data), r, s)
        except (ValueError, TypeError, IndexError):
            return False

    def generate_agreement_key(self) -> bytes:
        return self._random_scalar()

    def agreement_private_from_seed(self, seed: bytes) -> bytes:
        # 64 seed bytes reduced mod n-1 give a scalar with negligible bias (FIPS 186-5 A.2.1).
        return (int.from_bytes(seed, "big") % (self._curve.n - 1) + 1).to_bytes(32, "big")

    def agreement_public_key(self, private_raw: bytes) -> bytes:
        return self.public_key(private_raw)

    def agree(self, private_raw: bytes, peer_public: bytes) -> bytes:
        point = self._point(peer_public)
        if point is None:
            raise DecryptionFailed("the SM2 public key is not on the curve")
        x2, y2 = self.sm2.multiply(self._scalar(private_raw), point)
        if not self._curve.on_curve(x2, y2):
            raise DecryptionFailed("SM2 key agreement gave the point at infinity")
        # GB/T 32918.4 A5: t = KDF(x2 || y2, klen) — here 32 bytes of shared secret.
        return sm2_kdf(x2.to_bytes(32, "big") + y2.to_bytes(32, "big"), 32)

    def kdf(self, secret: bytes, info: bytes, length: int) -> bytes:
        return HKDF(hashes.SM3(), length, None, info).derive(secret)

    def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return body + encryptor.tag

    def open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < AEAD_TAG_BYTES:
            raise DecryptionFailed("sealed segment shorter than its tag")
        body, tag = sealed[:-AEAD_TAG_BYTES], sealed[-AEAD_TAG_BYTES:]
        try:
            decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
            decryptor.authenticate_additional_data(aad)
            return decryptor.update(body) + decryptor.finalize()
        except (InvalidTag, ValueError):
            raise DecryptionFailed("SM4-GCM tag does not verify") from None


SUITES: dict[str, CryptoSuite] = {IntlSuite.name: IntlSuite(), GmSuite.name: GmSuite()}


def get_suite(name: str) -> CryptoSuite:
    """The registered suite called ``name``; TerminalError for an unknown name."""
    try:
        return SUITES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(SUITES))
        raise TerminalError(f"unknown crypto suite {name!r}; known suites: {known}") from None

