"""Copy files unmodified from exact npm package versions (``npm pack``) into a folder of the
repository, and write its NOTICE.md with each package's version and licence. Shared by
the scripts that refresh vendored browser assets (maintainers only; needs npm)."""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol


class VendoredAsset(Protocol):
    package: str  # name@exact-version
    source: str  # path inside the package
    local: str  # path under the assets folder


def vendor(assets_dir: Path, assets: Iterable[VendoredAsset], notice_head: Sequence[str],
           notice_tail: Sequence[str] = ()) -> None:
    chosen = list(assets)
    licences: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        unpacked: dict[str, Path] = {}
        for package in sorted({asset.package for asset in chosen}):
            name = subprocess.run(["npm", "pack", "--silent", package], cwd=folder, check=True,
                                  capture_output=True, text=True).stdout.strip().splitlines()[-1]
            target = folder / name.removesuffix(".tgz")
            with tarfile.open(folder / name) as archive:
                archive.extractall(target, filter="data")
            unpacked[package] = target / "package"
            meta = json.loads((target / "package" / "package.json").read_text("utf-8"))
            licences[package] = f"{meta['name']} {meta['version']}: {meta.get('license', 'see package')}"
        for asset in chosen:
            destination = assets_dir / asset.local
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes((unpacked[asset.package] / asset.source).read_bytes())
            print(f"{asset.local}  <-  {asset.package}/{asset.source}")
    lines = [*notice_head, ""]
    lines += [f"- {text}" for text in sorted(licences.values())]
    if notice_tail:
        lines += ["", *notice_tail]
    (assets_dir / "NOTICE.md").write_text("\n".join(lines) + "\n", "utf-8")
