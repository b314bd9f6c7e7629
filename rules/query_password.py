"""The query password (查询密码) of an application and the name its public status
document is published under.

The administration side generates the password; only the lookup name derived from it
leaves the network. The derivation is PBKDF2-HMAC-SHA256, chosen because a browser can run
it natively (WebCrypto ``deriveBits``) on the public status page, and Python through
``hashlib.pbkdf2_hmac``: both sides must derive the same name.

    salt   = UTF-8 of ``"pehub-status-v2|" + key``   (key: the case number, or the NET_ID
                                                      of an application without one)
    bits   = PBKDF2-HMAC-SHA256(password, salt, QUERY_KDF_ITERATIONS, 32 bytes)
    lookup = each half-byte of ``bits`` as a letter a..p (64 letters)

The status document itself is sealed (``rules.status_seal``) under a key from the same
derivation: PBKDF2's second output block, i.e. bytes 32..64 of a 64-byte derivation whose
first 32 bytes are ``bits`` above. The public store holds the lookup name and sealed bytes
only, so a copy of it reads as nothing without each case's password; the key costs one
more block of the same 16 iterations, and nothing can be learnt about it from the name.

Why a long password and few iterations: the hub generates the password, so its strength
comes from entropy, not from stretching a word a person chose. 12 characters of a
25-letter alphabet are 2^55.7 candidates; with 16 iterations a guess costs 2^4 HMACs, about
2^59.7 work per case (the salt is the case), 256 times more than the former 8 characters
with 20,000 iterations (2^51.6), at 5 µs instead of 6 ms per application, which is what
lets a province-day of a million applications through the load stage.

The salt is unique per case and needs no storage; the letters-only encoding keeps the
lookup name free of digit runs the personal-data scanner would flag. A scheme is told by
the password's length: the passwords of the first scheme (8 characters, ``pehub-status-v1|``,
20,000 iterations) still find their published documents, in Python and on the status page.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from typing import Final

QUERY_KDF: Final = "PBKDF2-HMAC-SHA256"
QUERY_KDF_ITERATIONS: Final = 16
QUERY_SALT_PREFIX: Final = "pehub-status-v2|"
LEGACY_PASSWORD_LENGTH: Final = 8
LEGACY_KDF_ITERATIONS: Final = 20_000
LEGACY_SALT_PREFIX: Final = "pehub-status-v1|"
# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: easy to read out over the phone and to type.
PASSWORD_ALPHABET: Final = "3467ACDEFGHJKMNPQRTUVWXY9"
PASSWORD_LENGTH: Final = 12
# Shown to the applicant in groups of four (ACDE-FGHJ-KMNP); separators are not part of it.
PASSWORD_GROUP: Final = 4
_SEPARATORS: Final = str.maketrans("", "", " -\t")
_LETTERS: Final = "abcdefghijklmnop"
# Each hexadecimal digit of the derived bits as its letter: 0 → a, ..., f → p.
_HEX_AS_LETTERS: Final = str.maketrans("0123456789abcdef", _LETTERS)
_LETTERS_AS_HEX: Final = str.maketrans(_LETTERS, "0123456789abcdef")
LOOKUP_BYTES: Final = 32
_CANDIDATES: Final = len(PASSWORD_ALPHABET) ** PASSWORD_LENGTH
# Largest multiple of the candidate count below 2^64: draws above it are redrawn, so every
# password is equally likely (no modulo bias).
_UNBIASED_BOUND: Final = (2**64 // _CANDIDATES) * _CANDIDATES
# Every two-digit number of the alphabet's base, lower digit first: _PAIRS[a + 25 * b]
# spells a then b.
_PAIRS: Final = tuple(low + high for high in PASSWORD_ALPHABET for low in PASSWORD_ALPHABET)
_PAIR_COUNT: Final = len(_PAIRS)


def generate_query_password() -> str:
    """A fresh random query password: 12 characters of an unambiguous alphabet, uniform."""
    return generate_query_passwords(1)[0]


def generate_query_passwords(count: int) -> list[str]:
    """``count`` fresh random query passwords, each as :func:`generate_query_password`.

    One read of the system's random source serves the lot (the load stage needs one
    password per application, and a read per password cost more than the rest of it);
    each 8 bytes of it are one draw, and a draw at or above the unbiased bound is dropped
    and made up by a further read.
    """
    passwords: list[str] = []
    while len(passwords) < count:
        pool = secrets.token_bytes(8 * (count - len(passwords)))
        for (draw,) in struct.iter_unpack(">Q", pool):
            if draw < _UNBIASED_BOUND:
                passwords.append(_spelled(draw % _CANDIDATES))
    return passwords


def _spelled(number: int) -> str:
    """``number`` (below _CANDIDATES) in PASSWORD_LENGTH digits of the alphabet, lowest
    first, two digits per step."""
    pairs = []
    for _ in range(PASSWORD_LENGTH // 2):
        number, pair = divmod(number, _PAIR_COUNT)
        pairs.append(_PAIRS[pair])
    return "".join(pairs)


def format_query_password(password: str) -> str:
    """The password as the applicant is given it: groups of four joined by hyphens."""
    plain = normalise_query_password(password)
    return "-".join(plain[i:i + PASSWORD_GROUP] for i in range(0, len(plain), PASSWORD_GROUP))


def normalise_query_password(typed: str) -> str:
    """What the derivation reads: upper case, without spaces or the group hyphens."""
    return typed.translate(_SEPARATORS).upper()


def lookup_name(key: str, password: str, iterations: int | None = None) -> str:
    """The public name of the status document of ``key`` (case number or NET_ID), by the
    scheme the password's length says (``iterations`` overrides its count, for tests)."""
    return lookup_from_bytes(_derived(key, password, iterations, LOOKUP_BYTES))


