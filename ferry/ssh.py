"""The one SFTP session helper of the hub (paramiko): pinned host keys, key authentication,
and the one place that says whether an SSH or SFTP failure is worth a retry.

Used by the ferry's SFTP transport (``ferry.sftp``) and the provincial platform's SFTP
connector (``connectors.province_sftp``). A host key must be known in advance (a
known_hosts file or a configured key); an unknown or changed key refuses the connection
(``RejectPolicy``), never adds it. No agent, no keys from ``~/.ssh``.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import io
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paramiko

from schemas.exceptions import TerminalError, TransientError

# Errors of the server's file system an operator must fix (permissions, a missing folder,
# a full or read-only disk); a retry in a minute meets the same state.
TERMINAL_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.ENOENT, errno.ENOTDIR}
)


@dataclass(frozen=True)
class SshPeer:
    """Whom to connect to and how long to wait for each step."""

    host: str
    port: int
    username: str
    timeout: float

    @property
    def where(self) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The host's name in a known_hosts file (``[host]:port`` off port 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def parse_host_key(text: str) -> paramiko.PKey:
    """A public host key from ``"ssh-ed25519 AAAA..."`` or the base64 blob alone (the type
    is then read from the blob). ValueError when it is not a valid key."""
    parts = text.split()
    if not parts:
        raise ValueError("empty host key")
    blob = parts[1] if len(parts) > 1 else parts[0]
    try:
        raw = base64.b64decode(blob)
        kind = parts[0] if len(parts) > 1 else paramiko.Message(raw).get_text()
        return paramiko.PKey.from_type_string(kind, raw)
    except (ValueError, TypeError, IndexError, binascii.Error, paramiko.SSHException) as error:
        raise ValueError(f"not a valid public host key: {type(error).__name__}") from None


def load_private_key(*, path: str | Path | None = None, text: str | None = None) -> paramiko.PKey:
    """The client's private key, from inline ``text`` or a file ``path``. FileNotFoundError
    for a missing file, ValueError for anything that is not a usable key."""
    try:
        if text:
            return paramiko.PKey.from_private_key(io.StringIO(text))
        if path is None:
            raise ValueError("no private key configured")
        return paramiko.PKey.from_path(str(path))
    except paramiko.SSHException as error:
        raise ValueError(type(error).__name__) from None


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint of a key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def classify(
    error: BaseException,
    where: str,
    *,
    terminal: type[TerminalError] = TerminalError,
    transient: type[TransientError] = TransientError,
) -> TerminalError | TransientError:
    """Sort a failure of an SSH or SFTP conversation into terminal (an operator must act)
    or transient (a retry may help), with a clear message. ``terminal`` and ``transient``:
    the caller's own subclasses of the two kinds."""
    if isinstance(error, TerminalError | TransientError):
        return error
    if isinstance(error, paramiko.BadHostKeyException):
        return terminal(
            f"{where}: HOST KEY MISMATCH: the server offered {fingerprint(error.key)}, which "
            f"does not match the pinned key {fingerprint(error.expected_key)}; refusing to "
            "connect (possible man-in-the-middle, or the peer changed its key: confirm out "
            "of band, then update the pinned key)"
        )
    if isinstance(error, paramiko.AuthenticationException):
        return terminal(f"{where}: authentication failed: the server did not accept the hub's key ({error})")
    if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
        return terminal(f"{where}: the server's host key is not pinned; refusing to trust it ({error})")
    if isinstance(error, PermissionError) or (
        isinstance(error, OSError) and error.errno in TERMINAL_ERRNOS
    ):
        return terminal(f"{where}: {error}")
    if isinstance(error, socket.timeout | TimeoutError):
        return transient(f"{where}: timed out ({error or 'no answer'})")
    if isinstance(error, EOFError | ConnectionError | OSError | paramiko.SSHException):
        return transient(f"{where}: connection failed: {type(error).__name__}: {error}")
    return terminal(f"{where}: unexpected {type(error).__name__}: {error}")


def connect(
    peer: SshPeer,
    key: paramiko.PKey,
    *,
    host_keys: Sequence[paramiko.PKey] = (),
    known_hosts: Path | None = None,
) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    """An open SSH client and its SFTP session, trusting only ``host_keys`` and the
    entries of ``known_hosts``. Raises only paramiko's and the OS's own errors (or
    OSError for an unreadable known_hosts file): the caller classifies them."""
    if not host_keys and known_hosts is None:
        raise TerminalError(f"{peer.where}: no pinned host key (known_hosts or host_key)")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        pinned = client.get_host_keys()
        if known_hosts is not None:
            try:
                pinned.load(str(known_hosts))
            except (OSError, paramiko.SSHException) as error:
                raise TerminalError(f"cannot read known_hosts {known_hosts}: {error}") from None
        for host_key in host_keys:
            pinned.add(peer.known_hosts_name, host_key.get_name(), host_key)
        client.connect(
            peer.host, port=peer.port, username=peer.username, pkey=key,
            timeout=peer.timeout, banner_timeout=peer.timeout, auth_timeout=peer.timeout,
            channel_timeout=peer.timeout, look_for_keys=False, allow_agent=False,
        )
        sftp = client.open_sftp()
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(peer.timeout)
    except BaseException:
        client.close()
        raise
    return client, sftp


@contextmanager
def sftp_session(
    peer: SshPeer,
    key: paramiko.PKey,
    *,
    host_keys: Sequence[paramiko.PKey] = (),
    known_hosts: Path | None = None,
    terminal: type[TerminalError] = TerminalError,
    transient: type[TransientError] = TransientError,
) -> Iterator[paramiko.SFTPClient]:
    """One SFTP session for a batch of operations; every failure in it, connecting or
    working, comes out classified (see ``classify``)."""
    try:
        client, sftp = connect(peer, key, host_keys=host_keys, known_hosts=known_hosts)
    except (TerminalError, TransientError):
        raise
    except Exception as error:
        raise classify(error, peer.where, terminal=terminal, transient=transient) from error
    try:
        yield sftp
    except (TerminalError, TransientError):
        raise
    except Exception as error:
        raise classify(error, peer.where, terminal=terminal, transient=transient) from error
    finally:
        client.close()
