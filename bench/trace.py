"""`hub trace NET_ID` on a province-day of provenance, and the audit log's append cost.

    python -m bench.trace [--applications 1000000] [--events 6] [--internet-events 2]
                          [--batch 10000] [--lookups 20] [--dir DIR]

Builds both zone databases (SQLite, migrated) holding ``--applications`` applications'
worth of provenance events: ``--events`` per application in the administration zone (the
exchange database) and ``--internet-events`` in the internet zone, written through
``connectors.provenance.record_events`` in batches of ``--batch`` events as the stages write
them, so every event is also appended to its zone's audit log (a checkpoint is signed every
100 batches). It reports the append cost per batch as the log grows (median and slowest of
the batches around 10%, 50% and 100% of the day: flat means O(log n) per batch), then times
``connectors.provenance.trace`` (the function ``hub trace`` calls) for ``--lookups`` random
NET_IDs, then ``hub trace NET_ID`` and ``hub audit prove NET_ID`` end to end (a new process
each: interpreter start, settings, database open, query, output). Target: ``hub trace``
under 1 s at 1,000,000 applications a day (issue 18).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import machine, peak_rss_mb

TARGET_SECONDS = 1.0
STAGES_ADMIN = ("inbound_receive", "applications_load", "processing", "processing", "processing", "status_publish")
STAGES_INTERNET = ("intake", "portal_publish")
AT = "2026-11-20T18:00:00+08:00"


def net_id(n: int) -> str:
    return f"NET20261120{n:08d}"


class _LogShare:
    """Time spent in ``connectors.audit.append_entries`` (the log's own share of a batch:
    frontier read, leaf hashes, entries, stored hashes, head), measured around it."""

    def __init__(self) -> None:
        from connectors import audit

        self.seconds = 0.0
        self.original = audit.append_entries

        def timed(*args: Any, **kwargs: Any) -> int:
            started = time.perf_counter()
            try:
                return int(self.original(*args, **kwargs))
            finally:
                self.seconds += time.perf_counter() - started

        audit.append_entries = timed

    def close(self) -> None:
        from connectors import audit

        audit.append_entries = self.original


def _fill(engine: Any, applications: int, per_application: int, stages: tuple[str, ...], batch: int,
          sign: Any) -> list[tuple[int, float, float]]:
    """Write the zone's events in batches; (events so far, seconds, of which the log's) per batch."""
    from connectors.audit import checkpoint_if_grown
    from connectors.db import transaction
    from connectors.provenance import record_events

    timings: list[tuple[int, float, float]] = []
    share = _LogShare()
    total = applications * per_application
    written = 0
    while written < total:
        count = min(batch, total - written)
        # Events of one stage for consecutive applications, as a stage writes them.
        events = []
        for i in range(written, written + count):
            application, step = divmod(i, per_application)
            stage = stages[step % len(stages)]
            events.append((net_id(application), stage, "done", f"b#{application // 5000}",
                           {"event_id": i} if stage == "status_publish" else None))
        started, logged = time.perf_counter(), share.seconds
        with transaction(engine) as connection:
            record_events(connection, events, AT)
        timings.append((written + count, time.perf_counter() - started, share.seconds - logged))
        written += count
        if len(timings) % 100 == 0 or written == total:
            checkpoint_if_grown(engine, sign, AT)
    share.close()
    return timings


def _around(timings: list[tuple[int, float, float]], share: float, total: int) -> dict[str, float]:
    """Median and slowest of the 20 batches around ``share`` of the day, whole and the log's share."""
    target = share * total
    index = min(range(len(timings)), key=lambda i: abs(timings[i][0] - target))
    window = timings[max(0, index - 10):index + 10]
    whole, log = [t for _, t, _ in window], [t for _, _, t in window]
    return {"events": timings[index][0], "median_ms": statistics.median(whole) * 1000, "max_ms": max(whole) * 1000,
            "log_median_ms": statistics.median(log) * 1000, "log_max_ms": max(log) * 1000}


def _cli(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True,
                          check=False)
    return time.perf_counter() - started, done.returncode, done.stdout


