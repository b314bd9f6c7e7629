"""Fixtures for the ferry tests (helpers live in ``ferry_testkit``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ferry_testkit import ZonePair, make_zone_pair


@pytest.fixture
def zones(tmp_path: Path) -> ZonePair:
    """Fresh keys: the internet zone signs, the admin zone's keyring trusts it."""
    return make_zone_pair(tmp_path / "keys")
