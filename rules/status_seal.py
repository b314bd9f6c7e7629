"""Sealing of public status records: what the public store holds of a case is its lookup
name and, per status change, AES-256-GCM ciphertext under the case's sealing key
(``rules.query_password.status_keys``), which only the case number and query password
give. The public status page opens it in the browser with WebCrypto.

    nonce = 4-byte purpose (``evt0`` a status record, ``aud0`` its audit-log leaf entry)
            || event id, 8 bytes big-endian
    aad   = UTF-8 of ``"<lookup>|<event id>|<purpose>"``
    sealed = AES-256-GCM(key, nonce, the record's JSON bytes, aad)  (ciphertext || 16-byte tag)

The nonce is derived, not drawn: a rebuilt bundle must carry the same bytes as the one it
replaces, and a (key, nonce) pair never seals two different texts, because a key is one
case's and an event id is sealed once per purpose (the status outbox is append-only; a
rebuild seals the same text again). The additional data binds each ciphertext to its name
and event, so a record moved to another case or event does not open.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEAL_CIPHER: Final = "AES-256-GCM"
SEAL_KEY_BYTES: Final = 32
EVENT_PURPOSE: Final = b"evt0"
LEAF_PURPOSE: Final = b"aud0"
PURPOSES: Final = (EVENT_PURPOSE, LEAF_PURPOSE)


class SealBroken(ValueError):
    """A sealed record did not open under its key: wrong key, or bytes changed."""


def _nonce(purpose: bytes, event_id: int) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown sealing purpose {purpose!r}")
    return purpose + event_id.to_bytes(8, "big")


def _aad(lookup: str, event_id: int, purpose: bytes) -> bytes:
    return f"{lookup}|{event_id}|{purpose.decode('ascii')}".encode("ascii")


class Sealer:
    """Seals the records of one case (one key); the key is checked once."""

    def __init__(self, key: bytes, lookup: str) -> None:
        if len(key) != SEAL_KEY_BYTES:
            raise ValueError(f"a sealing key is {SEAL_KEY_BYTES} bytes, not {len(key)}")
        self._cipher = AESGCM(key)
        self.lookup = lookup

    def seal(self, event_id: int, plain: bytes, purpose: bytes = EVENT_PURPOSE) -> bytes:
        return self._cipher.encrypt(_nonce(purpose, event_id), plain, _aad(self.lookup, event_id, purpose))

    def open(self, event_id: int, sealed: bytes, purpose: bytes = EVENT_PURPOSE) -> bytes:
        try:
            return self._cipher.decrypt(_nonce(purpose, event_id), sealed, _aad(self.lookup, event_id, purpose))
        except InvalidTag as error:
            raise SealBroken(f"event {event_id} of {self.lookup[:8]}… does not open under its key") from error
