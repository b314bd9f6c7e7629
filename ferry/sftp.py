"""SFTP transport (paramiko): a channel folder on a remote host, host key pinned.

The host key must be known in advance (a known_hosts file or a configured key); an unknown
or changed key refuses the connection, never adds it. Authentication is by key only. A
bundle is uploaded as ``NAME.part`` and renamed when complete, so the other side never
lists a partial file. Sessions, pinning and the sorting of failures into transient or
terminal are ``ferry.ssh``'s, shared with the province connector.
"""

from __future__ import annotations

import hashlib
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

import paramiko

from ferry.ssh import SshPeer, load_private_key, parse_host_key, sftp_session
from ferry.transport import BUNDLE_SUFFIX, NAME_PATTERN, PART_SUFFIX, check_name
from schemas.exceptions import TerminalError

_SPOOL_BYTES = 8 << 20
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class SftpConfig:
    """Where and how to connect; the private key is a file path, never inline text."""

    host: str
    port: int
    username: str
    key_file: Path
    remote_dir: str
    known_hosts: Path | None = None
    host_key: str | None = None  # "ssh-ed25519 AAAA..." (as in Airflow's SFTP connection)
    timeout: float = 30.0
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_uri(cls, uri: str) -> SftpConfig:
        """An Airflow-style connection URI, e.g. ``sftp://hub@gap.example:22/ferry/inbound?
        key_file=/keys/id_ed25519&known_hosts=/keys/known_hosts`` (or ``host_key=...``)."""
        parts = urlsplit(uri)
        if parts.scheme not in ("sftp", "ssh"):
            raise TerminalError(f"SFTP connection URI must start with sftp://, not {parts.scheme!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if query.get("no_host_key_check", "false").lower() == "true":
            raise TerminalError("no_host_key_check is refused: the host key must be pinned")
        if parts.password:
            raise TerminalError("password authentication is refused: configure key_file")
        if not parts.hostname or not parts.username or "key_file" not in query:
            raise TerminalError("SFTP connection needs user@host and key_file")
        return cls(
            host=parts.hostname,
            port=parts.port or 22,
            username=unquote(parts.username),
            key_file=Path(query["key_file"]),
            remote_dir=unquote(parts.path) or ".",
            known_hosts=Path(query["known_hosts"]) if "known_hosts" in query else None,
            host_key=query.get("host_key"),
            timeout=float(query.get("conn_timeout", query.get("timeout", "30"))),
        )


class SftpTransport:
    """One channel's folder on an SFTP server; a connection per operation batch."""

    def __init__(self, config: SftpConfig) -> None:
        if config.known_hosts is None and config.host_key is None:
            raise TerminalError("SFTP transport needs known_hosts or host_key (pinned host key)")
        self.config = config

    @contextmanager
    def _session(self) -> Iterator[paramiko.SFTPClient]:
        config = self.config
        host_keys = []
        if config.host_key is not None:
            try:
                host_keys.append(parse_host_key(config.host_key.strip()))
            except ValueError:
                raise TerminalError("configured host_key is not a valid public key") from None
        peer = SshPeer(config.host, config.port, config.username, config.timeout)
        with sftp_session(
            peer, _load_key(config.key_file), host_keys=host_keys, known_hosts=config.known_hosts
        ) as sftp:
            yield sftp

    def _remote(self, name: str) -> str:
        return str(PurePosixPath(self.config.remote_dir) / check_name(name))

    def put(self, name: str, source: Path) -> None:
        final = self._remote(name)
        part = final + PART_SUFFIX
        with self._session() as sftp:
            existing = _stat(sftp, final)
            if existing is not None:
                if _same_remote(sftp, final, source):
                    return
                raise TerminalError(f"{final} exists on the server with different content")
            with source.open("rb") as src, sftp.open(part, "wb") as dst:
                dst.set_pipelined(True)
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
            sftp.posix_rename(part, final)

    def list_complete(self) -> list[str]:
        with self._session() as sftp:
            entries = sftp.listdir_attr(self.config.remote_dir)
        names = [
            e.filename
            for e in entries
            if e.filename.endswith(BUNDLE_SUFFIX)
            and NAME_PATTERN.fullmatch(e.filename)
            and not e.filename.startswith(".")
            and e.st_mode is not None
            and stat.S_ISREG(e.st_mode)
        ]
        return sorted(names)

    def open(self, name: str) -> BinaryIO:
        """The whole file over one connection, in a spooled temporary file: memory stays
        bounded (it spills to disk past a few MiB) whatever the bundle's size."""
        buffer = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (returned open)
        with self._session() as sftp, sftp.open(self._remote(name), "rb") as remote:
            remote.prefetch()
            while chunk := remote.read(_CHUNK):
                buffer.write(chunk)
        buffer.seek(0)
        return buffer  # type: ignore[return-value]

    def path_of(self, name: str) -> Path | None:
        return None

    def remove(self, name: str) -> None:
        with self._session() as sftp:
            try:
                sftp.remove(self._remote(name))
            except FileNotFoundError:
                return


def _load_key(path: Path) -> paramiko.PKey:
    try:
        return load_private_key(path=path)
    except FileNotFoundError:
        raise TerminalError(f"SFTP key file {path} does not exist") from None
    except ValueError as error:
        raise TerminalError(f"SFTP key file {path} is not a usable private key: {error}") from None


def _stat(sftp: paramiko.SFTPClient, path: str) -> Any:
    try:
        return sftp.stat(path)
    except FileNotFoundError:
        return None


def _same_remote(sftp: paramiko.SFTPClient, remote: str, source: Path) -> bool:
    if sftp.stat(remote).st_size != source.stat().st_size:
        return False
    theirs, ours = hashlib.sha256(), hashlib.sha256()
    with sftp.open(remote, "rb") as stream:
        stream.prefetch()
        while chunk := stream.read(_CHUNK):
            theirs.update(chunk)
    with source.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            ours.update(chunk)
    return theirs.digest() == ours.digest()
