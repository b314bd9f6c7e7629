"""The folder key store of one zone: its own signing and encryption keys and the peers' public keys.

Layout under ``keys_dir``::

    private/<zone>.<suite>_<hex16>.key    signing key, raw private key in hex, mode 0600 (folder 0700)
    private/<zone>.<suite>_<hex16>.dkey   encryption (key-agreement) private key, same form
    private/retired/*.key                 signing keys replaced by `hub keys rotate` (never used again)
    public/<zone>.<suite>_<hex16>.pub     JSON: key_id, suite, zone, public_key (base64), created_at,
                                          and expires_at once the key was rotated out
    public/<zone>.<suite>_<hex16>.epub    the same for an encryption public key
    trusted/*.pub, trusted/*.epub         peers' public files, copied by export_public_key

A zone signs with its one current signing key; it decrypts with any of its encryption keys
that has not expired; a sender encrypts to the peer's one encryption key without an expiry.
Private key material is never logged, printed or put into an exception message.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import orjson

from ferry.suites import get_suite
from ferry.transport import fsync_dir
from schemas.exceptions import TerminalError

DEFAULT_SUITE = "intl"
INIT_HINT = "run `hub keys init` to create the zone keys and exchange the public keys"

_ZONE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KEY_FILE_ID = re.compile(r"([a-z0-9]{1,16})_([0-9a-f]{16})")
_MAX_PUBLIC_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SigningKey:
    """A zone's private signing key. Its repr never shows the key bytes."""

    key_id: str
    suite: str
    private: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r}, suite={self.suite!r}, private=<redacted>)"

    __str__ = __repr__


class TrustedKey(NamedTuple):
    """A peer's public key as the receiver trusts it (expires_at: ISO-8601, or None)."""

    suite: str
    public: bytes
    zone: str
    expires_at: str | None = None


@dataclass(frozen=True)
class RecipientKey:
    """The receiving zone's public encryption key, which a sender encrypts bundles to."""

    key_id: str
    suite: str
    public: bytes


@dataclass(frozen=True)
class DecryptionKey:
    """One of a zone's private encryption keys. Its repr never shows the key bytes."""

    key_id: str
    suite: str
    private: bytes = field(repr=False)
    expires_at: str | None = None

    def __repr__(self) -> str:
        return (
            f"DecryptionKey(key_id={self.key_id!r}, suite={self.suite!r}, "
            f"expires_at={self.expires_at!r}, private=<redacted>)"
        )

    __str__ = __repr__


def is_expired(expires_at: str | None, at: datetime) -> bool:
    """True once ``at`` has reached ``expires_at`` (None never expires)."""
    if expires_at is None:
        return False
    try:
        limit = datetime.fromisoformat(expires_at)
    except ValueError:
        return True  # an unreadable expiry fails closed
    if limit.tzinfo is None:
        limit = limit.replace(tzinfo=UTC)
    return at >= limit


