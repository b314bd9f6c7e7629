"""Attachment types decided by content (magic bytes), never by a name or a sender's claim.

The receiver sniffs the first :data:`SNIFF_BYTES` of every attachment and accepts it only
when the sniffed type is compatible with the declared one and the declared one is on
:data:`ALLOWED_MEDIA_TYPES`.
"""

from __future__ import annotations

import re
import struct

SNIFF_BYTES = 64 * 1024
"""How much of the start of a file the sniffers are given (and all they may rely on)."""

PDF = "application/pdf"
OFD = "application/ofd"
JPEG = "image/jpeg"
PNG = "image/png"
MSWORD = "application/msword"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MSEXCEL = "application/vnd.ms-excel"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XML = "application/xml"

ZIP = "application/zip"
"""A zip archive whose members did not tell us which document format it is."""
OLE_STORAGE = "application/x-ole-storage"
"""An OLE compound file whose directory is beyond the sniffed bytes (Word or Excel)."""
POWERPOINT = "application/vnd.ms-powerpoint"

ALLOWED_MEDIA_TYPES: frozenset[str] = frozenset(
    {PDF, OFD, JPEG, PNG, MSWORD, DOCX, MSEXCEL, XLSX, XML}
)

_PDF_MAGIC = b"%PDF-"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_UTF8_BOM = b"\xef\xbb\xbf"
_XML_DECL = re.compile(rb"<\?xml[ \t\r\n]")

# Zip local file header: signature, version, flags, method, time, date, crc,
# compressed size, uncompressed size, name length, extra length (APPNOTE 4.3.7).
_ZIP_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")

_OLE_DIR_ENTRY_BYTES = 128
_OLE_WORD_STREAMS = frozenset({"WordDocument"})
_OLE_EXCEL_STREAMS = frozenset({"Workbook", "Book"})
_OLE_POWERPOINT_STREAMS = frozenset({"PowerPoint Document"})


def sniff_media_type(head: bytes) -> str | None:
    """The media type that the first bytes of a file show, or ``None`` when unknown.

    ``head`` is the start of the file, up to :data:`SNIFF_BYTES`. Zip and OLE
    containers are told apart by their member names when those are within ``head``;
    otherwise the container type (:data:`ZIP`, :data:`OLE_STORAGE`) is returned.
    """
    head = head[:SNIFF_BYTES]
    if head.startswith(_PDF_MAGIC):
        return PDF
    if head.startswith(_PNG_MAGIC):
        return PNG
    if head.startswith(_JPEG_MAGIC):
        return JPEG
    if head.startswith(_ZIP_MAGIC):
        return _sniff_zip(head)
    if head.startswith(_OLE_MAGIC):
        return _sniff_ole(head)
    text = head.removeprefix(_UTF8_BOM)
    if _XML_DECL.match(text):
        return XML
    return None


def content_matches(declared: str, head: bytes) -> bool:
    """True when ``declared`` is allowed and the content's sniffed type is compatible with it."""
    if declared not in ALLOWED_MEDIA_TYPES:
        return False
    sniffed = sniff_media_type(head)
    if sniffed == declared:
        return True
    # An OLE file whose directory lies beyond the sniffed bytes may be either format.
    return sniffed == OLE_STORAGE and declared in (MSWORD, MSEXCEL)


def _zip_member_names(head: bytes) -> list[bytes]:
    """Member names from every local file header found within ``head``.

    Scanning for signatures rather than walking sizes also covers members written
    with a data descriptor (sizes zero in the local header).
    """
    names: list[bytes] = []
    pos = head.find(_ZIP_MAGIC)
    while pos != -1:
        end_of_header = pos + _ZIP_LOCAL_HEADER.size
        if end_of_header > len(head):
            break
        fields = _ZIP_LOCAL_HEADER.unpack_from(head, pos)
        name_length = fields[9]
        if 0 < name_length and end_of_header + name_length <= len(head):
            names.append(head[end_of_header : end_of_header + name_length])
        pos = head.find(_ZIP_MAGIC, pos + 1)
    return names


def _sniff_zip(head: bytes) -> str:
    found: set[str] = set()
    for name in _zip_member_names(head):
        if name == b"OFD.xml":
            found.add(OFD)
        elif name.startswith(b"word/"):
            found.add(DOCX)
        elif name.startswith(b"xl/"):
            found.add(XLSX)
    if len(found) == 1:
        return found.pop()
    return ZIP


def _sniff_ole(head: bytes) -> str:
    """Look for the Word or Excel stream in the first directory sector, if it was sniffed."""
    if len(head) < 512:
        return OLE_STORAGE
    (sector_shift,) = struct.unpack_from("<H", head, 0x1E)
    (first_directory_sector,) = struct.unpack_from("<I", head, 0x30)
    if sector_shift not in (9, 12) or first_directory_sector >= 0xFFFFFFFA:
        return OLE_STORAGE
    sector_size = 1 << sector_shift
    start = (first_directory_sector + 1) * sector_size
    end = min(start + sector_size, len(head))
    names: set[str] = set()
    for entry in range(start, end - _OLE_DIR_ENTRY_BYTES + 1, _OLE_DIR_ENTRY_BYTES):
        (name_bytes,) = struct.unpack_from("<H", head, entry + 0x40)
        if 2 <= name_bytes <= 64 and name_bytes % 2 == 0:
            raw = head[entry : entry + name_bytes - 2]
            names.add(raw.decode("utf-16-le", errors="replace"))
    word = bool(names & _OLE_WORD_STREAMS)
    excel = bool(names & _OLE_EXCEL_STREAMS)
    if word and not excel:
        return MSWORD
    if excel and not word:
        return MSEXCEL
    if names & _OLE_POWERPOINT_STREAMS and not (word or excel):
        return POWERPOINT
    return OLE_STORAGE
