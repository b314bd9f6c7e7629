"""The shared SFTP session helper (``ferry.ssh``) against a real OpenSSH sshd on loopback:
which failures come out terminal (an operator must act) and which transient (retry)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import paramiko
import pytest

from ferry.ssh import SshPeer, classify, load_private_key, parse_host_key, sftp_session
from schemas.exceptions import TerminalError, TransientError
from tests.ferry.test_sftp_transport import Server, _free_port, _keypair, sshd  # noqa: F401 (fixture)


class OwnTerminal(TerminalError):
    pass


class OwnTransient(TransientError):
    pass


def _peer(server: Server, port: int | None = None) -> SshPeer:
    return SshPeer("127.0.0.1", port or server.port, os.environ["USER"], 5.0)


def _host_key(server: Server) -> paramiko.PKey:
    return parse_host_key(server.host_public)


def _client_key(server: Server) -> paramiko.PKey:
    return load_private_key(path=server.client_key)


def _connect(peer: SshPeer, key: paramiko.PKey, **options: object) -> None:
    with sftp_session(peer, key, **options):  # type: ignore[arg-type]
        pass


def test_pinned_session_lists_the_remote_folder(sshd: Server) -> None:  # noqa: F811
    (sshd.remote_dir / "a.peb").write_bytes(b"x")
    with sftp_session(_peer(sshd), _client_key(sshd), host_keys=[_host_key(sshd)]) as sftp:
        assert sftp.listdir(str(sshd.remote_dir)) == ["a.peb"]
    with sftp_session(_peer(sshd), _client_key(sshd), known_hosts=sshd.known_hosts) as sftp:
        assert sftp.listdir(str(sshd.remote_dir)) == ["a.peb"]


def test_a_changed_host_key_is_terminal_and_names_both_fingerprints(sshd: Server, tmp_path: Path) -> None:  # noqa: F811
    impostor = parse_host_key(_keypair(tmp_path / "impostor"))
    with pytest.raises(TerminalError, match="HOST KEY MISMATCH") as raised:
        _connect(_peer(sshd), _client_key(sshd), host_keys=[impostor])
    assert "SHA256:" in str(raised.value) and "does not match the pinned key" in str(raised.value)


def test_an_unpinned_host_is_terminal(sshd: Server, tmp_path: Path) -> None:  # noqa: F811
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TerminalError, match="not pinned"):
        _connect(_peer(sshd), _client_key(sshd), known_hosts=empty)
    with pytest.raises(TerminalError, match="no pinned host key"):
        _connect(_peer(sshd), _client_key(sshd))


def test_a_key_the_server_does_not_know_is_terminal(sshd: Server, tmp_path: Path) -> None:  # noqa: F811
    _keypair(tmp_path / "stranger")
    with pytest.raises(TerminalError, match="authentication failed"):
        _connect(_peer(sshd), load_private_key(path=tmp_path / "stranger"),
                          host_keys=[_host_key(sshd)])


def test_a_closed_port_is_transient(sshd: Server) -> None:  # noqa: F811
    with pytest.raises(TransientError, match="connection failed"):
        _connect(_peer(sshd, _free_port()), _client_key(sshd), host_keys=[_host_key(sshd)])


def test_a_missing_remote_file_is_terminal_and_a_cut_session_transient(sshd: Server) -> None:  # noqa: F811
    session = sftp_session(_peer(sshd), _client_key(sshd), host_keys=[_host_key(sshd)])
    with pytest.raises(TerminalError), session as sftp:
        sftp.stat(str(sshd.remote_dir / "absent.peb"))
    session = sftp_session(_peer(sshd), _client_key(sshd), host_keys=[_host_key(sshd)])
    with pytest.raises(TransientError), session as sftp:
        for pid in sshd.sessions():
            os.kill(pid, signal.SIGKILL)
        sftp.listdir(str(sshd.remote_dir))


def test_the_callers_own_kinds_are_raised(sshd: Server, tmp_path: Path) -> None:  # noqa: F811
    kinds = {"terminal": OwnTerminal, "transient": OwnTransient}
    _keypair(tmp_path / "stranger")
    with pytest.raises(OwnTerminal):
        _connect(_peer(sshd), load_private_key(path=tmp_path / "stranger"),
                          host_keys=[_host_key(sshd)], **kinds)  # type: ignore[arg-type]
    with pytest.raises(OwnTransient):
        _connect(_peer(sshd, _free_port()), _client_key(sshd),
                          host_keys=[_host_key(sshd)], **kinds)  # type: ignore[arg-type]
    # A hub error raised inside the session keeps its own kind.
    session = sftp_session(_peer(sshd), _client_key(sshd), host_keys=[_host_key(sshd)])
    with pytest.raises(OwnTransient, match="mine"), session:
        raise OwnTransient("mine")


def test_classify_sorts_plain_errors() -> None:
    assert isinstance(classify(PermissionError(13, "denied"), "x"), TerminalError)
    assert isinstance(classify(TimeoutError(), "x"), TransientError)
    assert isinstance(classify(ConnectionResetError(), "x"), TransientError)
    assert isinstance(classify(ValueError("odd"), "x"), TerminalError)


def test_host_keys_parse_with_or_without_their_type(sshd: Server) -> None:  # noqa: F811
    with_type = parse_host_key(sshd.host_public)
    blob_only = parse_host_key(sshd.host_public.split()[1])
    assert with_type.get_name() == blob_only.get_name() == "ssh-ed25519"
    assert with_type.asbytes() == blob_only.asbytes()
    with pytest.raises(ValueError):
        parse_host_key("ssh-ed25519 not-base64!")
    with pytest.raises(FileNotFoundError):
        load_private_key(path=sshd.root / "absent")