class Keyring(Mapping[str, TrustedKey]):
    """Trusted public keys by key id (read-only)."""

    def __init__(self, keys: Mapping[str, TrustedKey]) -> None:
        self._keys = dict(keys)

    def __getitem__(self, key_id: str) -> TrustedKey:
        return self._keys[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keyring({sorted(self._keys)!r})"


def generate_zone_key(keys_dir: Path, zone: str, suite: str = DEFAULT_SUITE) -> str:
    """Create the zone's signing key unless it has one; return the current key id.

    Also creates the zone's encryption (key-agreement) key pair, of the same suite, when
    the zone has none. Idempotent: a second call returns the existing key id and creates
    nothing (a missing public file is rewritten from the private key).
    """
    _check_zone(zone)
    get_suite(suite)  # an unknown suite fails before anything is created
    private_dir = keys_dir / "private"
    public_dir = keys_dir / "public"
    _make_private_dir(private_dir)
    public_dir.mkdir(parents=True, exist_ok=True)
    with _zone_lock(private_dir, zone):
        existing = _private_key_files(keys_dir, zone)
        if existing:
            key = _read_signing_key(_only_current(existing, zone), zone)
            public_file = public_dir / _public_name(zone, key.key_id)
            if not public_file.exists():
                public = get_suite(key.suite).public_key(key.private)
                _write_public_file(public_file, zone, key.suite, public)
            if not _decryption_key_files(keys_dir, zone):
                _create_encryption_key(keys_dir, zone, key.suite)
            return key.key_id
        key_id = _create_signing_key(keys_dir, zone, suite)
        if not _decryption_key_files(keys_dir, zone):
            _create_encryption_key(keys_dir, zone, suite)
        return key_id


def rotate_zone_keys(
    keys_dir: Path, zone: str, *, overlap: timedelta, at: datetime, suite: str | None = None
) -> tuple[str, str]:
    """Replace the zone's signing and encryption keys; return the new (signing, encryption) ids.

    The previous public files get ``expires_at = at + overlap``: receivers keep accepting
    bundles signed by the previous key until then (then refuse them with KEY_EXPIRED), and
    this zone keeps decrypting bundles sealed to its previous encryption key until then.
    The previous signing private key moves to ``private/retired/`` and is never used again.
    Export the public keys to the peer afterwards (:func:`export_public_key`). The new keys
    are of ``suite`` when given (how a deployment moves to the gm suite), else of the
    previous keys' suite.
    """
    _check_zone(zone)
    if suite is not None:
        get_suite(suite)  # an unknown suite fails before anything changes
    if overlap < timedelta(0):
        raise TerminalError("the overlap of a key rotation cannot be negative")
    expires_at = (at + overlap).astimezone(UTC).isoformat(timespec="seconds")
    private_dir = keys_dir / "private"
    with _zone_lock(private_dir, zone):
        old = load_signing_key(keys_dir, zone)
        old_public = keys_dir / "public" / _public_name(zone, old.key_id)
        _set_expiry(old_public, zone, old.suite, get_suite(old.suite).public_key(old.private), expires_at)
        for key in load_decryption_keys(keys_dir, zone).values():
            if key.expires_at is None:
                public = get_suite(key.suite).agreement_public_key(key.private)
                _set_expiry(
                    keys_dir / "public" / _public_name(zone, key.key_id, ".epub"),
                    zone, key.suite, public, expires_at, purpose="encrypt",
                )
        retired = private_dir / "retired"
        _make_private_dir(retired)
        old_file = private_dir / _private_name(zone, old.key_id)
        os.replace(old_file, retired / old_file.name)
        fsync_dir(private_dir)
        signing_id = _create_signing_key(keys_dir, zone, suite or old.suite)
        encryption_id = _create_encryption_key(keys_dir, zone, suite or old.suite)
    return signing_id, encryption_id


def _create_signing_key(keys_dir: Path, zone: str, suite: str) -> str:
    crypto = get_suite(suite)
    private = crypto.generate_signing_key()
    public = crypto.public_key(private)
    key_id = crypto.key_id(public)
    _write_private_file(keys_dir / "private" / _private_name(zone, key_id), private)
    _write_public_file(keys_dir / "public" / _public_name(zone, key_id), zone, suite, public)
    return key_id


def _create_encryption_key(keys_dir: Path, zone: str, suite: str) -> str:
    crypto = get_suite(suite)
    private = crypto.generate_agreement_key()
    public = crypto.agreement_public_key(private)
    key_id = crypto.key_id(public)
    _write_private_file(keys_dir / "private" / _private_name(zone, key_id, ".dkey"), private)
    _write_public_file(
        keys_dir / "public" / _public_name(zone, key_id, ".epub"), zone, suite, public,
        purpose="encrypt",
    )
    return key_id


def _set_expiry(
    path: Path, zone: str, suite: str, public: bytes, expires_at: str, *, purpose: str = "sign"
) -> None:
    _write_public_file(path, zone, suite, public, purpose=purpose, expires_at=expires_at)


def load_decryption_keys(keys_dir: Path, zone: str) -> dict[str, DecryptionKey]:
    """Every private encryption key of the zone, by key id, with its expiry (if rotated out)."""
    _check_zone(zone)
    keys: dict[str, DecryptionKey] = {}
    for path in _decryption_key_files(keys_dir, zone):
        match = _KEY_FILE_ID.fullmatch(path.name[len(zone) + 1 : -len(".dkey")])
        if match is None:
            raise TerminalError(f"unexpected key file name {path.name}; {INIT_HINT}")
        suite_name = match.group(1)
        crypto = get_suite(suite_name)
        private = _read_private_hex(path)
        key_id = crypto.key_id(crypto.agreement_public_key(private))
        if _private_name(zone, key_id, ".dkey") != path.name:
            raise TerminalError(f"the encryption key {path} does not match its file name")
        expires_at = None
        public_file = keys_dir / "public" / _public_name(zone, key_id, ".epub")
        if public_file.is_file():
            expires_at = _read_public_file(public_file)[1].expires_at
        keys[key_id] = DecryptionKey(key_id, suite_name, private, expires_at)
    if not keys:
        where = keys_dir / "private"
        raise TerminalError(f"no encryption key for zone {zone!r} in {where}; {INIT_HINT}")
    return keys


def load_recipient_key(keys_dir: Path, peer_zone: str) -> RecipientKey:
    """The peer zone's current encryption key (the one without an expiry) from ``trusted/``."""
    _check_zone(peer_zone)
    trusted_dir = keys_dir / "trusted"
    files = sorted(trusted_dir.glob(f"{peer_zone}.*.epub")) if trusted_dir.is_dir() else []
    current = []
    for path in files:
        key_id, trusted = _read_public_file(path)
        if trusted.zone == peer_zone and trusted.expires_at is None:
            current.append(RecipientKey(key_id, trusted.suite, trusted.public))
    if len(current) != 1:
        raise TerminalError(
            f"{len(current)} current encryption keys of zone {peer_zone!r} in {trusted_dir} "
            f"(need exactly one); {INIT_HINT}"
        )
    return current[0]


def export_public_key(keys_dir: Path, zone: str, peer_keys_dir: Path) -> Path:
    """Copy the zone's public files into ``peer_keys_dir/trusted/``; return the signing key's copy.

    Every public file goes: the current signing and encryption keys, and the rotated-out
    ones with their expiry, so the peer learns when to stop trusting them.
    """
    key = load_signing_key(keys_dir, zone)
    name = _public_name(zone, key.key_id)
    source = keys_dir / "public" / name
    if not source.is_file():
        raise TerminalError(f"no public key file {source}; {INIT_HINT}")
    _, trusted = _read_public_file(source)
    if trusted.public != get_suite(key.suite).public_key(key.private):
        raise TerminalError(f"{source} does not match the private key of zone {zone!r}")
    dest_dir = peer_keys_dir / "trusted"
    dest_dir.mkdir(parents=True, exist_ok=True)
    for other in sorted((keys_dir / "public").glob(f"{zone}.*")):
        if other.suffix in (".pub", ".epub") and other.name != name:
            _read_public_file(other)
            _atomic_write(dest_dir / other.name, other.read_bytes(), 0o644)
    dest = dest_dir / name
    _atomic_write(dest, source.read_bytes(), 0o644)
    return dest


def load_signing_key(keys_dir: Path, zone: str) -> SigningKey:
    """The zone's current signing key; TerminalError (with the remedy) when missing or bad."""
    _check_zone(zone)
    files = _private_key_files(keys_dir, zone)
    if not files:
        where = keys_dir / "private"
        raise TerminalError(f"no signing key for zone {zone!r} in {where}; {INIT_HINT}")
    return _read_signing_key(_only_current(files, zone), zone)


def load_own_signing_keys(keys_dir: Path, zone: str) -> list[TrustedKey]:
    """Every public signing key the zone has had (``public/*.pub``: the current one and the
    rotated ones, whatever their expiry): what verifies the zone's own old signatures, such
    as its audit log's checkpoints."""
    _check_zone(zone)
    public_dir = keys_dir / "public"
    files = sorted(public_dir.glob("*.pub")) if public_dir.is_dir() else []
    keys = [_read_public_file(path)[1] for path in files]
    return [key for key in keys if key.zone == zone]


def load_keyring(keys_dir: Path) -> Keyring:
    """Every public key in ``keys_dir/trusted/*.pub``; TerminalError when there is none."""
    trusted_dir = keys_dir / "trusted"
    files = sorted(trusted_dir.glob("*.pub")) if trusted_dir.is_dir() else []
    if not files:
        raise TerminalError(f"no trusted public keys in {trusted_dir}; {INIT_HINT}")
    keys: dict[str, TrustedKey] = {}
    for path in files:
        key_id, trusted = _read_public_file(path)
        keys[key_id] = trusted
    return Keyring(keys)


def _check_zone(zone: str) -> None:
    if not isinstance(zone, str) or not _ZONE.fullmatch(zone):
        raise TerminalError(f"zone name {zone!r} must match {_ZONE.pattern}")


def _file_id(key_id: str) -> str:
    return key_id.replace(":", "_")


def _private_name(zone: str, key_id: str, suffix: str = ".key") -> str:
    return f"{zone}.{_file_id(key_id)}{suffix}"


def _public_name(zone: str, key_id: str, suffix: str = ".pub") -> str:
    return f"{zone}.{_file_id(key_id)}{suffix}"


def _decryption_key_files(keys_dir: Path, zone: str) -> list[Path]:
    private_dir = keys_dir / "private"
    if not private_dir.is_dir():
        return []
    return sorted(p for p in private_dir.glob(f"{zone}.*.dkey") if p.name.count(".") == 2)


def _private_key_files(keys_dir: Path, zone: str) -> list[Path]:
    private_dir = keys_dir / "private"
    if not private_dir.is_dir():
        return []
    return sorted(p for p in private_dir.glob(f"{zone}.*.key") if p.name.count(".") == 2)


def _only_current(files: list[Path], zone: str) -> Path:
    if len(files) > 1:
        names = ", ".join(p.name for p in files)
        raise TerminalError(f"zone {zone!r} has several signing keys ({names}); keep exactly one")
    return files[0]


def _read_signing_key(path: Path, zone: str) -> SigningKey:
    match = _KEY_FILE_ID.fullmatch(path.name[len(zone) + 1 : -len(".key")])
    if match is None:
        raise TerminalError(f"unexpected key file name {path.name}; {INIT_HINT}")
    suite_name, _ = match.groups()
    crypto = get_suite(suite_name)
    private = _read_private_hex(path)
    key_id = crypto.key_id(crypto.public_key(private))
    if _private_name(zone, key_id) != path.name:
        raise TerminalError(f"the signing key {path} does not match its file name")
    return SigningKey(key_id=key_id, suite=suite_name, private=private)


def _read_private_hex(path: Path) -> bytes:
    kind = "signing" if path.suffix == ".key" else "encryption"
    if path.stat().st_mode & 0o077:
        # Like ssh: a key others can read may already be known to them.
        raise TerminalError(f"the {kind} key {path} is readable by others; chmod 600 it")
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError):
        raise TerminalError(f"cannot read the {kind} key {path}; {INIT_HINT}") from None


