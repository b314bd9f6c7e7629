"""Great Expectations Data Docs for the isolated network: the pages GX writes load
bootstrap, jQuery, Font Awesome, bootstrap-table and Vega from public CDNs, which the
administration network cannot reach (they would render unstyled, without tables or
charts). After every build the hub copies the same files, vendored in
``quality/data_docs_assets`` at the exact versions GX asks for, into the site and points
each page at them with a relative link.

``VENDORED`` is the one list of what is replaced by what; ``scripts/vendor_data_docs_assets.py``
refreshes the files from the npm registry when GX changes its links.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "data_docs_assets"
SITE_FOLDER = "static/offline"


@dataclass(frozen=True)
class VendoredAsset:
    """One file GX links from a CDN, and where the same bytes come from on npm."""

    url: str
    package: str  # npm spec, exact version
    source: str  # path inside the npm package
    local: str  # path under quality/data_docs_assets (and under the site's static/offline)


_FA = "@fortawesome/fontawesome-free@6.6.0"
VENDORED: tuple[VendoredAsset, ...] = (
    VendoredAsset("https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css",
                  "bootstrap@4.3.1", "dist/css/bootstrap.min.css", "bootstrap/bootstrap.min.css"),
    VendoredAsset("https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
                  "bootstrap@4.3.1", "dist/js/bootstrap.min.js", "bootstrap/bootstrap.min.js"),
    VendoredAsset("https://code.jquery.com/jquery-3.7.1.min.js",
                  "jquery@3.7.1", "dist/jquery.min.js", "jquery/jquery.min.js"),
    VendoredAsset("https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js",
                  "popper.js@1.12.9", "dist/umd/popper.min.js", "popper/popper.min.js"),
    VendoredAsset("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
                  "bootstrap-table@1.19.1", "dist/bootstrap-table.min.css", "bootstrap-table/bootstrap-table.min.css"),
    VendoredAsset("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js",
                  "bootstrap-table@1.19.1", "dist/bootstrap-table.min.js", "bootstrap-table/bootstrap-table.min.js"),
    VendoredAsset("https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
                  "bootstrap-table-filter-control.min.js",
                  "bootstrap-table@1.19.1", "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
                  "bootstrap-table/bootstrap-table-filter-control.min.js"),
    VendoredAsset("https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
                  "bootstrap-table-filter-control.css",
                  "bootstrap-table@1.19.0", "dist/extensions/filter-control/bootstrap-table-filter-control.css",
                  "bootstrap-table/1.19.0/bootstrap-table-filter-control.css"),
    VendoredAsset("https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
                  "bootstrap-table-filter-control.min.css",
                  "bootstrap-table@1.19.0", "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
                  "bootstrap-table/1.19.0/bootstrap-table-filter-control.min.css"),
    VendoredAsset("https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
                  "bootstrap-datepicker@1.9.0", "dist/css/bootstrap-datepicker.min.css",
                  "bootstrap-datepicker/bootstrap-datepicker.min.css"),
    VendoredAsset("https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
                  "bootstrap-datepicker@1.9.0", "dist/js/bootstrap-datepicker.min.js",
                  "bootstrap-datepicker/bootstrap-datepicker.min.js"),
    VendoredAsset("https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
                  "@forevolve/bootstrap-dark@1.1.0", "dist/css/bootstrap-prefers-dark.css",
                  "bootstrap-dark/bootstrap-prefers-dark.css"),
    VendoredAsset("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css",
                  _FA, "css/all.min.css", "fontawesome/css/all.min.css"),
    # all.min.css loads its fonts from ../webfonts/ (woff2 first; every browser in use reads it).
    VendoredAsset("", _FA, "webfonts/fa-solid-900.woff2", "fontawesome/webfonts/fa-solid-900.woff2"),
    VendoredAsset("", _FA, "webfonts/fa-regular-400.woff2", "fontawesome/webfonts/fa-regular-400.woff2"),
    VendoredAsset("", _FA, "webfonts/fa-brands-400.woff2", "fontawesome/webfonts/fa-brands-400.woff2"),
    VendoredAsset("", _FA, "webfonts/fa-v4compatibility.woff2", "fontawesome/webfonts/fa-v4compatibility.woff2"),
    # GX asks for the latest major versions; these are the versions vendored.
    VendoredAsset("https://cdn.jsdelivr.net/npm/vega@5", "vega@5.33.1", "build/vega.min.js", "vega/vega.min.js"),
    VendoredAsset("https://cdn.jsdelivr.net/npm/vega-lite@5", "vega-lite@5.23.0", "build/vega-lite.min.js",
                  "vega/vega-lite.min.js"),
    VendoredAsset("https://cdn.jsdelivr.net/npm/vega-embed@6", "vega-embed@6.29.0", "build/vega-embed.min.js",
                  "vega/vega-embed.min.js"),
)

_REPLACED = {asset.url: asset.local for asset in VENDORED if asset.url}
_LINK = re.compile(r'(src|href)="(https?://[^"]+)"')


class MissingAsset(RuntimeError):
    """A vendored Data Docs asset is missing from the installation (a broken checkout)."""


def install_assets(site: Path) -> Path:
    """Copy the vendored files into ``site/static/offline`` (only what is missing or changed)."""
    target = site / SITE_FOLDER
    for asset in VENDORED:
        source = ASSETS / asset.local
        if not source.is_file():
            raise MissingAsset(f"vendored Data Docs asset {source} is missing; "
                               "run scripts/vendor_data_docs_assets.py or restore the checkout")
        destination = target / asset.local
        if destination.is_file() and destination.stat().st_size == source.stat().st_size:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    notice = ASSETS / "NOTICE.md"
    if notice.is_file():
        shutil.copyfile(notice, target / "NOTICE.md")
    return target


def localise_page(page: Path, site: Path) -> bool:
    """Point the CDN links of one page at the site's vendored copies; True if it changed."""
    html = page.read_text("utf-8")
    if "https://" not in html:
        return False
    prefix = Path(os.path.relpath(site / SITE_FOLDER, page.parent)).as_posix()

    def replace(match: re.Match[str]) -> str:
        local = _REPLACED.get(match.group(2))
        return match.group(0) if local is None else f'{match.group(1)}="{prefix}/{local}"'

    changed = _LINK.sub(replace, html)
    if changed == html:
        return False
    page.write_text(changed, "utf-8")
    return True


def localise_site(site: Path, since: float | None = None) -> int:
    """Install the assets and rewrite the pages of a built Data Docs site (only those written
    at or after ``since``, a ``time.time()``, when given: a run touches its own pages and the
    index, not the whole history); returns the number of pages changed."""
    if not site.is_dir():
        return 0
    install_assets(site)
    pages = (page for page in site.rglob("*.html") if since is None or page.stat().st_mtime >= since)
    return sum(localise_page(page, site) for page in pages)


def remaining_cdn_links(html: str) -> list[str]:
    """Script and style links of a page that still point at a CDN (for checks and tests);
    links to documentation sites are ordinary hyperlinks and not counted."""
    return [url for kind, url in _LINK.findall(html)
            if url in _REPLACED or re.search(r"\.(js|css)(\?|$)|/npm/", url)]
