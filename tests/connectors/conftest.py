"""The connector tests reuse the ferry test kit (keys, sample files, the bundle forger).
The exchange-database fixtures (``exchange_url``, ``exchange_engine``: SQLite and
PostgreSQL) are in ``tests/conftest.py``, shared with the quality tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "ferry"))


@pytest.fixture
def hub_settings(exchange_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Both zones on this machine with the exchange database on the backend under test,
    keys exchanged, and the zone engines' migration cache cleared."""
    from hub import zones
    from hub.keys import init_keys
    from hub.settings import load_settings

    monkeypatch.setenv("HUB_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("HUB_ZONE", "both")
    monkeypatch.setenv("HUB_EXCHANGE_DB_URL", exchange_url)
    monkeypatch.delenv("HUB_INTERNET_DB_URL", raising=False)
    zones._prepared_engine.cache_clear()
    settings = load_settings()
    init_keys(settings)
    yield settings
    zones._prepared_engine.cache_clear()

