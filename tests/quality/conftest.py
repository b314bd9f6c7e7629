"""One Great Expectations context per test session (creating one costs seconds)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def gx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    return tmp_path_factory.mktemp("quality")


@pytest.fixture(scope="session")
def gx_context(gx_root: Path) -> Any:
    from quality.runner import quality_context

    return quality_context(gx_root)
