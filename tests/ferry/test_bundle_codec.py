"""The bundle codec: round trip, determinism, and each reason a receiver refuses a bundle."""

from __future__ import annotations

import hashlib
import io
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from ferry_testkit import (
    EXE_BYTES,
    PDF_BYTES,
    PNG_BYTES,
    XLSX_BYTES,
    ZonePair,
    forge_bundle,
    header,
    make_zone_pair,
    sha,
)

from ferry import bundle as b
from ferry import content_types as ct
from ferry.bundle import (
    BundleRejected,
    ItemSource,
    Limits,
    bundle_file_name,
    merkle_root,
    open_bundle,
    records_item,
    write_bundle,
)
from schemas.exceptions import TerminalError

APPLICATIONS: list[dict[str, Any]] = [
    {"case_no": "A-1", "item_code": "000101", "applicant": {"name": "张三"}},
    {"item_code": "000102", "case_no": "A-2", "note": "line\nbreak inside a value"},
]


def attachment(data: bytes, media_type: str) -> ItemSource:
    return ItemSource.from_bytes(f"att/{sha(data)}", "attachment", media_type, data)


def standard_items() -> list[ItemSource]:
    return [
        records_item("applications", APPLICATIONS),
        attachment(PDF_BYTES, ct.PDF),
        attachment(PNG_BYTES, ct.PNG),
    ]


def write(
    path: Path, zones: ZonePair, items: list[ItemSource] | None = None, **changes: Any
) -> Path:
    with path.open("wb") as out:
        write_bundle(
            out, header(**changes), standard_items() if items is None else items, zones.sender,
            recipient=zones.recipient,
        )
    return path


def rejected(path: Path, zones: ZonePair, **kwargs: Any) -> str:
    with pytest.raises(BundleRejected) as raised:
        open_bundle(path, zones.keyring, decryption_keys=zones.decryption, **kwargs)
    return raised.value.code


def test_round_trip(tmp_path: Path, zones: ZonePair) -> None:
    path = write(tmp_path / "b.peb", zones)
    bundle = open_bundle(path, zones.keyring, decryption_keys=zones.decryption, expected_channel="inbound")
    m = bundle.manifest
    assert (m.format, m.channel, m.sequence) == ("pehub-bundle/2", "inbound", 7)
    assert m.previous_digest == "ab" * 32
    assert (m.created_at, m.catalogue_version) == ("2025-03-01T08:00:00+08:00", "2025.1")
    assert (m.sender_key_id, m.suite) == (zones.sender.key_id, "intl")
    assert m.counts == {"applications": 2}
    assert [i.name for i in m.items] == [
        "records/applications.jsonl",
        f"att/{sha(PDF_BYTES)}",
        f"att/{sha(PNG_BYTES)}",
    ]
    assert m.merkle_root == merkle_root([i.stored_sha256 for i in m.items])
    assert bundle.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [orjson.loads(line) for line in bundle.iter_records("applications")] == APPLICATIONS
    assert bundle.read_item(f"att/{sha(PDF_BYTES)}") == PDF_BYTES
    copied = io.BytesIO()
    bundle.copy_item(f"att/{sha(PNG_BYTES)}", copied)
    assert copied.getvalue() == PNG_BYTES


def test_layout_matches_the_documented_byte_spec(tmp_path: Path, zones: ZonePair) -> None:
    data = write(tmp_path / "b.peb", zones).read_bytes()
    manifest_len, signature_len, magic = struct.unpack(">IH8s", data[-14:])
    assert data[:8] == magic == b"PEXHUB\x00\x02"
    assert signature_len == 64
    manifest = data[-14 - signature_len - manifest_len : -14 - signature_len]
    assert manifest == orjson.dumps(orjson.loads(manifest), option=orjson.OPT_SORT_KEYS)
    records = records_item("applications", APPLICATIONS).open().read()
    assert records.count(b"\n") == 2 and records.endswith(b"\n")
    first = orjson.loads(manifest)["items"][0]
    # The payload is sealed: the file holds the stored bytes, never the plaintext.
    assert first["size"] == len(records) and first["stored_size"] == len(records) + 16
    assert hashlib.sha256(data[8 : 8 + first["stored_size"]]).hexdigest() == first["stored_sha256"]
    assert b"A-1" not in data and "张三".encode() not in data


