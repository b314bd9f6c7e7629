"""Refresh quality/data_docs_assets from the npm registry (maintainers only; needs npm).

Every file listed in ``quality.data_docs_offline.VENDORED`` is taken from its exact npm
package version (``npm pack``) and copied to its local path; NOTICE.md records versions
and licences. Run after upgrading great-expectations if its Data Docs links changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from npm_vendor import vendor

from quality.data_docs_offline import ASSETS, VENDORED


def main() -> int:
    vendor(ASSETS, VENDORED, [
        "# Vendored Data Docs assets", "",
        "Copies of the files Great Expectations' Data Docs link from public CDNs, served",
        "from the site itself so the pages render in the isolated network",
        "(`quality/data_docs_offline.py`). Each is the unmodified file of the npm package:",
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
