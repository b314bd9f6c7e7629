"""The bundle codec: one signed, encrypted file per ferry crossing, written in one pass.

Byte layout (format ``pehub-bundle/2``; docs/ferry.md is the full specification)::

    offset 0        MAGIC             8 bytes  b"PEXHUB\\x00\\x02" (last two bytes: format version)
    8               items             every item's sealed bytes, concatenated in manifest order
    P               manifest          M bytes  canonical JSON (see below)
    P + M           signature         S bytes  suite signature over MAGIC + manifest bytes
    P + M + S       trailer           14 bytes struct ">IH8s": M (u32), S (u16), MAGIC

The manifest is canonical JSON (orjson, sorted keys, UTF-8, no whitespace) with exactly the
keys format, channel, sequence, previous_digest, created_at, sender_key_id, suite,
catalogue_version, counts, encryption {recipient_key_id, ephemeral_public, segment_bytes},
items [{name, kind, media_type, size, sha256, stored_size, stored_sha256}] and merkle_root.
``size``/``sha256`` describe an item's plaintext (attachments are named ``att/<sha256>``);
``stored_size``/``stored_sha256`` describe its sealed bytes in the file, so a receiver
checks signature, sizes and hashes before it decrypts anything. The Merkle root is over the
``stored_sha256`` digests.

Each item is sealed to the receiving zone in segments of SEGMENT_BYTES plaintext bytes
(the last one shorter; an empty item is one empty segment), each an AEAD ciphertext with
a 16-byte tag, a nonce of (segment index, final flag) and associated data binding the item
index, segment index and final flag: truncation, reordering and splicing are all detected.
Keys: a per-bundle ephemeral key derived from the sender's private key and the header (so
the same content gives the same bytes), key agreement with the receiver's encryption key,
then one key per item derived from the item's index and plaintext SHA-256.

The reader (:func:`open_bundle`) verifies before it parses: trailer and magic, then the
signature (and the signing key's expiry) with only ``sender_key_id`` read before that, then
the manifest structure, channel and recipient key, then sizes, names and the Merkle root,
then every item's stored hash, AEAD tags, plaintext hash, type and record lengths.
Anything wrong raises :class:`BundleRejected` with a reason code. A caller that needs
items' plaintext (attachments for the store) can take it during that same pass through an
:class:`ItemSink`, instead of reading and decrypting the file a second time.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

import orjson

from ferry.content_types import ALLOWED_MEDIA_TYPES, SNIFF_BYTES, content_matches
from ferry.hashing import HashWorker, WorkerSha256
from ferry.keys import DecryptionKey, Keyring, RecipientKey, SigningKey, is_expired
from ferry.suites import AEAD_TAG_BYTES, SUITES, CryptoSuite, DecryptionFailed, get_suite
from ferry.transport import open_regular
from schemas.exceptions import TerminalError

MAGIC_PREFIX = b"PEXHUB\x00"
FORMAT_VERSION = 2
MAGIC = MAGIC_PREFIX + bytes([FORMAT_VERSION])
FORMAT = "pehub-bundle/2"
SEGMENT_BYTES = 1024 * 1024
TRAILER = struct.Struct(">IH8s")
CHANNELS = ("inbound", "outbound")
RECORDS = "records"
ATTACHMENT = "attachment"
RECORDS_MEDIA_TYPE = "application/x-ndjson"
MAX_SIGNATURE_BYTES = 1024
CHUNK_BYTES = 1024 * 1024

_MiB = 1024 * 1024
_GiB = 1024 * _MiB
_MAX_INT = 2**63 - 1
_MAX_TEXT = 256

# Reason codes of BundleRejected (machine-readable; quarantine records them).
BAD_MAGIC = "BAD_MAGIC"
TRUNCATED = "TRUNCATED"
MANIFEST_TOO_LARGE = "MANIFEST_TOO_LARGE"
UNKNOWN_KEY = "UNKNOWN_KEY"
BAD_SIGNATURE = "BAD_SIGNATURE"
MANIFEST_INVALID = "MANIFEST_INVALID"
WRONG_CHANNEL = "WRONG_CHANNEL"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
SIZE_MISMATCH = "SIZE_MISMATCH"
HASH_MISMATCH = "HASH_MISMATCH"
MERKLE_MISMATCH = "MERKLE_MISMATCH"
BAD_ITEM_NAME = "BAD_ITEM_NAME"
ATTACHMENT_TYPE = "ATTACHMENT_TYPE"
UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
KEY_EXPIRED = "KEY_EXPIRED"
UNKNOWN_RECIPIENT_KEY = "UNKNOWN_RECIPIENT_KEY"
DECRYPT_FAILED = "DECRYPT_FAILED"

REASON_CODES = (
    BAD_MAGIC, UNSUPPORTED_VERSION, TRUNCATED, MANIFEST_TOO_LARGE, UNKNOWN_KEY, KEY_EXPIRED,
    BAD_SIGNATURE, MANIFEST_INVALID, WRONG_CHANNEL, UNKNOWN_RECIPIENT_KEY, LIMIT_EXCEEDED,
    SIZE_MISMATCH, HASH_MISMATCH, MERKLE_MISMATCH, DECRYPT_FAILED, BAD_ITEM_NAME,
    ATTACHMENT_TYPE,
)

_RECORD_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")
_RECORDS_NAME = re.compile(r"records/([a-z][a-z0-9_]{0,63})\.jsonl")
_ATTACHMENT_NAME = re.compile(r"att/([0-9a-f]{64})")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MANIFEST_KEYS = frozenset(
    {
        "format",
        "channel",
        "sequence",
        "previous_digest",
        "created_at",
        "sender_key_id",
        "suite",
        "catalogue_version",
        "counts",
        "encryption",
        "items",
        "merkle_root",
    }
)
_ITEM_KEYS = frozenset(
    {"name", "kind", "media_type", "size", "sha256", "stored_size", "stored_sha256"}
)
_ENCRYPTION_KEYS = frozenset({"recipient_key_id", "ephemeral_public", "segment_bytes"})
_HEX_KEY = re.compile(r"(?:[0-9a-f]{2}){16,128}")


class BundleRejected(TerminalError):
    """A bundle (or the content given to the writer) breaks the format or a limit."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    def __reduce__(self) -> tuple[type[BundleRejected], tuple[str, str]]:
        return (type(self), (self.code, self.detail))