def test_writer_returns_the_manifest_it_wrote(tmp_path: Path, zones: ZonePair) -> None:
    with (tmp_path / "b.peb").open("wb") as out:
        written = write_bundle(out, header(), standard_items(), zones.sender, recipient=zones.recipient)
    assert open_bundle(tmp_path / "b.peb", zones.keyring, decryption_keys=zones.decryption).manifest == written


def test_same_inputs_give_identical_bytes(tmp_path: Path, zones: ZonePair) -> None:
    first = write(tmp_path / "1.peb", zones).read_bytes()
    second = write(tmp_path / "2.peb", zones).read_bytes()
    assert first == second
    other = write(tmp_path / "3.peb", zones, created_at="2025-03-01T08:00:01+08:00").read_bytes()
    assert other != first


def test_record_keys_are_sorted_whatever_the_input_order() -> None:
    forwards = records_item("x", [{"a": 1, "b": 2}]).open().read()
    backwards = records_item("x", [{"b": 2, "a": 1}]).open().read()
    assert forwards == backwards == b'{"a":1,"b":2}\n'


def test_from_path_streams_a_file(tmp_path: Path, zones: ZonePair) -> None:
    source = tmp_path / "scan.pdf"
    source.write_bytes(PDF_BYTES + b"\x00" * (3 * b.CHUNK_BYTES))  # several chunks
    item = ItemSource.from_path(f"att/{sha(source.read_bytes())}", "attachment", ct.PDF, source)
    path = write(tmp_path / "b.peb", zones, items=[item], counts={})
    assert open_bundle(path, zones.keyring, decryption_keys=zones.decryption).read_item(item.name) == source.read_bytes()


def test_empty_bundle_is_valid(tmp_path: Path, zones: ZonePair) -> None:
    path = write(tmp_path / "b.peb", zones, items=[], counts={}, sequence=1, previous_digest=None)
    manifest = open_bundle(path, zones.keyring, decryption_keys=zones.decryption).manifest
    assert manifest.items == ()
    assert manifest.merkle_root == hashlib.sha256(b"").hexdigest()