def run(applications: int, events: int, internet_events: int, batch: int, lookups: int, root: Path) -> dict[str, Any]:
    from connectors.db import engine_for
    from connectors.migrate import create_schema
    from connectors.provenance import trace
    from ferry.suites import get_suite
    from ferry.tlog import NoteSigner

    result: dict[str, Any] = {"applications": applications, "admin_events": applications * events,
                              "internet_events": applications * internet_events, "batch": batch}
    urls = {"admin": f"sqlite:///{root / 'exchange.sqlite'}", "internet": f"sqlite:///{root / 'internet.sqlite'}"}
    engines = {zone: engine_for(url) for zone, url in urls.items()}
    for zone, engine in engines.items():
        create_schema(engine, zone)
    signer = NoteSigner("power-exchange-hub/bench/admin", "intl", get_suite("intl").generate_signing_key())
    started = time.perf_counter()
    admin = _fill(engines["admin"], applications, events, STAGES_ADMIN, batch, signer)
    result["admin_build_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    _fill(engines["internet"], applications, internet_events, STAGES_INTERNET, batch,
          NoteSigner("power-exchange-hub/bench/internet", "intl", get_suite("intl").generate_signing_key()))
    result["internet_build_seconds"] = time.perf_counter() - started
    total = applications * events
    result["append_per_batch"] = [_around(admin, share, total) for share in (0.1, 0.5, 1.0)]
    result["append_events_per_second"] = total / result["admin_build_seconds"]

    chooser = random.Random(7)
    chosen = [net_id(chooser.randrange(applications)) for _ in range(lookups)]
    zones = [("internet", engines["internet"]), ("admin", engines["admin"])]
    trace(zones, chosen[0])  # the first open of each database is not what is measured
    seconds = []
    for target in chosen:
        begun = time.perf_counter()
        found = trace(zones, target)
        seconds.append(time.perf_counter() - begun)
        assert len(found) == events + internet_events, (target, len(found))
    result["trace_function_ms"] = {"median": statistics.median(seconds) * 1000, "max": max(seconds) * 1000}

    env = {**os.environ, "HUB_ZONE": "both", "HUB_DATA_ROOT": str(root / "data"),
           "HUB_EXCHANGE_DB_URL": urls["admin"], "HUB_INTERNET_DB_URL": urls["internet"]}
    cli = [_cli(["trace", target], env) for target in chosen[:5]]
    assert all(code == 0 for _, code, _ in cli), cli
    result["trace_cli_seconds"] = {"median": statistics.median(s for s, _, _ in cli), "max": max(s for s, _, _ in cli)}
    proven = [_cli(["audit", "prove", target], env) for target in chosen[:3]]
    assert all(code == 0 and json.loads(out)["zones"] for _, code, out in proven), proven
    result["prove_cli_seconds"] = {"median": statistics.median(s for s, _, _ in proven),
                                   "max": max(s for s, _, _ in proven)}
    result["database_mb"] = {zone: Path(url.removeprefix("sqlite:///")).stat().st_size / 2**20
                             for zone, url in urls.items()}
    result["peak_rss_mb"] = peak_rss_mb()
    result["target_met"] = result["trace_cli_seconds"]["max"] < TARGET_SECONDS
    return result


def print_report(result: dict[str, Any]) -> None:
    print(f"hub trace over {result['applications']:,} applications: {result['admin_events']:,} events in the "
          f"administration zone, {result['internet_events']:,} in the internet zone, each in its zone's audit log")
    print(f"build through record_events, batches of {result['batch']:,}: admin {result['admin_build_seconds']:.1f} s "
          f"({result['append_events_per_second']:,.0f} events/s), internet {result['internet_build_seconds']:.1f} s")
    print("cost per batch of record_events (provenance rows and their leaves), and of it the log's own share")
    print("(connectors.audit.append_entries: frontier read, leaf hashes, entries, stored hashes, head), as the day grows:")
    for point in result["append_per_batch"]:
        print(f"  at {point['events']:>12,} events: median {point['median_ms']:7.1f} ms (log {point['log_median_ms']:6.1f} ms),"
              f" slowest {point['max_ms']:7.1f} ms (log {point['log_max_ms']:6.1f} ms)")
    fn, cli, prove = result["trace_function_ms"], result["trace_cli_seconds"], result["prove_cli_seconds"]
    print(f"connectors.provenance.trace: median {fn['median']:.2f} ms, slowest {fn['max']:.2f} ms")
    print(f"hub trace NET_ID (new process, end to end): median {cli['median']:.2f} s, slowest {cli['max']:.2f} s")
    print(f"hub audit prove NET_ID (new process, end to end): median {prove['median']:.2f} s, slowest {prove['max']:.2f} s")
    print(f"databases: admin {result['database_mb']['admin']:,.0f} MB, internet {result['database_mb']['internet']:,.0f} MB;"
          f" peak RSS {result['peak_rss_mb']:.0f} MB")
    verdict = "met" if result["target_met"] else "MISSED"
    print(f"target hub trace < {TARGET_SECONDS:.0f} s at this size: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=len(STAGES_ADMIN), help="events per application, admin zone")
    parser.add_argument("--internet-events", type=int, default=len(STAGES_INTERNET))
    parser.add_argument("--batch", type=int, default=10_000, help="events per record_events call")
    parser.add_argument("--lookups", type=int, default=20)
    parser.add_argument("--dir", type=Path, help="where the databases go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        result = run(args.applications, args.events, args.internet_events, args.batch, args.lookups, args.dir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-trace-") as directory:
            result = run(args.applications, args.events, args.internet_events, args.batch, args.lookups, Path(directory))
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), "utf-8")
    if not result["target_met"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
