"""Test-wide environment: a private Airflow home and hub data root per test session,
set before anything imports Airflow and restored afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_saved: dict[str, str | None] = {}
_session_dir: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _session_dir
    from hub.airflow_env import airflow_env

    _session_dir = Path(tempfile.mkdtemp(prefix="hub-tests-"))
    env = airflow_env(_session_dir / "airflow", _session_dir / "data")
    for key, value in env.items():
        _saved[key] = os.environ.get(key)
        os.environ[key] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if _session_dir is not None:
        shutil.rmtree(_session_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite) for this test session."""
    from hub.demo import migrate_metadata

    migrate_metadata(dict(os.environ))
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh hub data root for one test (both zones, simulators on)."""
    root = tmp_path / "hub-data"
    monkeypatch.setenv("HUB_DATA_ROOT", str(root))
    monkeypatch.setenv("HUB_ZONE", "both")
    monkeypatch.setenv("HUB_SIMULATE", "1")
    yield root
