"""Attachment types are decided by magic bytes, against the allow-list."""

from __future__ import annotations

import io
import zipfile

import pytest
from ferry_testkit import (
    DOC_BYTES,
    DOCX_BYTES,
    EXE_BYTES,
    OLE_FAR_DIRECTORY_BYTES,
    PLAIN_ZIP_BYTES,
    SAMPLES,
    XLS_BYTES,
    XML_BOM_BYTES,
    ole_bytes,
    zip_bytes,
)

from ferry import content_types as ct


@pytest.mark.parametrize("media_type", sorted(SAMPLES))
def test_each_allowed_type_is_sniffed_and_accepted(media_type: str) -> None:
    sample = SAMPLES[media_type]
    assert sniff_media_type_of(sample) == media_type
    assert ct.content_matches(media_type, sample)


def sniff_media_type_of(data: bytes) -> str | None:
    return ct.sniff_media_type(data[: ct.SNIFF_BYTES])


def test_allow_list_is_exactly_the_documented_types() -> None:
    assert ct.ALLOWED_MEDIA_TYPES == frozenset(SAMPLES)


@pytest.mark.parametrize("media_type", sorted(SAMPLES))
def test_executable_is_not_accepted_under_any_declared_type(media_type: str) -> None:
    assert ct.sniff_media_type(EXE_BYTES) is None
    assert not ct.content_matches(media_type, EXE_BYTES)


@pytest.mark.parametrize(
    ("declared", "content"),
    [
        (ct.PDF, SAMPLES[ct.PNG]),
        (ct.PNG, SAMPLES[ct.JPEG]),
        (ct.DOCX, SAMPLES[ct.XLSX]),
        (ct.XLSX, SAMPLES[ct.OFD]),
        (ct.OFD, SAMPLES[ct.DOCX]),
        (ct.MSWORD, XLS_BYTES),
        (ct.MSEXCEL, DOC_BYTES),
        (ct.XML, SAMPLES[ct.PDF]),
        (ct.DOCX, DOC_BYTES),
    ],
)
def test_content_of_another_type_does_not_match(declared: str, content: bytes) -> None:
    assert not ct.content_matches(declared, content)


def test_disallowed_declared_type_never_matches_even_when_content_agrees() -> None:
    assert ct.sniff_media_type(PLAIN_ZIP_BYTES) == ct.ZIP
    assert not ct.content_matches(ct.ZIP, PLAIN_ZIP_BYTES)
    assert not ct.content_matches("text/html", b"<!doctype html><script>")
    assert not ct.content_matches("APPLICATION/PDF", SAMPLES[ct.PDF])


def test_unclassified_zip_is_not_an_office_document() -> None:
    assert not ct.content_matches(ct.DOCX, PLAIN_ZIP_BYTES)
    assert not ct.content_matches(ct.XLSX, PLAIN_ZIP_BYTES)
    assert not ct.content_matches(ct.OFD, PLAIN_ZIP_BYTES)


def test_zip_with_both_word_and_excel_members_is_ambiguous() -> None:
    both = zip_bytes("word/document.xml", "xl/workbook.xml")
    assert ct.sniff_media_type(both) == ct.ZIP


def test_streamed_zip_with_data_descriptors_is_classified() -> None:
    streamed = zip_bytes("[Content_Types].xml", "word/document.xml", streamed=True)
    flags = int.from_bytes(streamed[6:8], "little")
    assert flags & 0x08, "the sample must really use data descriptors"
    assert ct.sniff_media_type(streamed) == ct.DOCX


def test_office_member_beyond_the_sniffed_bytes_is_not_seen() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("[Content_Types].xml", b"x" * (ct.SNIFF_BYTES + 10))
        archive.writestr("word/document.xml", b"<w/>")
    assert ct.sniff_media_type(buffer.getvalue()) == ct.ZIP


def test_ole_with_directory_out_of_reach_is_accepted_for_word_and_excel_only() -> None:
    assert ct.sniff_media_type(OLE_FAR_DIRECTORY_BYTES) == ct.OLE_STORAGE
    assert ct.content_matches(ct.MSWORD, OLE_FAR_DIRECTORY_BYTES)
    assert ct.content_matches(ct.MSEXCEL, OLE_FAR_DIRECTORY_BYTES)
    assert not ct.content_matches(ct.DOCX, OLE_FAR_DIRECTORY_BYTES)
    assert not ct.content_matches(ct.PDF, OLE_FAR_DIRECTORY_BYTES)


def test_powerpoint_ole_is_neither_word_nor_excel() -> None:
    ppt = ole_bytes("PowerPoint Document", "Current User")
    assert ct.sniff_media_type(ppt) == ct.POWERPOINT
    assert not ct.content_matches(ct.MSWORD, ppt)
    assert not ct.content_matches(ct.MSEXCEL, ppt)


def test_xml_after_utf8_bom() -> None:
    assert ct.sniff_media_type(XML_BOM_BYTES) == ct.XML
    assert ct.content_matches(ct.XML, XML_BOM_BYTES)


def test_xml_needs_a_real_declaration() -> None:
    assert ct.sniff_media_type(b"<?xmlfoo?><a/>") is None
    assert ct.sniff_media_type(b"  <?xml version='1.0'?>") is None
    assert ct.sniff_media_type(b"<html></html>") is None


def test_empty_and_short_inputs() -> None:
    assert ct.sniff_media_type(b"") is None
    assert ct.sniff_media_type(b"%PD") is None
    assert ct.sniff_media_type(b"PK\x03\x04") == ct.ZIP
    assert ct.sniff_media_type(bytes.fromhex("D0CF11E0A1B11AE1")) == ct.OLE_STORAGE
    assert not ct.content_matches(ct.PDF, b"")


def test_docx_sample_is_a_real_zip() -> None:
    # Guards the samples: a sniffer test is only as good as its inputs.
    with zipfile.ZipFile(io.BytesIO(DOCX_BYTES)) as archive:
        assert "word/document.xml" in archive.namelist()
