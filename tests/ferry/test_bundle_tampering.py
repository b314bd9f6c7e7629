"""Fault injection: any single changed, removed or inserted byte makes the receiver refuse the
bundle, and an item sink never gets a byte that did not authenticate nor an unverified item."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from ferry_testkit import PDF_BYTES, PNG_BYTES, ZonePair, header, make_zone_pair, sha
from hypothesis import given, settings
from hypothesis import strategies as st

from ferry import content_types as ct
from ferry.bundle import (
    BundleRejected,
    ItemSource,
    ManifestItem,
    open_bundle,
    records_item,
    write_bundle,
)


class RecordingSink:
    """Keeps what open_bundle hands to a sink: the bytes per item and which items ended."""

    def __init__(self) -> None:
        self.written: dict[str, io.BytesIO] = {}
        self.ended: list[str] = []

    def begin(self, item: ManifestItem) -> io.BytesIO:
        self.written[item.name] = io.BytesIO()
        return self.written[item.name]

    def end(self, item: ManifestItem) -> None:
        self.ended.append(item.name)


class Harness:
    """One valid bundle, and a scratch file to open mutated copies of it."""

    def __init__(self, root: Path) -> None:
        self.zones: ZonePair = make_zone_pair(root / "keys")
        self.scratch = root / "mutant.peb"
        items = [
            records_item("applications", [{"case_no": "A-1"}, {"case_no": "A-2"}]),
            ItemSource.from_bytes(f"att/{sha(PDF_BYTES)}", "attachment", ct.PDF, PDF_BYTES),
            ItemSource.from_bytes(f"att/{sha(PNG_BYTES)}", "attachment", ct.PNG, PNG_BYTES),
        ]
        self.plaintext = {item.name: item.open().read() for item in items}
        original = root / "original.peb"
        with original.open("wb") as out:
            write_bundle(out, header(), items, self.zones.sender, recipient=self.zones.recipient)
        self.data = original.read_bytes()
        # The harness is only meaningful if the untouched bundle is accepted, and its
        # items reach a sink whole.
        sink = RecordingSink()
        open_bundle(original, self.zones.keyring, decryption_keys=self.zones.decryption,
                    expected_channel="inbound", sink=sink)
        assert sink.ended == list(self.plaintext)
        assert {name: b.getvalue() for name, b in sink.written.items()} == self.plaintext

    def assert_rejected(self, mutated: bytes) -> None:
        assert mutated != self.data
        self.scratch.write_bytes(mutated)
        sink = RecordingSink()
        with pytest.raises(BundleRejected):
            open_bundle(self.scratch, self.zones.keyring, decryption_keys=self.zones.decryption,
                        expected_channel="inbound", sink=sink)
        # Only authenticated plaintext reached the sink (a prefix of the item), and only a
        # complete, verified item was ended; the sink's owner discards all of it anyway.
        for name, written in sink.written.items():
            assert self.plaintext[name].startswith(written.getvalue())
        for name in sink.ended:
            assert sink.written[name].getvalue() == self.plaintext[name]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    return Harness(tmp_path_factory.mktemp("tampering"))


def test_every_position_flipped(harness: Harness) -> None:
    data = harness.data
    for position in range(len(data)):
        harness.assert_rejected(
            data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]
        )


def test_every_position_removed(harness: Harness) -> None:
    data = harness.data
    for position in range(len(data)):
        harness.assert_rejected(data[:position] + data[position + 1 :])


def test_every_position_inserted(harness: Harness) -> None:
    data = harness.data
    for position in range(len(data) + 1):
        harness.assert_rejected(data[:position] + b"\x00" + data[position:])


FAST = settings(max_examples=70, deadline=None)


@FAST
@given(st.data())
def test_any_byte_flipped(harness: Harness, data: st.DataObject) -> None:
    original = harness.data
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor mask")
    harness.assert_rejected(
        original[:position] + bytes([original[position] ^ mask]) + original[position + 1 :]
    )


@settings(FAST, max_examples=65)
@given(st.data())
def test_any_byte_removed(harness: Harness, data: st.DataObject) -> None:
    original = harness.data
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    harness.assert_rejected(original[:position] + original[position + 1 :])


@settings(FAST, max_examples=65)
@given(st.data())
def test_any_byte_inserted(harness: Harness, data: st.DataObject) -> None:
    original = harness.data
    position = data.draw(st.integers(0, len(original)), label="position")
    value = data.draw(st.integers(0, 255), label="byte")
    harness.assert_rejected(original[:position] + bytes([value]) + original[position:])
