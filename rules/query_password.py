"""The query password (查询密码) of an application and the name its public status
document is published under.

The administration side generates the password; only the lookup name derived from it
leaves the network. The derivation is PBKDF2-HMAC-SHA256, chosen because a browser can run
it natively (WebCrypto ``deriveBits``) on the public status page, and Python through
``hashlib.pbkdf2_hmac``: both sides must derive the same name.

    salt   = UTF-8 of ``"pehub-status-v1|" + key``   (key: the case number, or the NET_ID
                                                      of an application without one)
    bits   = PBKDF2-HMAC-SHA256(password, salt, QUERY_KDF_ITERATIONS, 32 bytes)
    lookup = each half-byte of ``bits`` as a letter a..p (64 letters)

The salt is unique per case and needs no storage; the letters-only encoding keeps the
lookup name free of digit runs the personal-data scanner would flag.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

QUERY_KDF: Final = "PBKDF2-HMAC-SHA256"
QUERY_KDF_ITERATIONS: Final = 20_000
QUERY_SALT_PREFIX: Final = "pehub-status-v1|"
# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: easy to read out over the phone and to type.
PASSWORD_ALPHABET: Final = "3467ACDEFGHJKMNPQRTUVWXY9"
PASSWORD_LENGTH: Final = 8
_LETTERS: Final = "abcdefghijklmnop"


def generate_query_password() -> str:
    """A fresh random query password (8 characters of an unambiguous alphabet)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def lookup_name(key: str, password: str, iterations: int = QUERY_KDF_ITERATIONS) -> str:
    """The public name of the status document of ``key`` (case number or NET_ID)."""
    bits = hashlib.pbkdf2_hmac(
        "sha256",
        password.strip().upper().encode("utf-8"),
        (QUERY_SALT_PREFIX + key.strip().upper()).encode("utf-8"),
        iterations,
        32,
    )
    return "".join(_LETTERS[b >> 4] + _LETTERS[b & 15] for b in bits)


def kdf_parameters() -> dict[str, object]:
    """What the public status page needs to derive the same names (public, no secret)."""
    return {
        "kdf": QUERY_KDF,
        "iterations": QUERY_KDF_ITERATIONS,
        "salt_prefix": QUERY_SALT_PREFIX,
        "length_bytes": 32,
        "encoding": "nibble-letters-a-p",
    }
