"""Encryption keys and rotation: overlap window, then KEY_EXPIRED; private files stay 0600."""

from __future__ import annotations

import io
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ferry_testkit import header, make_zone_pair

from ferry.bundle import BundleRejected, open_bundle, records_item, write_bundle
from ferry.keys import (
    export_public_key,
    load_decryption_keys,
    load_keyring,
    load_recipient_key,
    load_signing_key,
    rotate_zone_keys,
)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def bundle_bytes(path: Path, sender_dir: Path, recipient_dir: Path) -> Path:
    key = load_signing_key(sender_dir, "internet")
    recipient = load_recipient_key(sender_dir, "admin")
    out = io.BytesIO()
    write_bundle(out, header(counts={"applications": 1}), [records_item("applications", [{"a": 1}])], key, recipient=recipient)
    path.write_bytes(out.getvalue())
    return path


def test_init_creates_an_encryption_key_pair_with_private_file_0600(tmp_path: Path) -> None:
    zones = make_zone_pair(tmp_path)
    (dkey,) = (zones.receiver_dir / "private").glob("admin.*.dkey")
    assert stat.S_IMODE(dkey.stat().st_mode) == 0o600
    assert zones.recipient.key_id in zones.decryption
    # Only public halves crossed over: the sender holds no private key of the receiver.
    assert not list((zones.sender_dir / "private").glob("admin.*"))
    assert repr(zones.decryption[zones.recipient.key_id]).endswith("private=<redacted>)")


@pytest.mark.parametrize("suite", ["intl", "gm"])
def test_rotation_overlap_then_key_expired(tmp_path: Path, suite: str) -> None:
    zones = make_zone_pair(tmp_path, suite)
    old = bundle_bytes(tmp_path / "old.peb", zones.sender_dir, zones.receiver_dir)
    new_sign, _ = rotate_zone_keys(zones.sender_dir, "internet", overlap=timedelta(days=7), at=T0)
    new_signing, new_encryption = new_sign, rotate_zone_keys(
        zones.receiver_dir, "admin", overlap=timedelta(days=7), at=T0
    )[1]
    export_public_key(zones.sender_dir, "internet", zones.receiver_dir)
    export_public_key(zones.receiver_dir, "admin", zones.sender_dir)
    keyring = load_keyring(zones.receiver_dir)
    keys = load_decryption_keys(zones.receiver_dir, "admin")
    assert load_signing_key(zones.sender_dir, "internet").key_id == new_signing
    assert load_recipient_key(zones.sender_dir, "admin").key_id == new_encryption
    assert len(keys) == 2 and len(keyring) == 2
    # Within the overlap, the bundle signed by and sealed to the previous keys is accepted.
    open_bundle(old, keyring, decryption_keys=keys, at=T0 + timedelta(days=6))
    # After it, it is refused with a clear reason.
    with pytest.raises(BundleRejected) as raised:
        open_bundle(old, keyring, decryption_keys=keys, at=T0 + timedelta(days=7))
    assert raised.value.code == "KEY_EXPIRED"
    # New bundles use the new keys and are accepted after the old ones expired.
    new = bundle_bytes(tmp_path / "new.peb", zones.sender_dir, zones.receiver_dir)
    opened = open_bundle(new, keyring, decryption_keys=keys, at=T0 + timedelta(days=30))
    assert opened.manifest.sender_key_id == new_signing
    assert opened.manifest.encryption.recipient_key_id == new_encryption
    # The previous signing key is retired, not deleted, and still 0600.
    (retired,) = (zones.sender_dir / "private" / "retired").glob("*.key")
    assert stat.S_IMODE(retired.stat().st_mode) == 0o600