def _derived(key: str, password: str, iterations: int | None, length: int) -> bytes:
    plain = normalise_query_password(password)
    legacy = len(plain) == LEGACY_PASSWORD_LENGTH
    return hashlib.pbkdf2_hmac(
        "sha256",
        plain.encode("utf-8"),
        ((LEGACY_SALT_PREFIX if legacy else QUERY_SALT_PREFIX) + key.strip().upper()).encode("utf-8"),
        iterations or (LEGACY_KDF_ITERATIONS if legacy else QUERY_KDF_ITERATIONS),
        length,
    )


def status_keys(key: str, password: str, iterations: int | None = None) -> tuple[str, bytes]:
    """The lookup name of the status document of ``key`` (as :func:`lookup_name`) and the
    32-byte key its events are sealed under: one PBKDF2 derivation of 64 bytes, the name
    from the first half, the key from the second (PBKDF2's blocks are independent HMAC
    chains, so the first half is exactly the 32-byte derivation of :func:`lookup_name`)."""
    bits = _derived(key, password, iterations, 2 * LOOKUP_BYTES)
    return lookup_from_bytes(bits[:LOOKUP_BYTES]), bits[LOOKUP_BYTES:]


def lookup_bytes(lookup: str) -> bytes:
    """The 32 bytes a lookup name spells (the public store keeps names this way)."""
    return bytes.fromhex(lookup.translate(_LETTERS_AS_HEX))


def lookup_from_bytes(raw: bytes) -> str:
    return raw.hex().translate(_HEX_AS_LETTERS)


def kdf_parameters() -> dict[str, object]:
    """What the public status page needs to derive the same names (public, no secret)."""
    return {
        "kdf": QUERY_KDF,
        "iterations": QUERY_KDF_ITERATIONS,
        "salt_prefix": QUERY_SALT_PREFIX,
        "password_length": PASSWORD_LENGTH,
        "length_bytes": LOOKUP_BYTES,
        "encoding": "nibble-letters-a-p",
        "password_ignores": " -\t",
        # The status document's sealing key: the next 32 bytes of the same derivation.
        "sealing": {"cipher": "AES-256-GCM", "key_offset_bytes": LOOKUP_BYTES, "key_bytes": 32},
        "legacy": {
            "password_length": LEGACY_PASSWORD_LENGTH,
            "iterations": LEGACY_KDF_ITERATIONS,
            "salt_prefix": LEGACY_SALT_PREFIX,
        },
    }
