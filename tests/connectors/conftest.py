"""The connector tests reuse the ferry test kit (keys, sample files, the bundle forger)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "ferry"))
