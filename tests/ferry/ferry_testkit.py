"""Helpers for the ferry tests: zone keys, sample attachments and a bundle forger."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ferry import content_types as ct
from ferry.bundle import (
    MAGIC,
    SEGMENT_BYTES,
    TRAILER,
    BundleHeader,
    ItemSealer,
    merkle_root,
    sender_sealer,
)
from ferry.keys import (
    DecryptionKey,
    Keyring,
    RecipientKey,
    SigningKey,
    export_public_key,
    generate_zone_key,
    load_decryption_keys,
    load_keyring,
    load_recipient_key,
    load_signing_key,
)
from ferry.suites import get_suite


@dataclass(frozen=True)
class ZonePair:
    """The internet zone signs inbound bundles; the admin zone trusts its public key."""

    sender: SigningKey
    keyring: Keyring
    sender_dir: Path
    receiver_dir: Path
    recipient: RecipientKey
    decryption: dict[str, DecryptionKey]


def make_zone_pair(root: Path, suite: str = "intl") -> ZonePair:
    """Both zones' keys: the internet zone signs and seals to the admin zone's encryption key."""
    sender_dir, receiver_dir = root / "internet-keys", root / "admin-keys"
    generate_zone_key(sender_dir, "internet", suite)
    generate_zone_key(receiver_dir, "admin", suite)
    export_public_key(sender_dir, "internet", receiver_dir)
    export_public_key(receiver_dir, "admin", sender_dir)
    return ZonePair(
        sender=load_signing_key(sender_dir, "internet"),
        keyring=load_keyring(receiver_dir),
        sender_dir=sender_dir,
        receiver_dir=receiver_dir,
        recipient=load_recipient_key(sender_dir, "admin"),
        decryption=load_decryption_keys(receiver_dir, "admin"),
    )


def header(**changes: Any) -> BundleHeader:
    fields: dict[str, Any] = {
        "channel": "inbound",
        "sequence": 7,
        "previous_digest": "ab" * 32,
        "created_at": "2025-03-01T08:00:00+08:00",
        "catalogue_version": "2025.1",
        "counts": {"applications": 2},
    }
    fields.update(changes)
    return BundleHeader(**fields)


# Sample files of every allowed type (only their first bytes matter to the sniffer).
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
XML_BYTES = b'<?xml version="1.0" encoding="UTF-8"?>\n<form><name>x</name></form>\n'
XML_BOM_BYTES = b"\xef\xbb\xbf" + XML_BYTES
EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00This program cannot be run"


def zip_bytes(*members: str, streamed: bool = False) -> bytes:
    """A zip archive with the given member names (streamed: local headers use data descriptors)."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buffer = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.buffer += b
            return len(b)

    if streamed:
        out = Unseekable()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in members:
                archive.writestr(name, f"<content of {name}/>")
        return bytes(out.buffer)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in members:
            archive.writestr(name, f"<content of {name}/>")
    return buffer.getvalue()


DOCX_BYTES = zip_bytes("[Content_Types].xml", "_rels/.rels", "word/document.xml")
XLSX_BYTES = zip_bytes("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml")
OFD_BYTES = zip_bytes("OFD.xml", "Doc_0/Document.xml")
PLAIN_ZIP_BYTES = zip_bytes("readme.txt", "src/main.py")


