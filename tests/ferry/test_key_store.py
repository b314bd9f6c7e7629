"""The folder key store: file modes, idempotence, export, keyring, and no leaked secrets."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.keys import (
    SigningKey,
    TrustedKey,
    export_public_key,
    generate_zone_key,
    load_keyring,
    load_signing_key,
)
from ferry.suites import get_suite
from schemas.exceptions import TerminalError


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Umask 0, so modes come from the code and not from the environment."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_key_file_is_0600_in_a_0700_folder(tmp_path: Path, permissive_umask: None) -> None:
    key_id = generate_zone_key(tmp_path, "internet")
    (private_file,) = (tmp_path / "private").glob("*.key")
    assert private_file.name == f"internet.{key_id.replace(':', '_')}.key"
    assert mode(private_file) == 0o600
    assert mode(tmp_path / "private") == 0o700
    assert not list((tmp_path / "private").glob(".*.tmp"))


def test_generate_is_idempotent(tmp_path: Path) -> None:
    first = generate_zone_key(tmp_path, "internet")
    private_before = load_signing_key(tmp_path, "internet").private
    second = generate_zone_key(tmp_path, "internet")
    assert second == first
    assert len(list((tmp_path / "private").glob("*.key"))) == 1
    assert len(list((tmp_path / "public").glob("*.pub"))) == 1
    assert load_signing_key(tmp_path, "internet").private == private_before


def test_zones_get_distinct_keys(tmp_path: Path) -> None:
    assert generate_zone_key(tmp_path, "internet") != generate_zone_key(tmp_path, "admin")


def test_public_file_describes_the_key_and_holds_no_secret(tmp_path: Path) -> None:
    key_id = generate_zone_key(tmp_path, "admin")
    key = load_signing_key(tmp_path, "admin")
    (public_file,) = (tmp_path / "public").glob("*.pub")
    document = json.loads(public_file.read_text())
    assert document["key_id"] == key_id == key.key_id
    assert document["suite"] == "intl" and document["zone"] == "admin"
    public = base64.b64decode(document["public_key"])
    assert public == get_suite("intl").public_key(key.private)
    assert key.private.hex() not in public_file.read_text()


def test_repr_of_signing_key_hides_the_private_bytes(tmp_path: Path) -> None:
    generate_zone_key(tmp_path, "internet")
    key = load_signing_key(tmp_path, "internet")
    assert repr(key) == f"SigningKey(key_id={key.key_id!r}, suite='intl', private=<redacted>)"
    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert key.private.hex() not in text
        assert repr(key.private)[2:-1] not in text
        assert base64.b64encode(key.private).decode() not in text


def test_signing_key_round_trips_through_the_files(tmp_path: Path) -> None:
    key_id = generate_zone_key(tmp_path, "internet")
    key = load_signing_key(tmp_path, "internet")
    assert isinstance(key, SigningKey)
    assert (key.key_id, key.suite) == (key_id, "intl")
    suite = get_suite("intl")
    assert suite.key_id(suite.public_key(key.private)) == key_id


def test_missing_signing_key_tells_the_operator_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="hub keys init"):
        load_signing_key(tmp_path, "internet")


def test_missing_trusted_keys_tell_the_operator_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="hub keys init"):
        load_keyring(tmp_path)
    (tmp_path / "trusted").mkdir()
    with pytest.raises(TerminalError, match="hub keys init"):
        load_keyring(tmp_path)


def test_export_then_keyring_trusts_exactly_the_peer_key(tmp_path: Path) -> None:
    sender, receiver = tmp_path / "internet", tmp_path / "admin"
    key_id = generate_zone_key(sender, "internet")
    generate_zone_key(receiver, "admin")
    copied = export_public_key(sender, "internet", receiver)
    assert copied.parent == receiver / "trusted"
    keyring = load_keyring(receiver)
    assert list(keyring) == [key_id]
    key = load_signing_key(sender, "internet")
    assert keyring[key_id] == TrustedKey(
        suite="intl", public=get_suite("intl").public_key(key.private), zone="internet"
    )


def test_export_without_a_key_is_terminal(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="hub keys init"):
        export_public_key(tmp_path / "a", "internet", tmp_path / "b")


def test_trusted_file_whose_key_id_does_not_match_its_key_is_refused(tmp_path: Path) -> None:
    sender, receiver = tmp_path / "internet", tmp_path / "admin"
    generate_zone_key(sender, "internet")
    copied = export_public_key(sender, "internet", receiver)
    document = json.loads(copied.read_text())
    document["public_key"] = base64.b64encode(b"\x01" * 32).decode()
    copied.write_text(json.dumps(document))
    with pytest.raises(TerminalError, match="key_id does not match"):
        load_keyring(receiver)


def test_private_key_file_that_does_not_match_its_name_is_refused(tmp_path: Path) -> None:
    generate_zone_key(tmp_path, "internet")
    (private_file,) = (tmp_path / "private").glob("*.key")
    private_file.write_text(get_suite("intl").generate_signing_key().hex())
    with pytest.raises(TerminalError, match="does not match its file name"):
        load_signing_key(tmp_path, "internet")


def test_missing_public_file_is_recreated_from_the_private_key(tmp_path: Path) -> None:
    key_id = generate_zone_key(tmp_path, "internet")
    (public_file,) = (tmp_path / "public").glob("*.pub")
    public_file.unlink()
    assert generate_zone_key(tmp_path, "internet") == key_id
    assert json.loads(public_file.read_text())["key_id"] == key_id


@pytest.mark.parametrize("zone", ["", "../admin", "a/b", "in.ternet", "x" * 65])
def test_zone_names_cannot_escape_the_folder(tmp_path: Path, zone: str) -> None:
    with pytest.raises(TerminalError, match="zone name"):
        generate_zone_key(tmp_path, zone)


def test_signing_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    generate_zone_key(tmp_path, "internet")
    (private_file,) = (tmp_path / "private").glob("*.key")
    private_file.chmod(0o644)
    with pytest.raises(TerminalError, match="chmod 600"):
        load_signing_key(tmp_path, "internet")
    private_file.chmod(0o600)
    assert load_signing_key(tmp_path, "internet").suite == "intl"
