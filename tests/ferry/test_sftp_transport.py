"""The SFTP transport against a real OpenSSH sshd on a loopback port (own config, host key,
authorized_keys): pinned host keys, key authentication, atomic upload, error kinds."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ferry.sftp import SftpConfig, SftpTransport
from schemas.exceptions import TerminalError, TransientError

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not Path(SSHD).exists(), reason="openssh-server is not installed")


def _keypair(path: Path) -> str:
    """Write an OpenSSH ed25519 private key at ``path``; return the public key line."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                          serialization.NoEncryption())
    )
    path.chmod(0o600)
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    client_key: Path
    known_hosts: Path
    remote_dir: Path
    host_public: str

    def config(self, **changes: object) -> SftpConfig:
        fields: dict[str, object] = {
            "host": "127.0.0.1", "port": self.port, "username": os.environ.get("USER") or "root",
            "key_file": self.client_key, "remote_dir": str(self.remote_dir),
            "known_hosts": self.known_hosts, "timeout": 5.0,
        }
        fields.update(changes)
        return SftpConfig(**fields)  # type: ignore[arg-type]

    def sessions(self) -> list[int]:
        """Per-connection sshd processes (children of the listener)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                ppid = next((l.split()[1] for l in status.splitlines() if l.startswith("PPid:")), "")
                if ppid == str(self.process.pid):
                    found.append(int(entry.name))
        return found


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Server]:
    import pwd

    root = tmp_path / "sshd"
    root.mkdir()
    host_public = _keypair(root / "host_ed25519")
    client_public = _keypair(root / "client_ed25519")
    (root / "authorized_keys").write_text(client_public + "\n")
    port = _free_port()
    user = pwd.getpwuid(os.getuid()).pw_name
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_ed25519'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPidFile {root / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        f"AllowUsers {user}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation dir
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    remote = tmp_path / "remote" / "inbound"
    remote.mkdir(parents=True)
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {process.stderr.read() if process.stderr else ''!r}")
            time.sleep(0.05)
    server = Server(root, port, process, root / "client_ed25519", known_hosts, remote, host_public)
    os.environ["USER"] = user
    yield server
    for pid in server.sessions():
        # A session may end by itself between being listed and being killed.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.kill()
    process.wait()


def test_put_list_open_remove_round_trip(sshd: Server, tmp_path: Path) -> None:
    transport = SftpTransport(sshd.config())
    source = tmp_path / "b.peb"
    source.write_bytes(os.urandom(300_000))
    transport.put("inbound-000000000001.peb", source)
    (sshd.remote_dir / "inbound-000000000002.peb.part").write_bytes(b"partial")
    assert transport.list_complete() == ["inbound-000000000001.peb"]
    assert (sshd.remote_dir / "inbound-000000000001.peb").read_bytes() == source.read_bytes()
    assert transport.open("inbound-000000000001.peb").read() == source.read_bytes()
    transport.put("inbound-000000000001.peb", source)  # same bytes again: a no-op
    other = tmp_path / "other.peb"
    other.write_bytes(b"different")
    with pytest.raises(TerminalError, match="different content"):
        transport.put("inbound-000000000001.peb", other)
    transport.remove("inbound-000000000001.peb")
    transport.remove("inbound-000000000001.peb")
    assert transport.list_complete() == []
    with pytest.raises(TerminalError):
        transport.put("../escape.peb", source)


def test_unknown_or_changed_host_key_is_refused(sshd: Server, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(TerminalError, match="not pinned"):
        SftpTransport(sshd.config(known_hosts=empty)).list_complete()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {_keypair(tmp_path / 'impostor')}\n")
    with pytest.raises(TerminalError, match="does not match"):
        SftpTransport(sshd.config(known_hosts=wrong)).list_complete()
    assert not any(sshd.remote_dir.iterdir())
    # The configured-key form (Airflow's host_key extra) pins too.
    pinned = SftpTransport(sshd.config(known_hosts=None, host_key=sshd.host_public))
    assert pinned.list_complete() == []


def test_wrong_client_key_is_terminal_and_a_closed_port_is_transient(sshd: Server, tmp_path: Path) -> None:
    _keypair(tmp_path / "stranger")
    with pytest.raises(TerminalError, match="authentication"):
        SftpTransport(sshd.config(key_file=tmp_path / "stranger")).list_complete()
    with pytest.raises(TransientError):
        SftpTransport(sshd.config(port=_free_port())).list_complete()


def test_missing_remote_folder_is_terminal(sshd: Server, tmp_path: Path) -> None:
    source = tmp_path / "b.peb"
    source.write_bytes(b"x")
    with pytest.raises(TerminalError):
        SftpTransport(sshd.config(remote_dir=str(tmp_path / "nowhere"))).put("inbound-000000000001.peb", source)


def test_connection_cut_mid_upload_leaves_no_file_under_its_final_name(sshd: Server, tmp_path: Path) -> None:
    source = tmp_path / "big.peb"
    source.write_bytes(os.urandom(64 * 1024 * 1024))
    part = sshd.remote_dir / "inbound-000000000001.peb.part"
    cut = threading.Event()

    def cut_when_uploading() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > 1024 * 1024:
                for pid in sshd.sessions():
                    os.kill(pid, signal.SIGKILL)
                cut.set()
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=cut_when_uploading)
    watcher.start()
    with pytest.raises(TransientError):
        SftpTransport(sshd.config()).put("inbound-000000000001.peb", source)
    watcher.join()
    assert cut.is_set()
    assert not (sshd.remote_dir / "inbound-000000000001.peb").exists()
    assert SftpTransport(sshd.config()).list_complete() == []
    # The next attempt (the sender's retry) completes and replaces the partial upload.
    SftpTransport(sshd.config()).put("inbound-000000000001.peb", source)
    assert SftpTransport(sshd.config()).list_complete() == ["inbound-000000000001.peb"]


def test_connection_uri_like_airflow(sshd: Server) -> None:
    uri = (f"sftp://root@127.0.0.1:{sshd.port}{sshd.remote_dir}?key_file={sshd.client_key}"
           f"&known_hosts={sshd.known_hosts}")
    config = SftpConfig.from_uri(uri)
    assert (config.port, config.remote_dir, config.known_hosts) == (sshd.port, str(sshd.remote_dir), sshd.known_hosts)
    with pytest.raises(TerminalError, match="no_host_key_check"):
        SftpConfig.from_uri(uri + "&no_host_key_check=true")
    with pytest.raises(TerminalError, match="password"):
        SftpConfig.from_uri(f"sftp://root:secret@127.0.0.1:{sshd.port}/x?key_file=/k")