def ole_bytes(*stream_names: str, directory_sector: int = 0) -> bytes:
    """A minimal OLE compound file: header, then one directory sector with the given streams."""
    sector = 512
    head = bytearray(sector)
    head[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHH", head, 0x1A, 3, 0xFFFE, 9)  # version 3, little-endian, 512-byte sectors
    struct.pack_into("<I", head, 0x30, directory_sector)
    directory = bytearray(sector)
    for index, name in enumerate(("Root Entry", *stream_names)):
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        entry = index * 128
        directory[entry : entry + len(encoded)] = encoded
        struct.pack_into("<HB", directory, entry + 0x40, len(encoded), 5 if index == 0 else 2)
    return bytes(head + directory)


DOC_BYTES = ole_bytes("WordDocument", "\x05SummaryInformation")
XLS_BYTES = ole_bytes("Workbook", "\x05SummaryInformation")
OLE_FAR_DIRECTORY_BYTES = ole_bytes("WordDocument", directory_sector=4000)

SAMPLES: dict[str, bytes] = {
    ct.PDF: PDF_BYTES,
    ct.OFD: OFD_BYTES,
    ct.JPEG: JPEG_BYTES,
    ct.PNG: PNG_BYTES,
    ct.MSWORD: DOC_BYTES,
    ct.DOCX: DOCX_BYTES,
    ct.MSEXCEL: XLS_BYTES,
    ct.XLSX: XLSX_BYTES,
    ct.XML: XML_BYTES,
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def forge_bundle(
    path: Path,
    key: SigningKey,
    recipient: RecipientKey | None,
    items: list[tuple[dict[str, Any], bytes]],
    *,
    manifest_changes: dict[str, Any] | None = None,
    encode: Callable[[dict[str, Any]], bytes] | None = None,
) -> Path:
    """Assemble and sign a bundle by hand, bypassing the writer's checks.

    This plays a sender that holds a trusted key but does not follow the rules (a bug or a
    compromised zone), so the receiver's own checks can be tested one at a time. Item
    dicts default size and sha256 from the content.
    """
    changes = manifest_changes or {}
    header = BundleHeader(
        channel=changes.get("channel", "inbound"),
        sequence=changes.get("sequence", 1) if isinstance(changes.get("sequence", 1), int) else 1,
        previous_digest=None,
        created_at="2025-03-01T08:00:00+08:00",
        catalogue_version="2025.1",
        counts={},
    )
    if recipient is None:
        # A recipient nobody holds the private key of: enough for checks made before decryption.
        from ferry.suites import get_suite as _suite

        crypto = _suite(key.suite)
        public = crypto.agreement_public_key(crypto.generate_agreement_key())
        recipient = RecipientKey(crypto.key_id(public), key.suite, public)
    sealer, encryption = sender_sealer(header, key, recipient)
    entries = []
    bodies = []
    for index, (spec, content) in enumerate(items):
        declared = spec.get("sha256", sha(content))
        sealed = seal_for_forgery(sealer, index, declared, content)
        entry = {
            "size": len(content),
            "sha256": declared,
            "stored_size": len(sealed),
            "stored_sha256": sha(sealed),
            **spec,
        }
        entries.append(entry)
        bodies.append(sealed)
    manifest: dict[str, Any] = {
        "format": "pehub-bundle/2",
        "channel": "inbound",
        "sequence": 1,
        "previous_digest": None,
        "created_at": "2025-03-01T08:00:00+08:00",
        "sender_key_id": key.key_id,
        "suite": key.suite,
        "catalogue_version": "2025.1",
        "counts": {},
        "encryption": encryption.to_dict(),
        "items": entries,
        "merkle_root": merkle_root([e["stored_sha256"] for e in entries]),
    }
    manifest.update(changes)
    manifest_bytes = (encode or (lambda m: orjson.dumps(m, option=orjson.OPT_SORT_KEYS)))(manifest)
    signature = get_suite(key.suite).sign(key.private, MAGIC + manifest_bytes)
    body = b"".join(bodies)
    trailer = TRAILER.pack(len(manifest_bytes), len(signature), MAGIC)
    path.write_bytes(MAGIC + body + manifest_bytes + signature + trailer)
    return path


def seal_for_forgery(sealer: ItemSealer, index: int, declared_sha256: str, content: bytes) -> bytes:
    """Seal ``content`` as item ``index`` under the key of ``declared_sha256`` (which may lie)."""
    key = sealer.item_key(index, declared_sha256)
    count = max(1, -(-len(content) // SEGMENT_BYTES))
    return b"".join(
        sealer.seal(
            key, index, j, j == count - 1, content[j * SEGMENT_BYTES : (j + 1) * SEGMENT_BYTES]
        )
        for j in range(count)
    )
