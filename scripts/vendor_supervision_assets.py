"""Refresh the chart library of the supervision dashboard from the npm registry
(maintainers only; needs npm).

Every file listed in ``quality.supervision_report.VENDORED`` is taken unmodified from the
exact npm package version (``npm pack``) into ``quality/supervision_assets``; NOTICE.md
records the version and licence. Change the version in ``VENDORED`` first, then run this.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from npm_vendor import vendor

from quality.supervision_report import ASSETS, VENDORED


def main() -> int:
    vendor(ASSETS, VENDORED, [
        "# Vendored chart library of the supervision dashboard", "",
        "Copied next to the dashboard page (`quality/supervision_report.py`) so its charts",
        "draw in the isolated network, with no CDN. Each is the unmodified file of the npm",
        "package; `scripts/vendor_supervision_assets.py` refreshes them:",
    ], ["`chart.js-LICENSE.md` is the package's licence text. `dashboard.js` is the hub's own."])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
