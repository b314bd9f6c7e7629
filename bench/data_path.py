"""The data path without scheduler overhead: portal drop → intake → bundle → receive →
validate and load → simulated processing → status publish → public feed.

    python -m bench.data_path [--records N] [--seed S] [--profile FILE]
    python -m bench.data_path --scaling 10000,100000[,1000000]

Prints each stage's wall time, records per second and the process's peak RSS after it,
checks that every application ended as the workload says it must (accepted, or rejected
with its reason codes), and compares the total with the §6 target (1,000,000 in 60 s,
peak RSS under 1 GB). ``--scaling`` runs each size in its own process and prints time
per record and peak RSS side by side: time must grow linearly, memory must stay flat.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import peak_rss_mb

STAGES = ("intake", "inbound_receive", "applications_load", "case_processing", "status_publish", "portal_publish")
TARGET_RECORDS, TARGET_SECONDS, TARGET_RSS_MB = 1_000_000, 60.0, 1024.0


def run(records: int, seed: int, root: Path, profile: Path | None = None) -> dict[str, Any]:
    """Generate the workload under ``root`` and run every stage once; returns the figures."""
    from bench.workload import catalogue_documents, write_drop

    catalogue_file = root / "catalogue.json"
    documents = catalogue_documents(seed)
    catalogue_file.write_bytes(json.dumps(documents, ensure_ascii=False).encode("utf-8"))
    os.environ.update({
        "HUB_DATA_ROOT": str(root / "data"), "HUB_ZONE": "both", "HUB_SIMULATE": "1",
        "HUB_CATALOGUE_FILE": str(catalogue_file),
    })
    from hub import stages
    from hub.keys import init_keys
    from hub.settings import load_settings

    settings = load_settings()
    init_keys(settings)
    started = time.perf_counter()
    workload = write_drop(settings.portal_drop, records, seed, documents)
    os.sync()  # the drop's writeback belongs to the generator, not to the first hub stage
    rows = [("generate portal drop (not hub work)", time.perf_counter() - started, peak_rss_mb())]
    print(f"  {records:,}: workload generated in {rows[-1][1]:.1f} s", flush=True)
    profiler = cProfile.Profile() if profile else None
    reports = {}
    for name in STAGES:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        reports[name] = stages.STAGES[name](settings)
        if profiler:
            profiler.disable()
        rows.append((name, time.perf_counter() - started, peak_rss_mb()))
        print(f"  {records:,}: {name} {rows[-1][1]:.1f} s, peak RSS {rows[-1][2]:.0f} MB", flush=True)
    if profiler and profile:
        profiler.dump_stats(profile)
    load = reports["applications_load"]
    return {
        "records": records,
        "rows": rows,
        "workload": {
            "envelope_bytes": workload.envelope_bytes, "attached": workload.attached,
            "attachment_bytes": workload.attachment_bytes, "rejected": workload.rejected,
        },
        "check": _check(workload.expected, load, reports),
    }


def _check(expected: Any, load: dict[str, Any], reports: dict[str, Any]) -> list[str]:
    """Differences between what the workload says must happen and what the hub did."""
    problems = []
    if load["accepted"] != expected["accepted"]:
        problems.append(f"accepted {load['accepted']}, expected {expected['accepted']}")
    for code, count in expected.items():
        if code != "accepted" and load["reasons"].get(code, 0) != count:
            problems.append(f"{code}: {load['reasons'].get(code, 0)}, expected {count}")
    if reports["intake"]["quarantined"]:
        problems.append(f"intake quarantined {len(reports['intake']['quarantined'])} submissions")
    if reports["status_publish"]["held"]:
        problems.append(
            f"status_publish held {reports['status_publish']['held']} changes for review (the scanner reads "
            "some national power codes as bank cards: see docs/benchmarks.md)"
        )
    return problems


def print_report(result: dict[str, Any]) -> None:
    records = result["records"]
    work = result["workload"]
    print(f"data path, {records:,} applications ({work['envelope_bytes'] / records:,.0f} B each, "
          f"{work['attached']:,} with {work['attachment_bytes'] / 2**20:,.0f} MiB of attachments, "
          f"{work['rejected']:,} invalid), {os.cpu_count()} cores")
    print(f"{'stage':<38} {'seconds':>9} {'records/s':>11} {'peak RSS MB':>12}")
    hub_seconds = 0.0
    for name, seconds, rss in result["rows"]:
        if not name.startswith("generate"):
            hub_seconds += seconds
        print(f"{name:<38} {seconds:>9.2f} {records / seconds:>11,.0f} {rss:>12.0f}")
    rate = records / hub_seconds
    peak = max(rss for _, _, rss in result["rows"])
    print(f"{'hub total (intake → public feed)':<38} {hub_seconds:>9.2f} {rate:>11,.0f} {peak:>12.0f}")
    needed = TARGET_RECORDS / TARGET_SECONDS
    verdict = "met" if rate >= needed else f"MISSED: {needed / rate:.1f}× too slow"
    print(f"target {TARGET_RECORDS:,} in {TARGET_SECONDS:.0f} s = {needed:,.0f} records/s: {verdict}; "
          f"projected 1M: {TARGET_RECORDS / rate:,.0f} s")
    print(f"target peak RSS < {TARGET_RSS_MB:.0f} MB: {'met' if peak < TARGET_RSS_MB else 'MISSED'} ({peak:.0f} MB)")
    print("outcomes: " + ("every application ended as the workload expects" if not result["check"]
                          else "WRONG: " + "; ".join(result["check"])))


def scaling(sizes: list[int], seed: int) -> None:
    """Each size in a fresh process; time per record and peak RSS side by side."""
    results = []
    for size in sizes:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                [sys.executable, "-m", "bench.data_path", "--records", str(size), "--seed", str(seed),
                 "--json", out.name], check=True,
            )
            results.append(json.loads(Path(out.name).read_text()))
    print("\nscaling of the data path (each size in its own process)")
    print(f"{'records':>10} {'hub seconds':>12} {'µs/record':>10} {'records/s':>11} {'peak RSS MB':>12}")
    base = None
    for result in results:
        seconds = sum(s for n, s, _ in result["rows"] if not n.startswith("generate"))
        per = seconds / result["records"] * 1e6
        peak = max(r for _, _, r in result["rows"])
        base = base or (per, peak)
        print(f"{result['records']:>10,} {seconds:>12.1f} {per:>10.1f} {result['records'] / seconds:>11,.0f} "
              f"{peak:>12.0f}   (time/record ×{per / base[0]:.2f}, peak RSS ×{peak / base[1]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the hub stages here")
    parser.add_argument("--scaling", help="comma-separated sizes, each run in its own process")
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling:
        scaling([int(s) for s in args.scaling.split(",")], args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        result = run(args.records, args.seed, Path(folder), args.profile)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result))
    if args.profile:
        print(f"\ntop of the profile ({args.profile}), by own time:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
