"""Refresh quality/data_docs_assets from the npm registry (maintainers only; needs npm).

Every file listed in ``quality.data_docs_offline.VENDORED`` is taken from its exact npm
package version (``npm pack``) and copied to its local path; NOTICE.md records versions
and licences. Run after upgrading great-expectations if its Data Docs links changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality.data_docs_offline import ASSETS, VENDORED


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
    lines = ["# Vendored Data Docs assets", "",
             "Copies of the files Great Expectations' Data Docs link from public CDNs, served",
             "from the site itself so the pages render in the isolated network",
             "(`quality/data_docs_offline.py`). Each is the unmodified file of the npm package:", ""]
    lines += [f"- {text}" for text in sorted(licences.values())]
    (ASSETS / "NOTICE.md").write_text("\n".join(lines) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
