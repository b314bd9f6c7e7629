"""The data path without scheduler overhead: portal drop → intake → bundle → receive →
validate and load → simulated processing → status publish → public feed.

    python -m bench.data_path [--records N] [--seed S]

Prints each stage's wall time, records per second and the process's peak RSS after it.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(records: int, seed: int, root: Path) -> list[tuple[str, float, float]]:
    os.environ.update({"HUB_DATA_ROOT": str(root), "HUB_ZONE": "both", "HUB_SIMULATE": "1"})
    from hub import stages
    from hub.keys import init_keys
    from hub.settings import load_settings
    from hub.simulators.applicants import generate_batch
    from hub.zones import load_catalogue

    settings = load_settings()
    init_keys(settings)
    documents = [dict(i.document) for i in load_catalogue(settings).items.values()]
    rows = []
    started = time.perf_counter()
    generate_batch(settings.portal_drop, records, seed, documents, settings.agency_code, date(2026, 11, 20))
    rows.append(("generate portal drop (not hub work)", time.perf_counter() - started, peak_rss_mb()))
    for name in ("intake", "inbound_receive", "applications_load", "case_processing", "status_publish", "portal_publish"):
        started = time.perf_counter()
        stages.STAGES[name](settings)
        rows.append((name, time.perf_counter() - started, peak_rss_mb()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        rows = run(args.records, args.seed, Path(folder))
    print(f"data path, {args.records:,} applications, {os.cpu_count()} cores")
    print(f"{'stage':<38} {'seconds':>9} {'records/s':>11} {'peak RSS MB':>12}")
    hub_seconds = 0.0
    for name, seconds, rss in rows:
        if not name.startswith("generate"):
            hub_seconds += seconds
        print(f"{name:<38} {seconds:>9.2f} {args.records / seconds:>11,.0f} {rss:>12.0f}")
    print(f"{'hub total (intake → public feed)':<38} {hub_seconds:>9.2f} {args.records / hub_seconds:>11,.0f}")


if __name__ == "__main__":
    main()
