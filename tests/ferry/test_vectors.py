"""The published test vectors of docs/ferry.md: each decodes with its keys to its inputs,
and encoding the same inputs again gives the identical bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from ferry.bundle import BundleRejected, open_bundle
from ferry.keys import Keyring, TrustedKey
from tests.ferry.vectors.make_vectors import decryption_key, encode, vector_inputs

VECTORS = Path(__file__).parent / "vectors"


def load(suite: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / f"{suite}.json").read_text("utf-8"))
    return data


def keyring(inputs: dict[str, Any]) -> Keyring:
    public = bytes.fromhex(inputs["signing_public"])
    return Keyring({inputs["signing_key_id"]: TrustedKey(inputs["suite"], public, "internet")})


@pytest.mark.parametrize("suite", ["intl", "gm"])
def test_vector_decodes_to_its_inputs(suite: str) -> None:
    inputs = load(suite)
    path = VECTORS / f"{suite}.peb"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == inputs["bundle_sha256"]
    bundle = open_bundle(
        path, keyring(inputs), expected_channel="inbound",
        decryption_keys={inputs["encryption_key_id"]: decryption_key(inputs)},
    )
    assert bundle.manifest.suite == suite
    assert bundle.manifest.encryption.recipient_key_id == inputs["encryption_key_id"]
    records = [orjson.loads(line) for line in bundle.iter_records("applications")]
    assert records == inputs["records"]
    pdf = base64.b64decode(inputs["attachments"][0]["content_b64"])
    assert bundle.read_item(f"att/{hashlib.sha256(pdf).hexdigest()}") == pdf


@pytest.mark.parametrize("suite", ["intl", "gm"])
def test_reencoding_the_inputs_gives_identical_bytes(suite: str) -> None:
    inputs = load(suite)
    assert encode(inputs) == (VECTORS / f"{suite}.peb").read_bytes()
    # The stored inputs are exactly what the generator derives (keys included).
    regenerated = vector_inputs(suite)
    assert {k: v for k, v in inputs.items() if k != "bundle_sha256"} == regenerated


@pytest.mark.parametrize("suite", ["intl", "gm"])
def test_vector_needs_the_receivers_private_key(suite: str, tmp_path: Path) -> None:
    inputs = load(suite)
    path = tmp_path / "b.peb"
    shutil.copy(VECTORS / f"{suite}.peb", path)
    with pytest.raises(BundleRejected) as raised:
        open_bundle(path, keyring(inputs), decryption_keys={})
    assert raised.value.code == "UNKNOWN_RECIPIENT_KEY"
    # A different private key under the expected id cannot open the items.
    wrong = decryption_key(inputs)
    wrong = type(wrong)(wrong.key_id, wrong.suite, hashlib.sha256(b"other").digest())
    with pytest.raises(BundleRejected) as raised:
        open_bundle(path, keyring(inputs), decryption_keys={wrong.key_id: wrong})
    assert raised.value.code == "DECRYPT_FAILED"
    # Records travel sealed: no plaintext field value appears in the file.
    assert b"NET20250301000001" not in path.read_bytes()