@dataclass(frozen=True)
class Limits:
    """What a receiver accepts; the writer applies the same limits so it never sends a reject."""

    max_bundle_bytes: int = 2 * _GiB
    max_manifest_bytes: int = 16 * _MiB
    max_items: int = 200_000
    max_record_item_bytes: int = 1 * _GiB
    max_attachment_bytes: int = 50 * _MiB
    max_record_bytes: int = 1 * _MiB
    max_records: int = 10_000_000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")
        if self.max_manifest_bytes > 0xFFFFFFFF:
            raise ValueError("Limits.max_manifest_bytes must fit in 32 bits")


@dataclass(frozen=True)
class ItemSource:
    """One item to pack: its name, kind, media type and a way to open its content.

    The writer needs the content's SHA-256 before it seals the item (the item key is
    derived from it): attachments carry it in their name, ``sha256`` may give it, and
    otherwise the writer reads the content twice (once to hash it). ``open`` must give the
    same bytes each time.
    """

    name: str
    kind: str
    media_type: str
    open: Callable[[], BinaryIO]
    sha256: str | None = None

    @classmethod
    def from_bytes(cls, name: str, kind: str, media_type: str, data: bytes) -> ItemSource:
        return cls(
            name, kind, media_type, lambda: io.BytesIO(data), hashlib.sha256(data).hexdigest()
        )

    @classmethod
    def from_path(cls, name: str, kind: str, media_type: str, path: Path) -> ItemSource:
        return cls(name, kind, media_type, lambda: path.open("rb"))


class Writable(Protocol):
    """Where the writer puts a bundle's bytes: a binary file, or anything with ``write``."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class BundleHeader:
    """What the caller decides about a bundle; the codec adds key, items and Merkle root."""

    channel: str
    sequence: int
    previous_digest: str | None
    created_at: str
    catalogue_version: str
    counts: dict[str, int]


@dataclass(frozen=True)
class ManifestItem:
    name: str
    kind: str
    media_type: str
    size: int
    sha256: str
    stored_size: int
    stored_sha256: str


@dataclass(frozen=True)
class Encryption:
    """How the items are sealed: to which receiver key, with which ephemeral public key."""

    recipient_key_id: str
    ephemeral_public: str
    segment_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipient_key_id": self.recipient_key_id,
            "ephemeral_public": self.ephemeral_public,
            "segment_bytes": self.segment_bytes,
        }


@dataclass(frozen=True)
class Manifest:
    """The signed description of a bundle (see the module docstring for each field)."""

    format: str
    channel: str
    sequence: int
    previous_digest: str | None
    created_at: str
    sender_key_id: str
    suite: str
    catalogue_version: str
    counts: dict[str, int]
    encryption: Encryption
    items: tuple[ManifestItem, ...]
    merkle_root: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "channel": self.channel,
            "sequence": self.sequence,
            "previous_digest": self.previous_digest,
            "created_at": self.created_at,
            "sender_key_id": self.sender_key_id,
            "suite": self.suite,
            "catalogue_version": self.catalogue_version,
            "counts": dict(self.counts),
            "encryption": self.encryption.to_dict(),
            "items": [
                {
                    "name": i.name,
                    "kind": i.kind,
                    "media_type": i.media_type,
                    "size": i.size,
                    "sha256": i.sha256,
                    "stored_size": i.stored_size,
                    "stored_sha256": i.stored_sha256,
                }
                for i in self.items
            ],
            "merkle_root": self.merkle_root,
        }

    def encode(self) -> bytes:
        """The canonical manifest bytes (the ones that are signed)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_dict(cls, obj: object) -> Manifest:
        """Check the structure and types of a decoded manifest; MANIFEST_INVALID if wrong."""
        if not isinstance(obj, dict) or set(obj) != _MANIFEST_KEYS:
            raise BundleRejected(
                MANIFEST_INVALID, "manifest must be an object with the format's keys"
            )
        if obj["format"] != FORMAT:
            raise BundleRejected(MANIFEST_INVALID, f"format {_show(obj['format'])} is not {FORMAT}")
        _check_header_fields(
            obj["channel"],
            obj["sequence"],
            obj["previous_digest"],
            obj["created_at"],
            obj["catalogue_version"],
            obj["counts"],
        )
        for key in ("sender_key_id", "suite"):
            if not _is_text(obj[key]):
                raise BundleRejected(MANIFEST_INVALID, f"{key} must be a short string")
        if not isinstance(obj["merkle_root"], str) or not _HEX64.fullmatch(obj["merkle_root"]):
            raise BundleRejected(MANIFEST_INVALID, "merkle_root must be 64 lowercase hex digits")
        raw_items = obj["items"]
        if not isinstance(raw_items, list):
            raise BundleRejected(MANIFEST_INVALID, "items must be a list")
        items = tuple(_manifest_item(raw, index) for index, raw in enumerate(raw_items))
        encryption = _encryption(obj["encryption"])
        return cls(
            format=obj["format"],
            channel=obj["channel"],
            sequence=obj["sequence"],
            previous_digest=obj["previous_digest"],
            created_at=obj["created_at"],
            sender_key_id=obj["sender_key_id"],
            suite=obj["suite"],
            catalogue_version=obj["catalogue_version"],
            counts=dict(obj["counts"]),
            encryption=encryption,
            items=items,
            merkle_root=obj["merkle_root"],
        )


def bundle_file_name(channel: str, sequence: int) -> str:
    """The transport name of a bundle, e.g. ``inbound-000000000042.peb``."""
    if channel not in CHANNELS or not _is_int_in(sequence, 1, 10**12 - 1):
        raise ValueError(f"no bundle file name for channel {channel!r}, sequence {sequence!r}")
    return f"{channel}-{sequence:012d}.peb"


