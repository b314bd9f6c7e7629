"""Run one legal-documents pass in a child process and SIGKILL it after the files are
written, before the transaction that records them commits.

Usage: python documents_crash_child.py EXCHANGE_URL STORE CATALOGUE_JSON. The real pass
runs with the real renderer; only a wrapper around ``_record`` kills the process."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def main(url: str, store: Path, catalogue_file: Path) -> None:
    from connectors import legal_documents
    from connectors.db import engine_for
    from rules.catalogue import build_catalogue

    def record(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    legal_documents._record = record  # type: ignore[assignment]
    catalogue = build_catalogue(json.loads(catalogue_file.read_text("utf-8")))
    legal_documents.render_documents(engine_for(url), store=store, catalogue=catalogue)
    raise SystemExit("the pass should have been killed before it recorded anything")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
