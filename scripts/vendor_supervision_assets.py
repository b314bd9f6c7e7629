"""Refresh the chart library of the supervision dashboard from the npm registry
(maintainers only; needs npm).

Every file listed in ``quality.supervision_report.VENDORED`` is taken unmodified from the
exact npm package version (``npm pack``) into ``quality/supervision_assets``; NOTICE.md
records the version and licence. Change the version in ``VENDORED`` first, then run this.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality.supervision_report import ASSETS, VENDORED


def main() -> int:
    licences: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        unpacked: dict[str, Path] = {}
        for package in sorted({asset.package for asset in VENDORED}):
            name = subprocess.run(["npm", "pack", "--silent", package], cwd=folder, check=True,
                                  capture_output=True, text=True).stdout.strip().splitlines()[-1]
            target = folder / name.removesuffix(".tgz")
            with tarfile.open(folder / name) as archive:
                archive.extractall(target, filter="data")
            unpacked[package] = target / "package"
            meta = json.loads((target / "package" / "package.json").read_text("utf-8"))
            licences[package] = f"{meta['name']} {meta['version']}: {meta.get('license', 'see package')}"
        for asset in VENDORED:
            destination = ASSETS / asset.local
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes((unpacked[asset.package] / asset.source).read_bytes())
            print(f"{asset.local}  <-  {asset.package}/{asset.source}")
    lines = ["# Vendored chart library of the supervision dashboard", "",
             "Copied next to the dashboard page (`quality/supervision_report.py`) so its charts",
             "draw in the isolated network, with no CDN. Each is the unmodified file of the npm",
             "package; `scripts/vendor_supervision_assets.py` refreshes them:", ""]
    lines += [f"- {text}" for text in sorted(licences.values())]
    lines += ["", "`chart.js-LICENSE.md` is the package's licence text. `dashboard.js` is the hub's own."]
    (ASSETS / "NOTICE.md").write_text("\n".join(lines) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