def test_merkle_root_construction() -> None:
    d = [sha(bytes([i])) for i in range(3)]

    def h(data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    leaves = [h(b"\x00" + bytes.fromhex(x)) for x in d]
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()
    assert merkle_root(d[:1]) == leaves[0].hex()
    assert merkle_root(d[:2]) == h(b"\x01" + leaves[0] + leaves[1]).hex()
    # An odd node is promoted unchanged to the next level.
    assert merkle_root(d) == h(b"\x01" + h(b"\x01" + leaves[0] + leaves[1]) + leaves[2]).hex()
    assert merkle_root([d[1], d[0]]) != merkle_root(d[:2])


def test_bundle_file_name() -> None:
    assert bundle_file_name("inbound", 42) == "inbound-000000000042.peb"
    assert bundle_file_name("outbound", 1) == "outbound-000000000001.peb"
    for channel, sequence in [("sideways", 1), ("inbound", 0), ("inbound", True)]:
        with pytest.raises(ValueError):
            bundle_file_name(channel, sequence)


# --- What the receiver refuses ----------------------------------------------------------


def test_unknown_key(tmp_path: Path, zones: ZonePair) -> None:
    stranger = make_zone_pair(tmp_path / "stranger")
    path = tmp_path / "b.peb"
    with path.open("wb") as out:
        write_bundle(out, header(), standard_items(), stranger.sender, recipient=stranger.recipient)
    assert rejected(path, zones) == b.UNKNOWN_KEY
    assert open_bundle(path, stranger.keyring, decryption_keys=stranger.decryption).manifest.sender_key_id == stranger.sender.key_id


def test_forged_signature_under_a_trusted_key_id(tmp_path: Path, zones: ZonePair) -> None:
    forger = make_zone_pair(tmp_path / "forger").sender
    impostor = type(forger)(key_id=zones.sender.key_id, suite="intl", private=forger.private)
    forge_bundle(tmp_path / "b.peb", impostor, zones.recipient, [])
    assert rejected(tmp_path / "b.peb", zones) == b.BAD_SIGNATURE


def test_unsigned_junk_is_refused_for_its_signature_before_its_structure(
    tmp_path: Path, zones: ZonePair
) -> None:
    # Nothing but the key id is read before the signature verifies.
    manifest = orjson.dumps({"sender_key_id": zones.sender.key_id, "items": "junk"})
    data = b.MAGIC + manifest + b"\x00" * 64 + b.TRAILER.pack(len(manifest), 64, b.MAGIC)
    (tmp_path / "b.peb").write_bytes(data)
    assert rejected(tmp_path / "b.peb", zones) == b.BAD_SIGNATURE


def test_wrong_channel(tmp_path: Path, zones: ZonePair) -> None:
    path = write(tmp_path / "b.peb", zones, channel="outbound")
    assert rejected(path, zones, expected_channel="inbound") == b.WRONG_CHANNEL
    assert (
        open_bundle(path, zones.keyring, decryption_keys=zones.decryption, expected_channel="outbound").manifest.channel == "outbound"
    )


@pytest.mark.parametrize("keep", [0, 5, 8, 21, 100, -1, -14, -15, -78])
def test_truncated_file(tmp_path: Path, zones: ZonePair, keep: int) -> None:
    data = write(tmp_path / "b.peb", zones).read_bytes()
    (tmp_path / "cut.peb").write_bytes(data[:keep])
    assert rejected(tmp_path / "cut.peb", zones) == b.TRUNCATED


def test_not_a_bundle(tmp_path: Path, zones: ZonePair) -> None:
    (tmp_path / "x.peb").write_bytes(PDF_BYTES * 3)
    assert rejected(tmp_path / "x.peb", zones) == b.BAD_MAGIC


def test_oversize_attachment(tmp_path: Path, zones: ZonePair) -> None:
    path = write(tmp_path / "b.peb", zones)
    limits = Limits(max_attachment_bytes=len(PDF_BYTES) - 1)
    assert rejected(path, zones, limits=limits) == b.LIMIT_EXCEEDED
    assert open_bundle(path, zones.keyring, decryption_keys=zones.decryption, limits=Limits(max_attachment_bytes=len(PDF_BYTES)))
    with pytest.raises(BundleRejected) as raised:
        write_bundle(io.BytesIO(), header(), standard_items(), zones.sender, recipient=zones.recipient, limits=limits)
    assert raised.value.code == b.LIMIT_EXCEEDED


@pytest.mark.parametrize(
    "limits",
    [
        Limits(max_bundle_bytes=500),
        Limits(max_manifest_bytes=200),
        Limits(max_items=2),
        Limits(max_record_item_bytes=50),
        Limits(max_record_bytes=40),
        Limits(max_records=1),
    ],
)
def test_other_limits(tmp_path: Path, zones: ZonePair, limits: Limits) -> None:
    path = write(tmp_path / "b.peb", zones)
    assert rejected(path, zones, limits=limits) in (b.LIMIT_EXCEEDED, b.MANIFEST_TOO_LARGE)
    with pytest.raises(BundleRejected) as raised:
        write_bundle(io.BytesIO(), header(), standard_items(), zones.sender, recipient=zones.recipient, limits=limits)
    assert raised.value.code in (b.LIMIT_EXCEEDED, b.MANIFEST_TOO_LARGE)


def test_long_record_is_refused_by_iter_records_too(tmp_path: Path, zones: ZonePair) -> None:
    path = write(tmp_path / "b.peb", zones)
    bundle = open_bundle(path, zones.keyring, decryption_keys=zones.decryption)
    bundle.limits = Limits(max_record_bytes=40)
    with pytest.raises(BundleRejected) as raised:
        list(bundle.iter_records("applications"))
    assert raised.value.code == b.LIMIT_EXCEEDED


def test_writer_refuses_an_attachment_whose_content_is_not_its_type(zones: ZonePair) -> None:
    with pytest.raises(BundleRejected) as raised:
        write_bundle(io.BytesIO(), header(counts={}), [attachment(EXE_BYTES, ct.PDF)], zones.sender, recipient=zones.recipient)
    assert raised.value.code == b.ATTACHMENT_TYPE


def test_reader_refuses_an_attachment_whose_content_is_not_its_type(
    tmp_path: Path, zones: ZonePair
) -> None:
    spec = {"name": f"att/{sha(EXE_BYTES)}", "kind": "attachment", "media_type": ct.PDF}
    forge_bundle(tmp_path / "b.peb", zones.sender, zones.recipient, [(spec, EXE_BYTES)])
    assert rejected(tmp_path / "b.peb", zones) == b.ATTACHMENT_TYPE


@pytest.mark.parametrize("media_type", ["application/zip", "text/html", "application/x-msdownload"])
def test_disallowed_media_type(tmp_path: Path, zones: ZonePair, media_type: str) -> None:
    spec = {"name": f"att/{sha(XLSX_BYTES)}", "kind": "attachment", "media_type": media_type}
    forge_bundle(tmp_path / "b.peb", zones.sender, zones.recipient, [(spec, XLSX_BYTES)])
    assert rejected(tmp_path / "b.peb", zones) == b.ATTACHMENT_TYPE


@pytest.mark.parametrize(
    "name",
    [
        "att/../../etc/passwd",
        "../../etc/passwd",
        "/etc/passwd",
        "att/" + "A" * 64,
        "att/" + "0" * 63,
        "att/" + "0" * 64 + "\n",
        "records/../x.jsonl",
    ],
)
def test_item_names_that_could_become_paths_are_refused(
    tmp_path: Path, zones: ZonePair, name: str
) -> None:
    spec = {"name": name, "kind": "attachment", "media_type": ct.PDF}
    forge_bundle(tmp_path / "b.peb", zones.sender, zones.recipient, [(spec, PDF_BYTES)])
    assert rejected(tmp_path / "b.peb", zones) == b.BAD_ITEM_NAME
    with pytest.raises(BundleRejected) as raised:
        write_bundle(
            io.BytesIO(),
            header(counts={}),
            [ItemSource.from_bytes(name, "attachment", ct.PDF, PDF_BYTES)],
            zones.sender,
            recipient=zones.recipient,
        )
    assert raised.value.code == b.BAD_ITEM_NAME


def test_attachment_must_be_named_by_its_digest(tmp_path: Path, zones: ZonePair) -> None:
    spec = {"name": f"att/{sha(PNG_BYTES)}", "kind": "attachment", "media_type": ct.PDF}
    forge_bundle(tmp_path / "b.peb", zones.sender, zones.recipient, [(spec, PDF_BYTES)])
    assert rejected(tmp_path / "b.peb", zones) == b.BAD_ITEM_NAME
    with pytest.raises(BundleRejected) as raised:
        write_bundle(
            io.BytesIO(),
            header(counts={}),
            [ItemSource.from_bytes(spec["name"], "attachment", ct.PDF, PDF_BYTES)],
            zones.sender,
            recipient=zones.recipient,
        )
    assert raised.value.code == b.HASH_MISMATCH


def test_duplicate_item(tmp_path: Path, zones: ZonePair) -> None:
    spec = {"name": f"att/{sha(PDF_BYTES)}", "kind": "attachment", "media_type": ct.PDF}
    forge_bundle(tmp_path / "b.peb", zones.sender, zones.recipient, [(spec, PDF_BYTES), (spec, PDF_BYTES)])
    assert rejected(tmp_path / "b.peb", zones) == b.BAD_ITEM_NAME


def test_content_that_does_not_match_its_digest(tmp_path: Path, zones: ZonePair) -> None:
    spec = {"name": f"att/{sha(PDF_BYTES)}", "kind": "attachment", "media_type": ct.PDF}
    other = PDF_BYTES.replace(b"Catalog", b"Katalog")
    forge_bundle(tmp_path / "b.peb", zones.sender, zones.recipient, [(spec | {"sha256": sha(PDF_BYTES)}, other)])
    assert rejected(tmp_path / "b.peb", zones) == b.HASH_MISMATCH


def test_merkle_root_must_match(tmp_path: Path, zones: ZonePair) -> None:
    spec = {"name": f"att/{sha(PDF_BYTES)}", "kind": "attachment", "media_type": ct.PDF}
    forge_bundle(
        tmp_path / "b.peb",
        zones.sender, zones.recipient,
        [(spec, PDF_BYTES)],
        manifest_changes={"merkle_root": "0" * 64},
    )
    assert rejected(tmp_path / "b.peb", zones) == b.MERKLE_MISMATCH


def test_declared_sizes_must_add_up_to_the_file(tmp_path: Path, zones: ZonePair) -> None:
    spec = {"name": f"att/{sha(PDF_BYTES)}", "kind": "attachment", "media_type": ct.PDF}
    forge_bundle(
        tmp_path / "b.peb", zones.sender, zones.recipient, [(spec | {"size": len(PDF_BYTES) + 1}, PDF_BYTES)]
    )
    assert rejected(tmp_path / "b.peb", zones) == b.SIZE_MISMATCH


@pytest.mark.parametrize(
    "changes",
    [
        {"format": "pehub-bundle/1"},
        {"channel": "sideways"},
        {"sequence": 0},
        {"sequence": "7"},
        {"sequence": True},
        {"previous_digest": "AB" * 32},
        {"created_at": "yesterday"},
        {"counts": {"applications": -1}},
        {"counts": {"applications": 1}},
        {"counts": {"../x": 0}},
        {"suite": "sm"},
        {"extra": 1},
    ],
)
def test_signed_but_invalid_manifest(
    tmp_path: Path, zones: ZonePair, changes: dict[str, Any]
) -> None:
    forge_bundle(tmp_path / "b.peb", zones.sender, zones.recipient, [], manifest_changes=changes)
    assert rejected(tmp_path / "b.peb", zones) == b.MANIFEST_INVALID


def test_manifest_must_be_canonical(tmp_path: Path, zones: ZonePair) -> None:
    forge_bundle(tmp_path / "b.peb", zones.sender, zones.recipient, [], encode=lambda m: orjson.dumps(m))
    assert rejected(tmp_path / "b.peb", zones) == b.MANIFEST_INVALID
    forge_bundle(tmp_path / "ok.peb", zones.sender, zones.recipient, [])
    assert open_bundle(tmp_path / "ok.peb", zones.keyring, decryption_keys=zones.decryption).manifest.items == ()


def test_counts_must_match_the_records(zones: ZonePair) -> None:
    with pytest.raises(BundleRejected) as raised:
        write_bundle(
            io.BytesIO(), header(counts={"applications": 3}), standard_items(), zones.sender,
            recipient=zones.recipient,
        )
    assert raised.value.code == b.MANIFEST_INVALID


def test_writer_validates_the_header(zones: ZonePair) -> None:
    for changes in ({"channel": "x"}, {"sequence": 0}, {"created_at": "soon"}):
        with pytest.raises(BundleRejected) as raised:
            write_bundle(io.BytesIO(), header(**changes), [], zones.sender, recipient=zones.recipient)
        assert raised.value.code == b.MANIFEST_INVALID


def test_writer_refuses_a_key_whose_id_does_not_match(zones: ZonePair) -> None:
    wrong = type(zones.sender)(
        key_id="intl:0000000000000000", suite="intl", private=zones.sender.private
    )
    with pytest.raises(TerminalError, match="does not match its key id"):
        write_bundle(io.BytesIO(), header(), standard_items(), wrong, recipient=zones.recipient)


def test_item_changed_after_verification_is_detected_on_read(
    tmp_path: Path, zones: ZonePair
) -> None:
    path = write(tmp_path / "b.peb", zones)
    bundle = open_bundle(path, zones.keyring, decryption_keys=zones.decryption)
    data = bytearray(path.read_bytes())
    pdf = bundle.item(f"att/{sha(PDF_BYTES)}")
    offset = 8 + sum(i.stored_size for i in bundle.manifest.items[:1]) + 5  # inside the sealed PDF
    assert bundle.manifest.items[1] == pdf
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(BundleRejected) as raised:
        bundle.read_item(f"att/{sha(PDF_BYTES)}")
    assert raised.value.code == b.HASH_MISMATCH
    assert bundle.read_item(f"att/{sha(PNG_BYTES)}") == PNG_BYTES


def test_symlinked_bundle_is_not_followed(tmp_path: Path, zones: ZonePair) -> None:
    path = write(tmp_path / "b.peb", zones)
    (tmp_path / "link.peb").symlink_to(path)
    with pytest.raises(TerminalError, match="symbolic link"):
        open_bundle(tmp_path / "link.peb", zones.keyring, decryption_keys=zones.decryption)


def test_rejection_carries_code_and_detail_and_survives_pickling() -> None:
    import pickle

    error = BundleRejected(b.HASH_MISMATCH, "att/x does not match")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.detail) == (b.HASH_MISMATCH, "att/x does not match")
    assert isinstance(copy, TerminalError)


def test_file_changed_during_verification_is_detected(
    tmp_path: Path, zones: ZonePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "b.peb", zones)
    check_layout = b._check_layout

    def check_then_tamper(*args: Any) -> dict[str, int]:
        offsets = check_layout(*args)
        # After the signature was verified, someone rewrites the signature bytes in place.
        data = bytearray(path.read_bytes())
        data[-14 - 1] ^= 0x01
        with path.open("r+b") as f:
            f.write(bytes(data))
        return offsets

    monkeypatch.setattr(b, "_check_layout", check_then_tamper)
    assert rejected(path, zones) == b.HASH_MISMATCH
