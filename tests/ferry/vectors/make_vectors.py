"""Regenerate the ferry test vectors: ``python -m tests.ferry.vectors.make_vectors``.

Keys are fixed (derived from a label with SHA-256), so the output is reproducible; the
tests check that decoding gives the inputs back and that re-encoding gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from ferry.bundle import BundleHeader, ItemSource, records_item, write_bundle
from ferry.keys import DecryptionKey, RecipientKey, SigningKey
from ferry.suites import get_suite

HERE = Path(__file__).parent
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
RECORDS = [
    {"net_id": "NET20250301000001", "item_code": "000101", "applicant": {"name": "张三"}},
    {"net_id": "NET20250301000002", "item_code": "000102", "note": "line\nbreak"},
]


def scalar(label: str) -> bytes:
    """A fixed private key: SHA-256 of the label (valid for X25519, Ed25519 and SM2)."""
    return hashlib.sha256(label.encode()).digest()


def vector_inputs(suite_name: str) -> dict[str, Any]:
    suite = get_suite(suite_name)
    signing = scalar(f"{suite_name} internet signing key")
    encryption = scalar(f"{suite_name} admin encryption key")
    return {
        "suite": suite_name,
        "signing_private": signing.hex(),
        "signing_key_id": suite.key_id(suite.public_key(signing)),
        "signing_public": suite.public_key(signing).hex(),
        "encryption_private": encryption.hex(),
        "encryption_key_id": suite.key_id(suite.agreement_public_key(encryption)),
        "encryption_public": suite.agreement_public_key(encryption).hex(),
        "header": {
            "channel": "inbound",
            "sequence": 1,
            "previous_digest": None,
            "created_at": "2025-03-01T08:00:00+08:00",
            "catalogue_version": "2025.1",
            "counts": {"applications": len(RECORDS)},
        },
        "records": RECORDS,
        "attachments": [
            {"media_type": "application/pdf", "content_b64": base64.b64encode(PDF).decode()}
        ],
    }


def encode(inputs: dict[str, Any]) -> bytes:
    """The bundle the inputs describe."""
    suite = inputs["suite"]
    key = SigningKey(inputs["signing_key_id"], suite, bytes.fromhex(inputs["signing_private"]))
    recipient = RecipientKey(
        inputs["encryption_key_id"], suite, bytes.fromhex(inputs["encryption_public"])
    )
    items = [records_item("applications", inputs["records"])]
    for attachment in inputs["attachments"]:
        data = base64.b64decode(attachment["content_b64"])
        name = f"att/{hashlib.sha256(data).hexdigest()}"
        items.append(ItemSource.from_bytes(name, "attachment", attachment["media_type"], data))
    out = io.BytesIO()
    write_bundle(out, BundleHeader(**inputs["header"]), items, key, recipient=recipient)
    return out.getvalue()


def decryption_key(inputs: dict[str, Any]) -> DecryptionKey:
    return DecryptionKey(
        inputs["encryption_key_id"], inputs["suite"], bytes.fromhex(inputs["encryption_private"])
    )


def main() -> None:
    for suite_name in ("intl", "gm"):
        inputs = vector_inputs(suite_name)
        data = encode(inputs)
        inputs["bundle_sha256"] = hashlib.sha256(data).hexdigest()
        (HERE / f"{suite_name}.peb").write_bytes(data)
        (HERE / f"{suite_name}.json").write_text(
            json.dumps(inputs, ensure_ascii=False, indent=1) + "\n", "utf-8"
        )
        print(f"{suite_name}: {len(data)} bytes, sha256 {inputs['bundle_sha256']}")


if __name__ == "__main__":
    main()