def records_name(kind: str) -> str:
    """The item name of a record kind, e.g. ``records/applications.jsonl``."""
    if not isinstance(kind, str) or not _RECORD_KIND.fullmatch(kind):
        raise ValueError(f"record kind {kind!r} must match {_RECORD_KIND.pattern}")
    return f"records/{kind}.jsonl"


def attachment_name(sha256_hex: str) -> str:
    """The item name of an attachment with this content digest."""
    if not _HEX64.fullmatch(sha256_hex):
        raise ValueError("an attachment name needs a lowercase hex SHA-256")
    return f"att/{sha256_hex}"


T = TypeVar("T")


def drained(items: list[T]) -> Iterator[T]:
    """The items of ``items`` in order, each removed from the list as it is handed out: given
    to :func:`records_item`, a batch's records are let go as they are encoded, so the
    records and their encoded lines are never all in memory together."""
    items.reverse()
    while items:
        yield items.pop()


def record_line(record: Mapping[str, Any]) -> bytes:
    """One record as its deterministic JSON Lines line (sorted keys, ``\n``-terminated)."""
    return orjson.dumps(dict(record), option=orjson.OPT_SORT_KEYS) + b"\n"


def records_item(kind: str, records: Iterable[Mapping[str, Any]]) -> ItemSource:
    """Encode ``records`` as deterministic JSON Lines (sorted keys), in memory."""
    return lines_item(kind, [record_line(record) for record in records])


def lines_item(kind: str, lines: Iterable[bytes]) -> ItemSource:
    """The records item of lines already encoded by :func:`record_line`."""
    return ItemSource.from_bytes(records_name(kind), RECORDS, RECORDS_MEDIA_TYPE, b"".join(lines))


def merkle_root(digests: Sequence[str]) -> str:
    """Merkle root (hex) over hex SHA-256 digests, as specified in the module docstring."""
    if not digests:
        return hashlib.sha256(b"").hexdigest()
    level = [hashlib.sha256(b"\x00" + bytes.fromhex(d)).digest() for d in digests]
    while len(level) > 1:
        parents = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            parents.append(level[-1])
        level = parents
    return level[0].hex()