def _read_public_file(path: Path) -> tuple[str, TrustedKey]:
    try:
        raw = path.read_bytes()
        if len(raw) > _MAX_PUBLIC_FILE_BYTES:
            raise ValueError("too large")
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        key_id, suite, zone, public_b64 = (
            data["key_id"],
            data["suite"],
            data["zone"],
            data["public_key"],
        )
        if not all(isinstance(v, str) for v in (key_id, suite, zone, public_b64)):
            raise TypeError("fields must be strings")
        public = base64.b64decode(public_b64, validate=True)
        expires_at = data.get("expires_at")
        if expires_at is not None and not isinstance(expires_at, str):
            raise TypeError("expires_at must be a string")
        if data.get("purpose", "sign") != ("encrypt" if path.suffix == ".epub" else "sign"):
            raise ValueError("purpose does not match the file name")
    except (OSError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise TerminalError(f"bad public key file {path}: {exc}") from None
    if get_suite(suite).key_id(public) != key_id:
        raise TerminalError(f"bad public key file {path}: key_id does not match the key")
    return key_id, TrustedKey(suite=suite, public=public, zone=zone, expires_at=expires_at)


def _write_public_file(
    path: Path,
    zone: str,
    suite: str,
    public: bytes,
    *,
    purpose: str = "sign",
    expires_at: str | None = None,
) -> None:
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    if path.is_file():
        try:
            previous = orjson.loads(path.read_bytes())
            created_at = str(previous.get("created_at", created_at))
        except (OSError, orjson.JSONDecodeError, AttributeError):
            pass
    document: dict[str, str] = {
        "key_id": get_suite(suite).key_id(public),
        "suite": suite,
        "zone": zone,
        "purpose": purpose,
        "public_key": base64.b64encode(public).decode("ascii"),
        "created_at": created_at,
    }
    if expires_at is not None:
        document["expires_at"] = expires_at
    body = orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    _atomic_write(path, body, 0o644)


def _make_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private_file(path: Path, private: bytes) -> None:
    """Write the key under a temporary name, then link it in place: never half a key, never clobber."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            _write_all(fd, private.hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _atomic_write(path: Path, body: bytes, mode: int) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]



@contextmanager
def _zone_lock(private_dir: Path, zone: str) -> Iterator[None]:
    """An exclusive lock per zone, so two concurrent `keys init` cannot create two keys."""
    fd = os.open(private_dir / f".{zone}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
