"""The local-folder transport: atomic publish, idempotent put, safe names, no partial files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ferry.errors import TerminalError
from ferry.transport import LocalFolderTransport, Transport


@pytest.fixture
def folder(tmp_path: Path) -> LocalFolderTransport:
    return LocalFolderTransport(tmp_path / "channel")


def source_file(tmp_path: Path, content: bytes, name: str = "src.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_local_folder_is_a_transport(folder: LocalFolderTransport) -> None:
    transport: Transport = folder
    assert transport.path_of("inbound-000000000001.peb") == folder.root / "inbound-000000000001.peb"


def test_put_publishes_the_content_and_leaves_no_part_file(
    tmp_path: Path, folder: LocalFolderTransport
) -> None:
    folder.put("inbound-000000000001.peb", source_file(tmp_path, b"bundle one"))
    assert sorted(os.listdir(folder.root)) == ["inbound-000000000001.peb"]
    with folder.open("inbound-000000000001.peb") as f:
        assert f.read() == b"bundle one"


def test_list_complete_is_sorted_and_ignores_partial_and_foreign_files(
    tmp_path: Path, folder: LocalFolderTransport
) -> None:
    folder.put("inbound-000000000002.peb", source_file(tmp_path, b"two"))
    folder.put("inbound-000000000001.peb", source_file(tmp_path, b"one"))
    (folder.root / "inbound-000000000003.peb.part").write_bytes(b"half a bun")
    (folder.root / ".hidden.peb").write_bytes(b"x")
    (folder.root / "notes.txt").write_bytes(b"x")
    (folder.root / "dir.peb").mkdir()
    (folder.root / "link.peb").symlink_to(tmp_path / "src.bin")
    assert folder.list_complete() == ["inbound-000000000001.peb", "inbound-000000000002.peb"]


def test_list_of_a_folder_that_does_not_exist_yet_is_empty(folder: LocalFolderTransport) -> None:
    assert folder.list_complete() == []


def test_put_is_idempotent_for_the_same_bytes(tmp_path: Path, folder: LocalFolderTransport) -> None:
    name = "inbound-000000000001.peb"
    folder.put(name, source_file(tmp_path, b"same bytes"))
    before = (folder.root / name).stat()
    folder.put(name, source_file(tmp_path, b"same bytes", "again.bin"))
    after = (folder.root / name).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert folder.list_complete() == [name]


@pytest.mark.parametrize("other", [b"same bytez", b"longer content", b""])
def test_put_refuses_different_bytes_under_an_existing_name(
    tmp_path: Path, folder: LocalFolderTransport, other: bytes
) -> None:
    name = "inbound-000000000001.peb"
    folder.put(name, source_file(tmp_path, b"same bytes"))
    with pytest.raises(TerminalError, match="different content"):
        folder.put(name, source_file(tmp_path, other, "other.bin"))
    assert (folder.root / name).read_bytes() == b"same bytes"


def test_put_replaces_a_stale_part_file(tmp_path: Path, folder: LocalFolderTransport) -> None:
    folder.root.mkdir()
    (folder.root / "inbound-000000000001.peb.part").write_bytes(b"left over from a crash, long")
    folder.put("inbound-000000000001.peb", source_file(tmp_path, b"complete"))
    assert os.listdir(folder.root) == ["inbound-000000000001.peb"]
    assert (folder.root / "inbound-000000000001.peb").read_bytes() == b"complete"


BAD_NAMES = [
    "",
    ".",
    "..",
    "../escape.peb",
    "a/b.peb",
    "/etc/passwd",
    ".hidden.peb",
    "name.peb\n",
    "name with space.peb",
    "x" * 129,
    "inbound-000000000001.peb.part",
    "名字.peb",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_names_are_refused_everywhere(
    tmp_path: Path, folder: LocalFolderTransport, name: str
) -> None:
    source = source_file(tmp_path, b"x")
    with pytest.raises(TerminalError, match="refused transport file name"):
        folder.put(name, source)
    with pytest.raises(TerminalError):
        folder.open(name)
    with pytest.raises(TerminalError):
        folder.path_of(name)
    with pytest.raises(TerminalError):
        folder.remove(name)
    assert not (tmp_path / "escape.peb").exists()


def test_open_refuses_a_symlink(tmp_path: Path, folder: LocalFolderTransport) -> None:
    folder.root.mkdir()
    secret = source_file(tmp_path, b"secret")
    (folder.root / "inbound-000000000001.peb").symlink_to(secret)
    with pytest.raises(TerminalError, match="symbolic link"):
        folder.open("inbound-000000000001.peb")


def test_open_refuses_a_fifo_without_blocking(folder: LocalFolderTransport) -> None:
    folder.root.mkdir()
    os.mkfifo(folder.root / "inbound-000000000001.peb")
    with pytest.raises(TerminalError, match="not a regular file"):
        folder.open("inbound-000000000001.peb")


def test_remove_is_idempotent(tmp_path: Path, folder: LocalFolderTransport) -> None:
    folder.put("inbound-000000000001.peb", source_file(tmp_path, b"x"))
    folder.remove("inbound-000000000001.peb")
    folder.remove("inbound-000000000001.peb")
    assert folder.list_complete() == []