def segment_count(size: int) -> int:
    """Number of AEAD segments of an item of ``size`` plaintext bytes (at least one)."""
    return max(1, -(-size // SEGMENT_BYTES))


def stored_size(size: int) -> int:
    """Sealed size of an item of ``size`` plaintext bytes."""
    return size + AEAD_TAG_BYTES * segment_count(size)


class ItemSealer:
    """The key schedule of one bundle (docs/ferry.md, "Encryption"): the bundle secret
    shared by sender and receiver, and from it one AEAD key per item."""

    def __init__(self, suite: CryptoSuite, bundle_secret: bytes, channel: str, sequence: int):
        self.suite = suite
        self._secret = bundle_secret
        self._prefix = channel.encode("ascii") + b"\x00" + sequence.to_bytes(8, "big")

    def __repr__(self) -> str:
        return f"ItemSealer(suite={self.suite.name!r}, secret=<redacted>)"

    def item_key(self, index: int, plain_sha256: str) -> bytes:
        info = b"pehub-bundle/2 item\x00" + self._prefix + index.to_bytes(4, "big")
        return self.suite.kdf(self._secret, info + bytes.fromhex(plain_sha256), self.suite.aead_key_bytes)

    @staticmethod
    def nonce(segment: int, final: bool) -> bytes:
        return segment.to_bytes(8, "big") + (1 if final else 0).to_bytes(4, "big")

    @staticmethod
    def aad(index: int, segment: int, final: bool) -> bytes:
        return FORMAT.encode("ascii") + struct.pack(">IQB", index, segment, 1 if final else 0)

    def seal(self, key: bytes, index: int, segment: int, final: bool, data: bytes) -> bytes:
        return self.suite.seal(
            key, self.nonce(segment, final), data, self.aad(index, segment, final)
        )

    def open(self, key: bytes, index: int, segment: int, final: bool, data: bytes) -> bytes:
        return self.suite.open(
            key, self.nonce(segment, final), data, self.aad(index, segment, final)
        )

    def seal_all(self, index: int, plain_sha256: str, data: bytes) -> bytes:
        """All segments of one item in memory (test vectors and forgers use this)."""
        key = self.item_key(index, plain_sha256)
        count = segment_count(len(data))
        return b"".join(
            self.seal(key, index, j, j == count - 1, data[j * SEGMENT_BYTES : (j + 1) * SEGMENT_BYTES])
            for j in range(count)
        )


def _header_bytes(header: BundleHeader, sender_key_id: str, recipient_key_id: str) -> bytes:
    fields = {
        "channel": header.channel,
        "sequence": header.sequence,
        "previous_digest": header.previous_digest,
        "created_at": header.created_at,
        "catalogue_version": header.catalogue_version,
        "counts": dict(header.counts),
        "sender_key_id": sender_key_id,
        "recipient_key_id": recipient_key_id,
    }
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


def _bundle_secret(suite: CryptoSuite, shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return suite.kdf(shared, b"pehub-bundle/2 bundle\x00" + ephemeral + recipient, 32)


def sender_sealer(
    header: BundleHeader, key: SigningKey, recipient: RecipientKey
) -> tuple[ItemSealer, Encryption]:
    """The sender's side of the key schedule: deterministic ephemeral key, agreement, sealer."""
    suite = get_suite(key.suite)
    seed = suite.kdf(
        key.private,
        b"pehub-bundle/2 ephemeral\x00" + _header_bytes(header, key.key_id, recipient.key_id),
        64,
    )
    ephemeral_private = suite.agreement_private_from_seed(seed)
    ephemeral_public = suite.agreement_public_key(ephemeral_private)
    try:
        shared = suite.agree(ephemeral_private, recipient.public)
    except DecryptionFailed:
        raise TerminalError(f"the recipient key {recipient.key_id} is not a valid public key") from None
    secret = _bundle_secret(suite, shared, ephemeral_public, recipient.public)
    encryption = Encryption(recipient.key_id, ephemeral_public.hex(), SEGMENT_BYTES)
    return ItemSealer(suite, secret, header.channel, header.sequence), encryption


def receiver_sealer(manifest: Manifest, key: DecryptionKey) -> ItemSealer:
    """The receiver's side: agreement of its private key with the bundle's ephemeral key."""
    suite = get_suite(key.suite)
    ephemeral = bytes.fromhex(manifest.encryption.ephemeral_public)
    try:
        shared = suite.agree(key.private, ephemeral)
    except DecryptionFailed as failed:
        raise BundleRejected(DECRYPT_FAILED, str(failed)) from None
    own_public = suite.agreement_public_key(key.private)
    secret = _bundle_secret(suite, shared, ephemeral, own_public)
    return ItemSealer(suite, secret, manifest.channel, manifest.sequence)


def _plain_digest(source: ItemSource) -> str:
    if source.kind == ATTACHMENT:
        match = _ATTACHMENT_NAME.fullmatch(source.name)
        if match:
            return match.group(1)
    if source.sha256 is not None:
        return source.sha256
    sha = hashlib.sha256()
    with source.open() as content:
        while chunk := content.read(CHUNK_BYTES):
            sha.update(chunk)
    return sha.hexdigest()


def _segments(content: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """(segment, is_final) over a stream, reading one segment ahead."""
    current = content.read(SEGMENT_BYTES)
    while True:
        following = content.read(SEGMENT_BYTES) if len(current) == SEGMENT_BYTES else b""
        yield current, not following
        if not following:
            return
        current = following


def write_bundle(
    dest: Writable,
    header: BundleHeader,
    items: Iterable[ItemSource],
    key: SigningKey,
    *,
    recipient: RecipientKey,
    limits: Limits = Limits(),
) -> Manifest:
    """Stream ``items`` sealed to ``recipient`` into ``dest``, append the signed manifest;
    return the manifest. Deterministic: the same arguments give the same bytes.

    Raises BundleRejected for content the receiver would refuse (bad names, types, sizes,
    counts); ``dest`` then holds a partial bundle and must be discarded.
    """
    return write_bundle_and_digest(
        dest, header, items, key, recipient=recipient, limits=limits
    )[0]


def write_bundle_and_digest(
    dest: Writable,
    header: BundleHeader,
    items: Iterable[ItemSource],
    key: SigningKey,
    *,
    recipient: RecipientKey,
    limits: Limits = Limits(),
) -> tuple[Manifest, str]:
    """:func:`write_bundle`, also returning the SHA-256 (hex) of every byte written, i.e.
    the bundle's digest, so the sender need not read the file again."""
    with HashWorker() as worker:
        out = _HashingOutput(dest, worker.sha256())
        manifest = _write_bundle(out, header, items, key, recipient, limits, worker)
        return manifest, out.digest.hexdigest()


class _HashingOutput:
    """Writes to a stream and hashes what it writes (on the hash worker)."""

    def __init__(self, dest: Writable, digest: WorkerSha256) -> None:
        self.dest = dest
        self.digest = digest

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.dest.write(data)


def _write_bundle(
    dest: _HashingOutput,
    header: BundleHeader,
    items: Iterable[ItemSource],
    key: SigningKey,
    recipient: RecipientKey,
    limits: Limits,
    worker: HashWorker,
) -> Manifest:
    suite = get_suite(key.suite)
    if suite.key_id(suite.public_key(key.private)) != key.key_id:
        raise TerminalError(f"signing key {key.key_id} does not match its key id")
    if recipient.suite != key.suite:
        raise TerminalError(
            f"the recipient key {recipient.key_id} is not of the sender's suite {key.suite}"
        )
    _check_header_fields(
        header.channel,
        header.sequence,
        header.previous_digest,
        header.created_at,
        header.catalogue_version,
        header.counts,
    )
    sealer, encryption = sender_sealer(header, key, recipient)
    dest.write(MAGIC)
    written = len(MAGIC)
    entries: list[ManifestItem] = []
    names: set[str] = set()
    lines: dict[str, int] = {}
    for index, source in enumerate(items):
        if len(entries) >= limits.max_items:
            raise BundleRejected(LIMIT_EXCEEDED, f"more than {limits.max_items} items")
        _check_item_declaration(source.name, source.kind, source.media_type)
        if source.name in names:
            raise BundleRejected(BAD_ITEM_NAME, f"duplicate item {_show(source.name)}")
        names.add(source.name)
        declared = _plain_digest(source)
        item_key = sealer.item_key(index, declared)
        check = _ItemCheck(source.name, source.kind, source.media_type, limits)
        stored = worker.sha256()  # beside the plaintext hash and sealing, on another core
        stored_bytes = 0
        with source.open() as content:
            for segment, (plain, final) in enumerate(_segments(content)):
                check.feed(plain)
                sealed = sealer.seal(item_key, index, segment, final, plain)
                stored.update(sealed)
                stored_bytes += len(sealed)
                written += len(sealed)
                if written > limits.max_bundle_bytes:
                    raise BundleRejected(
                        LIMIT_EXCEEDED, f"bundle exceeds {limits.max_bundle_bytes} bytes"
                    )
                dest.write(sealed)
        digest = check.finish()
        if digest != declared:
            code = HASH_MISMATCH
            raise BundleRejected(code, f"{source.name} holds content with SHA-256 {digest}")
        if check.lines is not None:
            lines[source.name] = check.lines.count
            _check_record_total(lines, limits)
        entries.append(
            ManifestItem(
                source.name, source.kind, source.media_type, check.size, digest,
                stored_bytes, stored.hexdigest(),
            )
        )
    manifest = Manifest(
        format=FORMAT,
        channel=header.channel,
        sequence=header.sequence,
        previous_digest=header.previous_digest,
        created_at=header.created_at,
        sender_key_id=key.key_id,
        suite=key.suite,
        catalogue_version=header.catalogue_version,
        counts=dict(header.counts),
        encryption=encryption,
        items=tuple(entries),
        merkle_root=merkle_root([e.stored_sha256 for e in entries]),
    )
    _check_counts(manifest, lines)
    manifest_bytes = manifest.encode()
    if len(manifest_bytes) > limits.max_manifest_bytes:
        raise BundleRejected(MANIFEST_TOO_LARGE, f"manifest of {len(manifest_bytes)} bytes")
    signature = suite.sign(key.private, MAGIC + manifest_bytes)
    tail = manifest_bytes + signature + TRAILER.pack(len(manifest_bytes), len(signature), MAGIC)
    if written + len(tail) > limits.max_bundle_bytes:
        raise BundleRejected(LIMIT_EXCEEDED, f"bundle exceeds {limits.max_bundle_bytes} bytes")
    dest.write(tail)
    return manifest


class ItemSink(Protocol):
    """Takes items' plaintext while :func:`open_bundle` verifies them, in the same pass.

    Only the plaintext of segments whose AEAD tag verified is written. ``end`` is called
    once the item passed every check (stored hash, tags, plaintext hash, content type);
    until then what was written is unverified. If :func:`open_bundle` raises, the owner
    of the sink must discard everything it was given.
    """

    def begin(self, item: ManifestItem) -> BinaryIO | None:
        """A stream for ``item``'s plaintext, or None to leave the item out."""

    def end(self, item: ManifestItem) -> None:
        """``item`` was written completely and verified."""


class VerifiedBundle:
    """A bundle file that passed :func:`open_bundle`; item reads decrypt and re-check.

    The file may change after verification, so every read re-checks each segment's AEAD
    tag and the item's plaintext SHA-256, raising at the end if it differs: consumers apply
    what they read only after the read has completed (for :meth:`iter_records`, after the
    iterator is exhausted).
    """

    def __init__(
        self,
        manifest: Manifest,
        digest: str,
        path: Path,
        limits: Limits,
        offsets: Mapping[str, int],
        file_size: int,
        sealer: ItemSealer,
    ) -> None:
        self.manifest = manifest
        self.digest = digest
        self.path = path
        self.limits = limits
        self._offsets = dict(offsets)
        self._items = {item.name: item for item in manifest.items}
        self._index = {item.name: i for i, item in enumerate(manifest.items)}
        self._file_size = file_size
        self._sealer = sealer

    def __repr__(self) -> str:
        m = self.manifest
        return f"VerifiedBundle({m.channel} #{m.sequence}, digest={self.digest[:16]}, path={self.path})"

    def item(self, name: str) -> ManifestItem:
        """The manifest entry of ``name``; KeyError if the bundle has no such item."""
        return self._items[name]

    def read_item(self, name: str) -> bytes:
        return b"".join(self._chunks(name))

    def copy_item(self, name: str, dest: BinaryIO) -> None:
        """Stream an item's plaintext into ``dest``; on an error, discard what was written."""
        dest.writelines(self._chunks(name))

    def iter_records(self, kind: str) -> Iterator[bytes]:
        """Each line (one JSON record, without the newline) of ``records/<kind>.jsonl``."""
        name = records_name(kind)
        limit = self.limits.max_record_bytes
        pending = b""
        for chunk in self._chunks(name):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if len(line) > limit:
                    raise BundleRejected(
                        LIMIT_EXCEEDED, f"a record in {name} exceeds {limit} bytes"
                    )
                yield line
            if len(pending) > limit:
                raise BundleRejected(LIMIT_EXCEEDED, f"a record in {name} exceeds {limit} bytes")
        if pending:
            yield pending

    def _chunks(self, name: str) -> Iterator[bytes]:
        item = self._items[name]
        index = self._index[name]
        # The plaintext hash runs on the hash worker, beside the caller's use of the chunks.
        with open_regular(self.path) as f, HashWorker() as worker:
            if os.fstat(f.fileno()).st_size != self._file_size:
                raise BundleRejected(HASH_MISMATCH, f"{self.path} changed since it was verified")
            f.seek(self._offsets[name])
            sha = worker.sha256()
            key = self._sealer.item_key(index, item.sha256)
            for segment, length, final in _segment_plan(item.size):
                sealed = f.read(length + AEAD_TAG_BYTES)
                if len(sealed) != length + AEAD_TAG_BYTES:
                    raise BundleRejected(TRUNCATED, f"{self.path} ends inside {name}")
                try:
                    plain = self._sealer.open(key, index, segment, final, sealed)
                except DecryptionFailed:
                    raise BundleRejected(
                        HASH_MISMATCH, f"{name} changed since the bundle was verified"
                    ) from None
                sha.update(plain)
                yield plain
            digest = sha.hexdigest()
        if digest != item.sha256:
            raise BundleRejected(HASH_MISMATCH, f"{name} changed since the bundle was verified")


def _segment_plan(size: int) -> Iterator[tuple[int, int, bool]]:
    """(segment index, plaintext length, is_final) of each segment of an item."""
    count = segment_count(size)
    for segment in range(count):
        final = segment == count - 1
        yield segment, (size - segment * SEGMENT_BYTES) if final else SEGMENT_BYTES, final


def open_bundle(
    path: Path,
    keyring: Keyring,
    limits: Limits = Limits(),
    expected_channel: str | None = None,
    *,
    decryption_keys: Mapping[str, DecryptionKey],
    at: datetime | None = None,
    sink: ItemSink | None = None,
) -> VerifiedBundle:
    """Verify the bundle at ``path`` completely (see the module docstring); BundleRejected if not.

    ``decryption_keys`` are the receiving zone's private encryption keys by key id; ``at``
    is the time the keys' expiry is checked against (default: now). ``sink`` receives the
    plaintext of the items it asks for while they are verified (after the signature,
    manifest, sizes and Merkle root have been checked).
    """
    if expected_channel is not None and expected_channel not in CHANNELS:
        raise ValueError(f"expected_channel must be one of {CHANNELS}")
    when = at if at is not None else datetime.now(UTC)
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        # (1) Framing: size, magic, trailer.
        if size > limits.max_bundle_bytes:
            raise BundleRejected(LIMIT_EXCEEDED, f"{size} bytes exceeds {limits.max_bundle_bytes}")
        if size < len(MAGIC) + TRAILER.size:
            raise BundleRejected(TRUNCATED, f"only {size} bytes")
        start = _pread(f, 0, len(MAGIC))
        if start != MAGIC:
            if start[: len(MAGIC_PREFIX)] == MAGIC_PREFIX:
                raise BundleRejected(
                    UNSUPPORTED_VERSION, f"format version {start[-1]}, this reader reads {FORMAT_VERSION}"
                )
            raise BundleRejected(BAD_MAGIC, "not a pehub bundle")
        trailer = _pread(f, size - TRAILER.size, TRAILER.size)
        manifest_len, signature_len, end_magic = TRAILER.unpack(trailer)
        if end_magic != MAGIC:
            raise BundleRejected(TRUNCATED, "no trailer at the end of the file")
        if manifest_len > limits.max_manifest_bytes:
            raise BundleRejected(MANIFEST_TOO_LARGE, f"manifest of {manifest_len} bytes")
        if not 1 <= signature_len <= MAX_SIGNATURE_BYTES:
            raise BundleRejected(BAD_SIGNATURE, f"signature of {signature_len} bytes")
        payload_end = size - TRAILER.size - signature_len - manifest_len
        if payload_end < len(MAGIC):
            raise BundleRejected(TRUNCATED, "file shorter than its trailer says")
        manifest_bytes = _pread(f, payload_end, manifest_len)
        signature = _pread(f, payload_end + manifest_len, signature_len)

        # (2) Signature, with nothing from the unverified manifest used but the key id.
        key_id = _unverified_key_id(manifest_bytes)
        trusted = keyring.get(key_id)
        if trusted is None or trusted.suite not in SUITES:
            raise BundleRejected(UNKNOWN_KEY, f"no trusted key {_show(key_id)}")
        if not SUITES[trusted.suite].verify(trusted.public, signature, MAGIC + manifest_bytes):
            raise BundleRejected(BAD_SIGNATURE, f"signature does not verify with {key_id}")
        if is_expired(trusted.expires_at, when):
            raise BundleRejected(
                KEY_EXPIRED, f"{key_id} was rotated out and expired at {trusted.expires_at}"
            )
        manifest = _decode_manifest(manifest_bytes)
        if manifest.suite != trusted.suite:
            raise BundleRejected(
                MANIFEST_INVALID, f"suite {_show(manifest.suite)} is not the key's"
            )
        if expected_channel is not None and manifest.channel != expected_channel:
            raise BundleRejected(
                WRONG_CHANNEL, f"{manifest.channel} bundle on the {expected_channel} channel"
            )
        recipient = decryption_keys.get(manifest.encryption.recipient_key_id)
        if recipient is None or recipient.suite != manifest.suite:
            raise BundleRejected(
                UNKNOWN_RECIPIENT_KEY,
                f"sealed to {_show(manifest.encryption.recipient_key_id)}, not to a key of this zone",
            )
        if is_expired(recipient.expires_at, when):
            raise BundleRejected(
                KEY_EXPIRED,
                f"sealed to {recipient.key_id}, which expired at {recipient.expires_at}",
            )

        # (3) Sizes, limits and names, from the verified manifest alone.
        offsets = _check_layout(manifest, limits, payload_end)

        # (4) Every byte: stored hashes, then AEAD tags, plaintext hashes, types, records.
        sealer = receiver_sealer(manifest, recipient)
        tail = manifest_bytes + signature + trailer
        digest = _verify_content(f, manifest, limits, tail, sealer, sink)
    return VerifiedBundle(manifest, digest, path, limits, offsets, size, sealer)


class _RecordLines:
    """Counts JSON Lines in a stream of chunks and enforces the per-record size limit."""

    def __init__(self, name: str, max_record_bytes: int) -> None:
        self.name = name
        self.limit = max_record_bytes
        self.count = 0
        self._current = 0

    def feed(self, chunk: bytes) -> None:
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            self._current += len(chunk)
        else:
            longest = max(self._current + len(parts[0]), max(map(len, parts[1:-1]), default=0))
            self._check(longest)
            self.count += len(parts) - 1
            self._current = len(parts[-1])
        self._check(self._current)

    def finish(self) -> None:
        if self._current:
            self.count += 1

    def _check(self, length: int) -> None:
        if length > self.limit:
            raise BundleRejected(
                LIMIT_EXCEEDED, f"a record in {self.name} exceeds {self.limit} bytes"
            )


class _ItemCheck:
    """Size, hash, content type (attachments) and record lines (records) of one item's bytes."""

    def __init__(self, name: str, kind: str, media_type: str, limits: Limits) -> None:
        self.name = name
        self.media_type = media_type
        self.size = 0
        self.max_size = (
            limits.max_record_item_bytes if kind == RECORDS else limits.max_attachment_bytes
        )
        self._sha = hashlib.sha256()
        self._head: bytearray | None = bytearray() if kind == ATTACHMENT else None
        self.lines = _RecordLines(name, limits.max_record_bytes) if kind == RECORDS else None

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise BundleRejected(LIMIT_EXCEEDED, f"{self.name} exceeds {self.max_size} bytes")
        self._sha.update(chunk)
        if self._head is not None:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._check_type()
        if self.lines is not None:
            self.lines.feed(chunk)

    def finish(self) -> str:
        """The item's SHA-256 (hex), after the checks that need the whole item."""
        if self._head is not None:
            self._check_type()
        if self.lines is not None:
            self.lines.finish()
        return self._sha.hexdigest()

    def _check_type(self) -> None:
        assert self._head is not None
        if not content_matches(self.media_type, bytes(self._head)):
            raise BundleRejected(
                ATTACHMENT_TYPE, f"{self.name}: content is not {_show(self.media_type)}"
            )
        self._head = None


def _pread(f: BinaryIO, offset: int, length: int) -> bytes:
    data = os.pread(f.fileno(), length, offset)
    if len(data) != length:
        raise BundleRejected(TRUNCATED, "file shorter than expected (changed while reading?)")
    return data


def _unverified_key_id(manifest_bytes: bytes) -> str:
    """The sender key id, the only field read before the signature is verified."""
    try:
        obj = orjson.loads(manifest_bytes)
    except orjson.JSONDecodeError:
        raise BundleRejected(MANIFEST_INVALID, "manifest is not JSON") from None
    key_id = obj.get("sender_key_id") if isinstance(obj, dict) else None
    if not _is_text(key_id):
        raise BundleRejected(MANIFEST_INVALID, "manifest names no sender key")
    assert isinstance(key_id, str)
    return key_id


def _decode_manifest(manifest_bytes: bytes) -> Manifest:
    """Parse the (signed) manifest and insist on its canonical encoding."""
    try:
        obj = orjson.loads(manifest_bytes)
    except orjson.JSONDecodeError:
        raise BundleRejected(MANIFEST_INVALID, "manifest is not JSON") from None
    manifest = Manifest.from_dict(obj)
    if manifest.encode() != manifest_bytes:
        raise BundleRejected(MANIFEST_INVALID, "manifest is not in canonical form")
    return manifest


def _check_layout(manifest: Manifest, limits: Limits, payload_end: int) -> dict[str, int]:
    """Item count, names, per-item sizes, total size and Merkle root; returns item offsets."""
    if len(manifest.items) > limits.max_items:
        raise BundleRejected(
            LIMIT_EXCEEDED, f"{len(manifest.items)} items exceeds {limits.max_items}"
        )
    if manifest.encryption.segment_bytes != SEGMENT_BYTES:
        raise BundleRejected(
            MANIFEST_INVALID, f"segment_bytes must be {SEGMENT_BYTES} in {FORMAT}"
        )
    offsets: dict[str, int] = {}
    offset = len(MAGIC)
    for item in manifest.items:
        _check_item_declaration(item.name, item.kind, item.media_type)
        if item.kind == ATTACHMENT and item.name != f"att/{item.sha256}":
            raise BundleRejected(BAD_ITEM_NAME, f"{_show(item.name)} is not named by its SHA-256")
        if item.name in offsets:
            raise BundleRejected(BAD_ITEM_NAME, f"duplicate item {_show(item.name)}")
        max_size = (
            limits.max_record_item_bytes if item.kind == RECORDS else limits.max_attachment_bytes
        )
        if item.size > max_size:
            raise BundleRejected(
                LIMIT_EXCEEDED, f"{item.name} of {item.size} bytes exceeds {max_size}"
            )
        if item.stored_size != stored_size(item.size):
            raise BundleRejected(
                SIZE_MISMATCH,
                f"{item.name}: stored_size {item.stored_size} is not {stored_size(item.size)}",
            )
        offsets[item.name] = offset
        offset += item.stored_size
    if offset != payload_end:
        raise BundleRejected(
            SIZE_MISMATCH, f"items end at {offset}, manifest starts at {payload_end}"
        )
    if merkle_root([item.stored_sha256 for item in manifest.items]) != manifest.merkle_root:
        raise BundleRejected(MERKLE_MISMATCH, "merkle_root does not match the item digests")
    return offsets


def _verify_content(
    f: BinaryIO,
    manifest: Manifest,
    limits: Limits,
    tail: bytes,
    sealer: ItemSealer,
    sink: ItemSink | None,
) -> str:
    """Read the whole file in order, checking every item; return the file's SHA-256 (hex).

    Each segment's sealed bytes are hashed before they are decrypted; a segment whose tag
    fails is reported as HASH_MISMATCH when the item's stored hash also differs (the bytes
    were changed in transit) and as DECRYPT_FAILED when it does not (sealed wrongly).
    Verified plaintext goes to ``sink`` as it is decrypted (see :class:`ItemSink`).
    """
    with HashWorker() as worker:
        return _verify_items(f, manifest, limits, tail, sealer, sink, worker)


def _verify_items(
    f: BinaryIO,
    manifest: Manifest,
    limits: Limits,
    tail: bytes,
    sealer: ItemSealer,
    sink: ItemSink | None,
    worker: HashWorker,
) -> str:
    # The stored hashes and the file's digest are fed on the hash worker, beside the
    # decryption and plaintext hash on this thread.
    whole = worker.sha256()
    f.seek(0)
    start = f.read(len(MAGIC))
    if start != MAGIC:
        raise BundleRejected(HASH_MISMATCH, "file changed while it was verified")
    whole.update(start)
    lines: dict[str, int] = {}
    for index, item in enumerate(manifest.items):
        check = _ItemCheck(item.name, item.kind, item.media_type, limits)
        stored = worker.sha256()
        key = sealer.item_key(index, item.sha256)
        failed: str | None = None
        out = sink.begin(item) if sink is not None else None
        for segment, length, final in _segment_plan(item.size):
            sealed = f.read(length + AEAD_TAG_BYTES)
            if len(sealed) != length + AEAD_TAG_BYTES:
                raise BundleRejected(TRUNCATED, f"file ends inside {item.name}")
            stored.update(sealed)
            whole.update(sealed)
            if failed is not None:
                continue
            try:
                plain = sealer.open(key, index, segment, final, sealed)
            except DecryptionFailed:
                failed = f"{item.name}: segment {segment} does not decrypt"
                continue
            check.feed(plain)
            if out is not None:
                out.write(plain)
        if stored.hexdigest() != item.stored_sha256:
            raise BundleRejected(HASH_MISMATCH, f"{item.name} does not match its stored SHA-256")
        if failed is not None:
            raise BundleRejected(DECRYPT_FAILED, failed)
        if check.finish() != item.sha256:
            raise BundleRejected(HASH_MISMATCH, f"{item.name} does not match its SHA-256")
        if check.lines is not None:
            lines[item.name] = check.lines.count
            _check_record_total(lines, limits)
        if out is not None:
            assert sink is not None
            sink.end(item)
    _check_counts(manifest, lines)
    end = f.read(len(tail) + 1)
    if end != tail:
        raise BundleRejected(HASH_MISMATCH, "file changed while it was verified")
    whole.update(end)
    return whole.hexdigest()


def _check_item_declaration(name: object, kind: object, media_type: object) -> None:
    """Name, kind and media type rules that hold before the content is seen."""
    if kind == RECORDS:
        if not isinstance(name, str) or not _RECORDS_NAME.fullmatch(name):
            raise BundleRejected(BAD_ITEM_NAME, f"records item named {_show(name)}")
        if media_type != RECORDS_MEDIA_TYPE:
            raise BundleRejected(MANIFEST_INVALID, f"{name} must be {RECORDS_MEDIA_TYPE}")
    elif kind == ATTACHMENT:
        if not isinstance(name, str) or not _ATTACHMENT_NAME.fullmatch(name):
            raise BundleRejected(BAD_ITEM_NAME, f"attachment named {_show(name)}")
        if media_type not in ALLOWED_MEDIA_TYPES:
            raise BundleRejected(ATTACHMENT_TYPE, f"{name}: {_show(media_type)} is not allowed")
    else:
        raise BundleRejected(MANIFEST_INVALID, f"item kind {_show(kind)}")


def _check_record_total(lines: Mapping[str, int], limits: Limits) -> None:
    total = sum(lines.values())
    if total > limits.max_records:
        raise BundleRejected(LIMIT_EXCEEDED, f"more than {limits.max_records} records")


def _check_counts(manifest: Manifest, lines: Mapping[str, int]) -> None:
    """counts[kind] must equal the line count of records/<kind>.jsonl (0 if absent)."""
    kinds = set(manifest.counts) | {name[len("records/") : -len(".jsonl")] for name in lines}
    for kind in sorted(kinds):
        found = lines.get(records_name(kind), 0)
        declared = manifest.counts.get(kind, 0)
        if found != declared:
            raise BundleRejected(
                MANIFEST_INVALID, f"counts[{kind!r}] is {declared} but {found} records were packed"
            )


def _check_header_fields(
    channel: object,
    sequence: object,
    previous_digest: object,
    created_at: object,
    catalogue_version: object,
    counts: object,
) -> None:
    if channel not in CHANNELS:
        raise BundleRejected(MANIFEST_INVALID, f"channel {_show(channel)}")
    if not _is_int_in(sequence, 1, _MAX_INT):
        raise BundleRejected(MANIFEST_INVALID, f"sequence {_show(sequence)}")
    if previous_digest is not None and (
        not isinstance(previous_digest, str) or not _HEX64.fullmatch(previous_digest)
    ):
        raise BundleRejected(MANIFEST_INVALID, "previous_digest must be null or 64 lowercase hex")
    if not _is_text(created_at) or not _is_iso_datetime(created_at):
        raise BundleRejected(MANIFEST_INVALID, f"created_at {_show(created_at)} is not ISO-8601")
    if not _is_text(catalogue_version):
        raise BundleRejected(MANIFEST_INVALID, "catalogue_version must be a short string")
    if not isinstance(counts, dict) or not all(
        isinstance(k, str) and _RECORD_KIND.fullmatch(k) and _is_int_in(v, 0, _MAX_INT)
        for k, v in counts.items()
    ):
        raise BundleRejected(MANIFEST_INVALID, "counts must map record kinds to counts")


def _manifest_item(raw: object, index: int) -> ManifestItem:
    if not isinstance(raw, dict) or set(raw) != _ITEM_KEYS:
        raise BundleRejected(
            MANIFEST_INVALID, f"items[{index}] must have keys {sorted(_ITEM_KEYS)}"
        )
    name, kind, media_type = raw["name"], raw["kind"], raw["media_type"]
    if not (_is_text(name) and _is_text(kind) and _is_text(media_type)):
        raise BundleRejected(
            MANIFEST_INVALID, f"items[{index}] name, kind, media_type must be strings"
        )
    for field_name in ("size", "stored_size"):
        if not _is_int_in(raw[field_name], 0, _MAX_INT):
            raise BundleRejected(
                MANIFEST_INVALID, f"items[{index}].{field_name} {_show(raw[field_name])}"
            )
    for field_name in ("sha256", "stored_sha256"):
        value = raw[field_name]
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise BundleRejected(
                MANIFEST_INVALID, f"items[{index}].{field_name} must be 64 lowercase hex"
            )
    return ManifestItem(
        name=name,
        kind=kind,
        media_type=media_type,
        size=raw["size"],
        sha256=raw["sha256"],
        stored_size=raw["stored_size"],
        stored_sha256=raw["stored_sha256"],
    )


def _encryption(raw: object) -> Encryption:
    if not isinstance(raw, dict) or set(raw) != _ENCRYPTION_KEYS:
        raise BundleRejected(
            MANIFEST_INVALID, f"encryption must have keys {sorted(_ENCRYPTION_KEYS)}"
        )
    recipient, ephemeral, segment = (
        raw["recipient_key_id"],
        raw["ephemeral_public"],
        raw["segment_bytes"],
    )
    if not _is_text(recipient):
        raise BundleRejected(MANIFEST_INVALID, "encryption.recipient_key_id must be a string")
    if not isinstance(ephemeral, str) or not _HEX_KEY.fullmatch(ephemeral):
        raise BundleRejected(MANIFEST_INVALID, "encryption.ephemeral_public must be hex")
    if not _is_int_in(segment, 1, _MAX_INT):
        raise BundleRejected(MANIFEST_INVALID, f"encryption.segment_bytes {_show(segment)}")
    return Encryption(recipient, ephemeral, segment)


def _is_int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_TEXT


def _is_iso_datetime(value: object) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def _show(value: object) -> str:
    """A value from a hostile manifest, safe to put into a message or a log line."""
    return repr(value)[:100]
