"""The folders a zone's Celery worker hosts share: which they are, `hub shared init`, and
the check that refuses a host where one is missing, is no directory, cannot be read or
written, or lacks the deployment's marker (an empty local folder instead of the share)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.settings import Settings, load_settings
from hub.shared_paths import (
    BAD_MARKER,
    MARKER,
    MISSING,
    NO_MARKER,
    NOT_A_DIRECTORY,
    NOT_READABLE,
    NOT_WRITABLE,
    OTHER_DEPLOYMENT,
    SharedPath,
    SharedPathsUnreachable,
    Unreachable,
    check_path,
    check_shared_paths,
    init_shared_paths,
    require_reachable,
    shared_paths,
)
from schemas.exceptions import TerminalError

SFTP = "sftp://hub@gap:22/in?key_file=k&known_hosts=h"


@pytest.fixture
def root() -> Iterator[Path]:
    """A data root that an unprivileged user can traverse (for the permission cases)."""
    folder = Path(tempfile.mkdtemp(prefix="hub-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def settings_for(root: Path, zone: str = "both") -> Settings:
    return load_settings({"HUB_DATA_ROOT": str(root), "HUB_ZONE": zone})


def names(paths: list[SharedPath]) -> list[tuple[str, str]]:
    return [(p.zone, p.name) for p in paths]


def test_each_zone_shares_its_own_folders(root: Path) -> None:
    admin = settings_for(root, "admin")
    assert names(shared_paths(admin, {})) == [
        ("admin", "data root"), ("admin", "ferry root"), ("admin", "key store"),
        ("admin", "attachment store"), ("admin", "quality root"),
    ]
    internet = settings_for(root, "internet")
    assert names(shared_paths(internet, {})) == [
        ("internet", "data root"), ("internet", "ferry root"), ("internet", "key store"),
    ]
    assert [p.path for p in shared_paths(internet, {})] == [
        root / "internet", root / "ferry", root / "internet" / "keys",
    ]
    moved = load_settings({"HUB_DATA_ROOT": str(root), "HUB_ZONE": "admin", "HUB_QUALITY_ROOT": str(root / "q")})
    assert shared_paths(moved, {})[-1].path == root / "q"


def test_the_ferry_root_is_shared_unless_both_channels_use_sftp(root: Path) -> None:
    settings = settings_for(root, "admin")
    one = {"AIRFLOW_CONN_HUB_FERRY_INBOUND": SFTP}
    both = {**one, "AIRFLOW_CONN_HUB_FERRY_OUTBOUND": SFTP}
    assert ("admin", "ferry root") in names(shared_paths(settings, one))
    assert ("admin", "ferry root") not in names(shared_paths(settings, both))


def test_init_marks_every_folder_once_and_the_check_then_passes(root: Path) -> None:
    settings = settings_for(root)
    assert {u.code for u in check_shared_paths(settings, {})} == {MISSING}
    deployment = init_shared_paths(settings, {})
    assert check_shared_paths(settings, {}) == []
    for shared in shared_paths(settings, {}):
        marker = json.loads((shared.path / MARKER).read_text())
        assert marker["deployment_id"] == deployment and marker["path"] == shared.name
    assert (root / "admin" / "keys").stat().st_mode & 0o777 == 0o700
    # Again: the deployment keeps its id; another id is refused.
    assert init_shared_paths(settings, {}) == deployment
    with pytest.raises(SharedPathsUnreachable, match=OTHER_DEPLOYMENT):
        init_shared_paths(settings, {}, deployment_id="hub-other")
    # A folder added later (quality root moved) is marked with the same id.
    moved = load_settings({"HUB_DATA_ROOT": str(root), "HUB_QUALITY_ROOT": str(root / "q")})
    assert init_shared_paths(moved, {}) == deployment
    assert check_shared_paths(moved, {"HUB_DEPLOYMENT_ID": deployment}) == []


def only(failures: list[Unreachable]) -> tuple[str, str, str]:
    assert len(failures) == 1, failures
    return failures[0].shared.zone, failures[0].shared.name, failures[0].code


def test_a_missing_share_is_refused(root: Path) -> None:
    settings = settings_for(root)
    init_shared_paths(settings, {})
    shutil.rmtree(settings.quality_root)
    assert only(check_shared_paths(settings, {})) == ("admin", "quality root", MISSING)


def test_a_file_instead_of_a_folder_is_refused(root: Path) -> None:
    settings = settings_for(root)
    init_shared_paths(settings, {})
    shutil.rmtree(settings.attachment_store)
    settings.attachment_store.write_text("not a folder")
    assert only(check_shared_paths(settings, {})) == ("admin", "attachment store", NOT_A_DIRECTORY)


def test_an_empty_local_folder_instead_of_the_share_is_refused(root: Path) -> None:
    settings = settings_for(root)
    init_shared_paths(settings, {})
    # What a worker whose ferry mount is missing sees: the mount point, empty.
    shutil.rmtree(settings.ferry_root)
    settings.ferry_root.mkdir()
    failures = check_shared_paths(settings, {})
    assert only(failures) == ("both", "ferry root", NO_MARKER)
    assert str(settings.ferry_root) in str(failures[0]) and "hub shared init" in str(failures[0])


def test_a_garbled_marker_is_refused(root: Path) -> None:
    settings = settings_for(root)
    init_shared_paths(settings, {})
    (settings.keys_dir("internet") / MARKER).write_text("{not json")
    assert only(check_shared_paths(settings, {})) == ("internet", "key store", BAD_MARKER)
    (settings.keys_dir("internet") / MARKER).write_text('{"deployment_id": ""}')
    assert only(check_shared_paths(settings, {})) == ("internet", "key store", BAD_MARKER)


def test_a_share_of_another_deployment_is_refused(root: Path) -> None:
    settings = settings_for(root)
    deployment = init_shared_paths(settings, {})
    (settings.quality_root / MARKER).write_text('{"deployment_id": "hub-elsewhere"}')
    failures = check_shared_paths(settings, {})
    assert only(failures) == ("admin", "quality root", OTHER_DEPLOYMENT)
    assert f"expected {deployment}" in failures[0].detail
    # With the id pinned on the host, every folder of another deployment is refused.
    pinned = check_shared_paths(settings, {"HUB_DEPLOYMENT_ID": "hub-elsewhere"})
    assert {u.code for u in pinned} == {OTHER_DEPLOYMENT} and len(pinned) == len(shared_paths(settings, {})) - 1


def _check_without_root_powers(shared: SharedPath) -> str:
    """check_path's code for ``shared``, run without the power to ignore folder modes (root
    reads and writes every folder whatever its mode: as root, the check runs in a child
    whose capability bounding set lacks CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)."""
    if os.geteuid() != 0:
        failure, _ = check_path(shared)
        return failure.code if failure else "ok"
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop root's file powers")
    code = (
        "from pathlib import Path\nfrom hub.shared_paths import SharedPath, check_path\n"
        f"failure, _ = check_path(SharedPath('admin', 'quality root', Path({str(shared.path)!r})))\n"
        "print(failure.code if failure else 'ok')\n"
    )
    done = subprocess.run(
        [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", sys.executable, "-c", code],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    )
    return done.stdout.strip()


@pytest.mark.parametrize(("mode", "expected"), [(0o777, "ok"), (0o333, NOT_READABLE), (0o555, NOT_WRITABLE)])
def test_a_share_this_host_cannot_read_or_write_is_refused(root: Path, mode: int, expected: str) -> None:
    settings = settings_for(root, "admin")
    init_shared_paths(settings, {})
    settings.admin_root.chmod(0o755)
    (settings.quality_root / MARKER).chmod(0o644)
    settings.quality_root.chmod(mode)
    try:
        assert _check_without_root_powers(SharedPath("admin", "quality root", settings.quality_root)) == expected
    finally:
        settings.quality_root.chmod(0o755)


def test_require_reachable_is_terminal_and_names_every_path(root: Path) -> None:
    settings = settings_for(root)
    init_shared_paths(settings, {})
    shutil.rmtree(settings.attachment_store)
    (settings.keys_dir("admin") / MARKER).unlink()
    with pytest.raises(TerminalError) as raised:
        require_reachable(settings, {})
    message = str(raised.value)
    assert f"attachment store {settings.attachment_store}: missing" in message
    assert f"key store {settings.keys_dir('admin')}: no_marker" in message


def test_hub_shared_check_exits_1_naming_each_unreachable_path(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import main

    monkeypatch.setenv("HUB_DATA_ROOT", str(root))
    monkeypatch.setenv("HUB_ZONE", "admin")
    monkeypatch.delenv("HUB_DEPLOYMENT_ID", raising=False)
    assert main(["shared", "check"]) == 1
    assert f"UNREACHABLE admin     data root         {root / 'admin'}: missing" in capsys.readouterr().out
    assert main(["shared", "init"]) == 0
    assert "export HUB_DEPLOYMENT_ID=hub-" in capsys.readouterr().out
    assert main(["shared", "check"]) == 0
    shutil.rmtree(root / "ferry")
    (root / "ferry").mkdir()
    assert main(["shared", "check"]) == 1
    out = capsys.readouterr().out
    assert f"UNREACHABLE admin     ferry root        {root / 'ferry'}: no_marker" in out
    assert out.count("UNREACHABLE") == 1


def test_the_task_hook_checks_only_on_celery(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.airflow_policy import check_shared_paths as hook
    from hub.airflow_policy import on_celery

    assert on_celery("CeleryExecutor") and on_celery("LocalExecutor,CeleryExecutor")
    assert on_celery("airflow.providers.celery.executors.celery_executor.CeleryExecutor")
    assert not on_celery("LocalExecutor") and not on_celery("CeleryKubernetesExecutorX")
    monkeypatch.setenv("HUB_DATA_ROOT", str(root / "nothing-here"))
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    hook({})  # one host: nothing to check, the demo behaves as before
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with pytest.raises(SharedPathsUnreachable, match=f"data root {root / 'nothing-here'}"):
        hook({})
    monkeypatch.setenv("HUB_DATA_ROOT", str(root))
    init_shared_paths(load_settings(), os.environ)
    hook({})


@pytest.mark.airflow
def test_on_celery_a_task_on_a_host_without_the_share_fails_at_once_and_writes_nothing(
    airflow_db: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real DAG run (dag.test) with the Celery setting and no shares: the first task fails
    on its first try (terminal, no retry), the rest never run, and nothing is created where
    the share should be mounted (not even by the alarm callback)."""
    from airflow.dag_processing.dagbag import DagBag

    missing = root / "mount-point"
    monkeypatch.setenv("HUB_DATA_ROOT", str(missing))
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag("intake")
    run = dag.test()
    states = {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances()}
    assert str(run.state) == "failed"
    assert states == {"collect_submissions": ("failed", 1), "keep_channel": ("upstream_failed", 0)}
    assert not missing.exists()
