"""The public status store alone: what a bundle's records cost to put as the store grows,
what compaction costs, and what a lookup costs (``connectors.status_store``).

    python -m bench.public_store [--records 2000000] [--batch 50000] [--record-bytes 320]

Random 32-byte names, one sealed record of ``--record-bytes`` each, ``--batch`` per bundle
(segment), committed durably as portal_publish does; after every 10 bundles: CPU and wall
µs per record of the last bundle, the merges portal_publish's compaction made and their
seconds, and the mean of 1,000 lookups of names already stored. At the end, what
reconciliation's count of the store's documents and events costs (``StatusStore.counts``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.measure import peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--record-bytes", type=int, default=320)
    parser.add_argument("--fan-in", type=int, help="segments per merge (default: the store's MERGE_FAN_IN)")
    args = parser.parse_args()
    from connectors import status_store
    from connectors.status_store import StatusStore

    if args.fan_in:
        status_store.MERGE_FAN_IN = args.fan_in
    from rules.query_password import lookup_from_bytes

    sealed = os.urandom(args.record_bytes)
    with tempfile.TemporaryDirectory(prefix="hub-store-") as folder:
        store = StatusStore(Path(folder) / "status.sqlite")
        known: list[str] = []
        stored = merge_seconds = merges = 0.0
        print(f"{'records':>10} {'put CPU µs':>11} {'put wall µs':>12} {'merges':>7} {'merge s':>8} "
              f"{'segments':>9} {'lookup ms':>10}")
        for sequence in range(1, args.records // args.batch + 1):
            events = [(lookup_from_bytes(os.urandom(32)), sequence, sealed) for _ in range(args.batch)]
            known.append(events[0][0])
            cpu, wall = time.process_time(), time.perf_counter()
            store.put(sequence, events)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            started = time.perf_counter()
            merges += store.compact(set(range(1, sequence + 1)))
            merge_seconds += time.perf_counter() - started
            stored += len(events)
            if sequence % 10 == 0:
                started = time.perf_counter()
                for lookup in (known * (1000 // len(known) + 1))[:1000]:
                    assert store.sealed(lookup) is not None
                lookup_ms = (time.perf_counter() - started)
                print(f"{stored:>10,.0f} {cpu / len(events) * 1e6:>11.1f} {wall / len(events) * 1e6:>12.1f} "
                      f"{merges:>7.0f} {merge_seconds:>8.1f} {store.segment_count():>9} {lookup_ms:>10.3f}",
                      flush=True)
        # What reconciliation asks of the store every run (``quality.reconciliation``): the
        # documents (distinct lookup names) and events it holds.
        cpu, wall = time.process_time(), time.perf_counter()
        documents, events_stored = store.counts()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"counts (reconciliation): {documents:,} documents, {events_stored:,} events in "
              f"{wall:.2f} s ({cpu:.2f} CPU s)")
        store.close()
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
