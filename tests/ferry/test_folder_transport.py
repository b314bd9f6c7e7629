"""The local-folder transport: atomic publish, idempotent put, safe names, no partial files."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from ferry.transport import LocalFolderTransport, Transport
from schemas.exceptions import TerminalError


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


# --- how put places the bytes: a hard link for a sealed source, else a copy --------------

NAME = "inbound-000000000001.peb"


def sealed_file(tmp_path: Path, content: bytes, name: str = "sealed.peb") -> Path:
    """A file like the sender's outbox copy: complete and read-only for everyone."""
    path = source_file(tmp_path, content, name)
    path.chmod(0o444)
    return path


def test_put_links_a_sealed_source_on_the_same_file_system(
    tmp_path: Path, folder: LocalFolderTransport
) -> None:
    source = sealed_file(tmp_path, b"bundle one")
    folder.put(NAME, source)
    published = folder.root / NAME
    assert os.listdir(folder.root) == [NAME]
    assert published.stat().st_ino == source.stat().st_ino
    assert source.stat().st_nlink == 2
    assert published.read_bytes() == b"bundle one"


def test_put_copies_a_source_that_may_still_be_written(
    tmp_path: Path, folder: LocalFolderTransport
) -> None:
    source = source_file(tmp_path, b"bundle one")
    folder.put(NAME, source)
    published = folder.root / NAME
    assert published.stat().st_ino != source.stat().st_ino
    source.write_bytes(b"rewritten in place")
    assert published.read_bytes() == b"bundle one"
    assert published.stat().st_mode & 0o777 == 0o644


def test_put_copies_when_linking_is_switched_off(tmp_path: Path) -> None:
    folder = LocalFolderTransport(tmp_path / "channel", link=False)
    source = sealed_file(tmp_path, b"bundle one")
    folder.put(NAME, source)
    assert (folder.root / NAME).stat().st_ino != source.stat().st_ino
    assert (folder.root / NAME).read_bytes() == b"bundle one"


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP])
def test_put_copies_when_the_file_system_cannot_link(
    tmp_path: Path, folder: LocalFolderTransport, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def cannot_link(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", cannot_link)
    source = sealed_file(tmp_path, b"bundle one" * 1000)
    folder.put(NAME, source)
    assert os.listdir(folder.root) == [NAME]
    assert (folder.root / NAME).stat().st_ino != source.stat().st_ino
    assert (folder.root / NAME).read_bytes() == b"bundle one" * 1000


def test_put_raises_what_a_copy_would_not_cure(
    tmp_path: Path, folder: LocalFolderTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "link", no_space)
    with pytest.raises(OSError, match="No space"):
        folder.put(NAME, sealed_file(tmp_path, b"bundle one"))
    assert folder.list_complete() == []


def test_put_copies_across_file_systems(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second file system (/dev/shm) beside the temp folder")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        folder = LocalFolderTransport(Path(other) / "channel")
        source = sealed_file(tmp_path, os.urandom(3 << 20))
        folder.put(NAME, source)
        published = folder.root / NAME
        assert published.stat().st_dev != source.stat().st_dev
        assert published.read_bytes() == source.read_bytes()
        assert os.listdir(folder.root) == [NAME]


@pytest.mark.parametrize("code", [errno.EXDEV, errno.ENOSYS, errno.EINVAL])
def test_put_copies_through_a_buffer_when_the_kernel_cannot(
    tmp_path: Path, folder: LocalFolderTransport, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def cannot_copy(*args: object, **kwargs: object) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", cannot_copy, raising=False)
    content = os.urandom(3 << 20)
    folder.put(NAME, source_file(tmp_path, content))
    assert (folder.root / NAME).read_bytes() == content
    monkeypatch.delattr(os, "copy_file_range")
    folder.put("inbound-000000000002.peb", source_file(tmp_path, content, "again.bin"))
    assert (folder.root / "inbound-000000000002.peb").read_bytes() == content


def test_a_stale_part_linked_to_an_outbox_copy_is_replaced_not_written(
    tmp_path: Path, folder: LocalFolderTransport
) -> None:
    outbox_copy = sealed_file(tmp_path, b"the outbox copy of bundle one")
    folder.root.mkdir()
    os.link(outbox_copy, folder.root / (NAME + ".part"))  # a crash after the link
    folder.put(NAME, source_file(tmp_path, b"complete"))
    assert outbox_copy.read_bytes() == b"the outbox copy of bundle one"
    assert os.listdir(folder.root) == [NAME]
    assert (folder.root / NAME).read_bytes() == b"complete"


def test_put_of_the_same_sealed_file_again_is_a_no_op(
    tmp_path: Path, folder: LocalFolderTransport
) -> None:
    source = sealed_file(tmp_path, b"bundle one")
    folder.put(NAME, source)
    before = (folder.root / NAME).stat()
    folder.put(NAME, source)
    after = (folder.root / NAME).stat()
    assert (after.st_ino, after.st_ctime_ns, after.st_nlink) == (before.st_ino, before.st_ctime_ns, 2)


def test_a_symlink_to_a_sealed_file_is_copied_not_linked(
    tmp_path: Path, folder: LocalFolderTransport
) -> None:
    target = sealed_file(tmp_path, b"bundle one")
    link = tmp_path / "link.peb"
    link.symlink_to(target)
    folder.put(NAME, link)
    published = folder.root / NAME
    assert not published.is_symlink() and published.stat().st_ino != target.stat().st_ino
    assert published.read_bytes() == b"bundle one"
