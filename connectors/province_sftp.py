"""SFTP to the provincial platform (省级平台): key authentication, the province's host key
pinned (never learnt, never auto-added), uploads written as ``NAME.part`` and renamed,
and every failure sorted into "retry may help" or "an operator must act".

Configured through an Airflow connection (default ``province_sftp``, e.g. the variable
``AIRFLOW_CONN_PROVINCE_SFTP``) in the SSH provider's format: host, port, login, and the
extras ``key_file`` (or ``private_key``), ``host_key`` (the server's public key, base64,
optionally prefixed with its type), ``no_host_key_check`` (must be false), ``conn_timeout``;
plus the hub's own ``remote_root``. Retrying is not done here: a transient failure is raised
as ``ProvinceUnreachable`` and the task's Airflow retry policy (``hub.airflow_policy``) is
the one layer that tries again.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from ferry import ssh
from ferry.ssh import load_private_key, parse_host_key
from schemas.exceptions import TerminalError, TransientError

DEFAULT_CONN_ID = "province_sftp"
# Extras of an earlier release, when the connector retried on its own.
RETIRED_EXTRAS = frozenset({"retries", "retry_delay"})
T = TypeVar("T")


class ProvinceUnreachable(TransientError):
    """The provincial SFTP server could not be reached or the connection broke; retry later."""


class ProvinceRefused(TerminalError):
    """The provincial SFTP server cannot be used as configured (host key mismatch, failed
    authentication, permission denied, bad connection settings); an operator must act."""


@dataclass(frozen=True)
class SftpSettings:
    """Where and how to reach the province's SFTP server. Its repr shows no key material."""

    host: str
    port: int
    username: str
    host_key: str = field(repr=False)  # "ssh-ed25519 AAAA..." or the base64 part alone
    key_file: str | None = None
    private_key: str | None = field(default=None, repr=False)
    remote_root: str = "/"
    timeout: float = 10.0
    # The province's catalogue signing key, pinned like the host key: "SUITE:BASE64".
    catalogue_key: str | None = None
    # The province's witness key, which cosigns the audit log's checkpoints (docs/audit.md
    # §11): a signed-note verifier key "NAME+KEYID+BASE64".
    witness_key: str | None = None

    @classmethod
    def from_extras(cls, host: str, port: int | None, login: str | None, extra: dict[str, Any]) -> SftpSettings:
        if str(extra.get("no_host_key_check", "false")).lower() in ("true", "1", "yes"):
            raise ProvinceRefused(
                "the province connection sets no_host_key_check=true; the province's host key "
                "must be pinned with the host_key extra"
            )
        host_key = extra.get("host_key")
        if not host_key:
            raise ProvinceRefused("the province connection has no host_key extra: pin the server's public host key")
        if not (extra.get("key_file") or extra.get("private_key")):
            raise ProvinceRefused("the province connection has no key_file or private_key extra (key authentication)")
        if not host or not login:
            raise ProvinceRefused("the province connection needs a host and a login")
        retired = sorted(RETIRED_EXTRAS & extra.keys())
        if retired:
            raise ProvinceRefused(
                f"the province connection sets {', '.join(retired)}: retrying is the Airflow retry policy "
                "of the province DAGs (hub.airflow_policy: 3 retries, exponential backoff from 1 minute); "
                "remove these extras"
            )
        return cls(
            host=host,
            port=int(port or 22),
            username=login,
            host_key=str(host_key),
            key_file=extra.get("key_file"),
            private_key=extra.get("private_key"),
            remote_root=str(extra.get("remote_root") or "/"),
            timeout=float(extra.get("conn_timeout") or extra.get("timeout") or 10),
            catalogue_key=str(extra["catalogue_key"]) if extra.get("catalogue_key") else None,
            witness_key=str(extra["witness_key"]) if extra.get("witness_key") else None,
        )

    @classmethod
    def from_connection(cls, conn_id: str = DEFAULT_CONN_ID) -> SftpSettings:
        """Read the Airflow connection ``conn_id`` (secrets backends, ``AIRFLOW_CONN_*``)."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            connection = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException as error:
            raise ProvinceRefused(
                f"no Airflow connection {conn_id!r} (set AIRFLOW_CONN_{conn_id.upper()}): {error}"
            ) from None
        return cls.from_extras(connection.host or "", connection.port, connection.login, connection.extra_dejson)


def _pinned_key(settings: SftpSettings) -> Any:
    try:
        return parse_host_key(settings.host_key)
    except ValueError:
        raise ProvinceRefused("the host_key extra of the province connection is not a valid public key") from None


def _client_key(settings: SftpSettings) -> Any:
    try:
        return load_private_key(path=settings.key_file, text=settings.private_key)
    except FileNotFoundError:
        raise ProvinceRefused(f"the province connection's key_file {settings.key_file} does not exist") from None
    except ValueError as error:
        raise ProvinceRefused(f"the province connection's private key cannot be read: {error}") from None


def classify(error: BaseException, where: str) -> TransientError | TerminalError:
    """Sort a failure of the SFTP conversation into ``ProvinceUnreachable`` (retry) or
    ``ProvinceRefused`` (an operator must act): ``ferry.ssh.classify`` with the province's
    own kinds."""
    return ssh.classify(error, where, terminal=ProvinceRefused, transient=ProvinceUnreachable)


class ProvinceSftp:
    """One open SFTP session. Paths are POSIX paths below the connection's ``remote_root``."""

    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self.sftp: Any = None

    def open(self) -> ProvinceSftp:
        settings = self.settings
        peer = ssh.SshPeer(settings.host, settings.port, settings.username, settings.timeout)
        pinned = _pinned_key(settings)
        pkey = _client_key(settings)
        # Only the pinned key is trusted: no system or user known_hosts, unknown keys refused.
        try:
            self._client, self.sftp = ssh.connect(peer, pkey, host_keys=[pinned])
        except BaseException as error:
            raise classify(error, f"sftp {settings.username}@{settings.host}:{settings.port}") from error
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self.sftp = None

    def path(self, relative: str) -> str:
        return str(PurePosixPath(self.settings.remote_root) / relative.lstrip("/"))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (ProvinceRefused, ProvinceUnreachable):
            raise
        except FileNotFoundError:
            raise
        except BaseException as error:
            if isinstance(error, OSError) and error.errno == errno.ENOENT:
                raise FileNotFoundError(str(error)) from error
            raise classify(error, f"sftp {what}") from error

    def makedirs(self, relative: str) -> None:
        current = PurePosixPath(self.settings.remote_root)
        for part in PurePosixPath(relative.strip("/")).parts:
            current = current / part
            if not self.exists_abs(str(current)):
                self._call(f"mkdir {current}", lambda c=current: self.sftp.mkdir(str(c)))  # type: ignore[misc]

    def exists_abs(self, absolute: str) -> bool:
        try:
            self._call(f"stat {absolute}", lambda: self.sftp.stat(absolute))
        except FileNotFoundError:
            return False
        return True

    def exists(self, relative: str) -> bool:
        return self.exists_abs(self.path(relative))

    def listdir(self, relative: str) -> list[str]:
        """Names in a folder (empty when the folder does not exist); ``.part`` files left out."""
        target = self.path(relative)
        try:
            entries = self._call(f"list {target}", lambda: self.sftp.listdir_attr(target))
        except FileNotFoundError:
            return []
        return sorted(
            e.filename for e in entries
            if stat.S_ISREG(e.st_mode or 0) and not e.filename.endswith(".part")
        )

    def read_bytes(self, relative: str, limit: int = 64 * 1024 * 1024) -> bytes:
        target = self.path(relative)

        def read() -> bytes:
            with self.sftp.open(target, "rb") as stream:
                data: bytes = stream.read(limit + 1)
            return data

        data = self._call(f"read {target}", read)
        if len(data) > limit:
            raise ProvinceRefused(f"sftp read {target}: larger than {limit} bytes")
        return data

    def upload(self, local: Path, relative: str, callback: Callable[[int, int], None] | None = None) -> None:
        """Write ``local`` as ``relative.part``, check its size, then rename it to ``relative``
        (atomically, replacing an older copy), so no partial file ever has the final name."""
        final = self.path(relative)
        partial = final + ".part"
        size = local.stat().st_size

        def put() -> None:
            with open(local, "rb") as stream:
                self.sftp.putfo(stream, partial, file_size=size, callback=callback, confirm=True)
            self.sftp.posix_rename(partial, final)

        self._call(f"upload {final}", put)

    def download(self, relative: str, local: Path) -> None:
        """Fetch ``relative`` to ``local`` (via ``local.part``, fsync, rename)."""
        source = self.path(relative)
        partial = local.with_name(local.name + ".part")
        local.parent.mkdir(parents=True, exist_ok=True)

        def get() -> None:
            with open(partial, "wb") as stream:
                self.sftp.getfo(source, stream)
                stream.flush()
                os.fsync(stream.fileno())

        self._call(f"download {source}", get)
        os.replace(partial, local)


@contextmanager
def province_session(settings: SftpSettings) -> Iterator[ProvinceSftp]:
    session = ProvinceSftp(settings).open()
    try:
        yield session
    finally:
        session.close()
