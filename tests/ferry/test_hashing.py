"""SHA-256 on the hash worker: the same digests as hashlib, whatever the piece sizes, and
no worker thread left behind by the bundle codec, also when it refuses a bundle."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from ferry_testkit import PDF_BYTES, header, make_zone_pair, sha
from hypothesis import given, settings
from hypothesis import strategies as st

from ferry import content_types as ct
from ferry.bundle import (
    SEGMENT_BYTES,
    BundleRejected,
    ItemSource,
    open_bundle,
    records_item,
    write_bundle,
    write_bundle_and_digest,
)
from ferry.hashing import HANDOVER_BYTES, HashWorker

SIZES = st.one_of(
    st.integers(0, 100),
    st.integers(HANDOVER_BYTES - 2, HANDOVER_BYTES + 2),
    st.integers(100, 3 * HANDOVER_BYTES),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(SIZES, max_size=12), min_size=1, max_size=4))
def test_worker_digests_equal_hashlib(pieces: list[list[int]]) -> None:
    """Several hashes fed in turns (as stored and file digests are), small and large pieces."""
    data = [[bytes([n % 251]) * n for n in sizes] for sizes in pieces]
    with HashWorker() as worker:
        ours = [worker.sha256() for _ in data]
        for round_ in range(max(len(d) for d in data)):
            for digest, parts in zip(ours, data):
                if round_ < len(parts):
                    digest.update(parts[round_])
        got = [digest.hexdigest() for digest in ours]
    assert got == [hashlib.sha256(b"".join(parts)).hexdigest() for parts in data]


def test_a_small_digest_is_finished_on_the_callers_thread() -> None:
    with HashWorker() as worker:
        digest = worker.sha256()
        digest.update(b"x" * (HANDOVER_BYTES - 1))
        worker.submit(hashlib.sha256(), b"")  # the worker has work; the digest does not wait
        assert digest.hexdigest() == hashlib.sha256(b"x" * (HANDOVER_BYTES - 1)).hexdigest()


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pehub-sha256"]


def test_write_bundle_and_digest_gives_the_file_digest(tmp_path: Path) -> None:
    zones = make_zone_pair(tmp_path / "keys")
    big = PDF_BYTES + bytes(range(256)) * (3 * SEGMENT_BYTES // 256)
    items = [
        records_item("applications", [{"n": i} for i in range(2)]),
        ItemSource.from_bytes(f"att/{sha(big)}", "attachment", ct.PDF, big),
        ItemSource.from_bytes(f"att/{sha(PDF_BYTES)}", "attachment", ct.PDF, PDF_BYTES),
    ]
    path = tmp_path / "b.peb"
    with path.open("wb") as out:
        manifest, digest = write_bundle_and_digest(out, header(), items, zones.sender,
                                                   recipient=zones.recipient)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    bundle = open_bundle(path, zones.keyring, decryption_keys=zones.decryption)
    assert bundle.digest == digest and bundle.manifest == manifest
    assert _workers() == []


def test_no_worker_is_left_when_a_bundle_is_refused_midway(tmp_path: Path) -> None:
    zones = make_zone_pair(tmp_path / "keys")
    big = PDF_BYTES + bytes(3 * SEGMENT_BYTES)
    path = tmp_path / "b.peb"
    with path.open("wb") as out:
        write_bundle(out, header(counts={}), [ItemSource.from_bytes(f"att/{sha(big)}", "attachment",
                                                                     ct.PDF, big)],
                     zones.sender, recipient=zones.recipient)
    data = bytearray(path.read_bytes())
    data[8 + 2 * SEGMENT_BYTES] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BundleRejected, match="HASH_MISMATCH"):
        open_bundle(path, zones.keyring, decryption_keys=zones.decryption)
    with pytest.raises(BundleRejected, match="HASH_MISMATCH"), path.open("wb") as out:
        write_bundle(out, header(counts={}), [ItemSource.from_bytes(f"att/{sha(b'x')}", "attachment",
                                                                     ct.PDF, big)],
                     zones.sender, recipient=zones.recipient)
    assert _workers() == []


def test_reading_an_item_leaves_no_worker_also_when_the_reader_stops_early(tmp_path: Path) -> None:
    zones = make_zone_pair(tmp_path / "keys")
    path = tmp_path / "b.peb"
    records = [{"n": i, "pad": "x" * 1000} for i in range(3000)]
    with path.open("wb") as out:
        write_bundle(out, header(counts={"applications": len(records)}),
                     [records_item("applications", records)], zones.sender, recipient=zones.recipient)
    bundle = open_bundle(path, zones.keyring, decryption_keys=zones.decryption)
    assert len(list(bundle.iter_records("applications"))) == len(records)
    lines = bundle.iter_records("applications")
    next(lines)
    assert len(_workers()) == 1
    del lines
    assert _workers() == []
