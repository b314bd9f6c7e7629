"""A real OpenSSH ``sshd`` on a loopback port, with its own config, host key, client key
and chrooted SFTP-only folder: the provincial platform's SFTP server for the province
simulator, the tests and the demo.

Run as root, the SFTP user is chrooted (``ChrootDirectory`` with ``internal-sftp``);
OpenSSH refuses a chroot whose path has a component that is not root-owned or is group-
or world-writable (such as ``/tmp``), so such a chroot is placed under
``/var/lib/hub-sshd/`` instead. Run as another user, sshd cannot chroot: the folder is
served without it and the connection's ``remote_root`` extra points into it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD = Path("/usr/sbin/sshd")
SAFE_CHROOT_BASE = Path("/var/lib/hub-sshd")


class SshdError(RuntimeError):
    """The SFTP server could not be started."""


def write_ed25519_key(private_file: Path, comment: str) -> str:
    """Write a new OpenSSH Ed25519 private key (0600); return its public line."""
    key = Ed25519PrivateKey.generate()
    private_file.parent.mkdir(parents=True, exist_ok=True)
    private_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    private_file.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode('ascii')} {comment}"
    private_file.with_name(private_file.name + ".pub").write_text(line + "\n")
    return line


def _chroot_safe(path: Path) -> bool:
    """OpenSSH's rule: every component of the chroot path is root-owned, not g/o-writable."""
    for part in [path, *path.parents]:
        if not part.exists():
            continue
        info = part.stat()
        if info.st_uid != 0 or info.st_mode & 0o022:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SftpServer:
    """One sshd serving one folder over SFTP on 127.0.0.1; ``start``/``stop`` may repeat."""

    folder: Path
    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    chroot: Path = field(init=False)
    host_public_key: str = field(init=False)
    client_key: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _own_chroot: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if not SSHD.exists():
            raise SshdError(f"{SSHD} is missing: apt-get install -y openssh-server (see scripts/apt-packages.txt)")
        self.folder = self.folder.absolute()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        host_key = self.folder / "ssh_host_ed25519_key"
        if host_key.exists():
            self.host_public_key = " ".join(host_key.with_name(host_key.name + ".pub").read_text().split()[:2])
        else:
            self.host_public_key = " ".join(write_ed25519_key(host_key, "province-host").split()[:2])
        self.client_key = self.folder / "client_ed25519_key"
        if not self.client_key.exists():
            write_ed25519_key(self.client_key, "hub-admin-zone")
        authorized = self.folder / "authorized_keys"
        authorized.write_text(self.client_key.with_name(self.client_key.name + ".pub").read_text())
        authorized.chmod(0o600)
        self.chroot = self._choose_chroot()
        self.chroot.mkdir(parents=True, exist_ok=True)

    @property
    def chrooted(self) -> bool:
        return os.geteuid() == 0

    def _choose_chroot(self) -> Path:
        wanted = self.folder / "chroot"
        link = self.folder / "chroot.path"
        if not self.chrooted or _chroot_safe(self.folder):
            return wanted
        if link.exists():
            return Path(link.read_text().strip())
        SAFE_CHROOT_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
        chosen = Path(tempfile.mkdtemp(prefix="province-", dir=SAFE_CHROOT_BASE))
        chosen.chmod(0o755)
        link.write_text(str(chosen))
        self._own_chroot = True
        return chosen

    @property
    def remote_root(self) -> str:
        """Where the served folder appears to the SFTP client."""
        return "/" if self.chrooted else str(self.chroot)

    def _config(self) -> Path:
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.folder / 'ssh_host_ed25519_key'}",
            f"PidFile {self.folder / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 100",
            "LoginGraceTime 20",
            "Subsystem sftp internal-sftp",
            f"AllowUsers {self.user}",
            f"Match User {self.user}",
            "    ForceCommand internal-sftp",
            "    AllowTcpForwarding no",
            "    X11Forwarding no",
        ]
        if self.chrooted:
            lines.append(f"    ChrootDirectory {self.chroot}")
        config = self.folder / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, timeout: float = 10.0) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        if self.chrooted:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation folder
        with open(self.folder / "sshd.log", "ab") as log:
            self._process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self._config())],
                stdout=log, stderr=log, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = (self.folder / "sshd.log").read_text(errors="replace")[-2000:]
                raise SshdError(f"sshd exited with {self._process.returncode}: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SshdError(f"sshd did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop the listener and every session it forked (they share its process group)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def remove(self) -> None:
        """Stop and delete the served folder when it lives outside ``folder``."""
        self.stop()
        if self._own_chroot or (self.folder / "chroot.path").exists():
            shutil.rmtree(self.chroot, ignore_errors=True)
            (self.folder / "chroot.path").unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def connection_uri(self, *, host_key: str | None = None) -> str:
        """An Airflow connection URI (``AIRFLOW_CONN_PROVINCE_SFTP``) for this server,
        host key pinned; ``host_key`` overrides the pinned key (to test a mismatch)."""
        parts = (host_key or self.host_public_key).split()
        pinned = parts[1] if len(parts) > 1 else parts[0]
        extras = {
            "key_file": str(self.client_key),
            "host_key": pinned,
            "no_host_key_check": "false",
            "conn_timeout": "5",
            "remote_root": self.remote_root,
        }
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in extras.items())
        return f"sftp://{quote(self.user)}@127.0.0.1:{self.port}/?{query}"
