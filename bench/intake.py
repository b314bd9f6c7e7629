"""Intake alone, from the front database (前置库) or from the drop folder, on the same
seeded workload: the stage's wall time, its user and system CPU time and its peak RSS.

    python -m bench.intake --records 100000 [--ingress front_db|drop|both-ways] [--profile FILE]

The portal's hand-over is written first (not measured); then intake runs in a fresh process
of its own, so the figures are the stage's alone: ``resource.getrusage`` of that process
(CPU of every thread, the hash worker included; system time is the kernel's share, which the
drop folder's file work is mostly made of) and its peak RSS. ``both-ways`` runs the two
ingresses one after the other on the same workload. Every application must be carried.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import peak_rss_mb


def prepare(root: Path, records: int, seed: int, ingress: str) -> dict[str, str]:
    """Write the catalogue and the portal's hand-over under ``root``; the environment of the
    intake process."""
    from bench.workload import catalogue_documents, write_drop, write_front_db

    documents = catalogue_documents(seed)
    catalogue = root / "catalogue.json"
    catalogue.write_bytes(json.dumps(documents, ensure_ascii=False).encode("utf-8"))
    environ = {
        "HUB_DATA_ROOT": str(root / "data"), "HUB_ZONE": "both", "HUB_SIMULATE": "1",
        "HUB_CATALOGUE_FILE": str(catalogue), "HUB_INGRESS": ingress,
    }
    os.environ.update(environ)
    from hub.keys import init_keys
    from hub.settings import load_settings
    from hub.zones import zone_engine

    settings = load_settings()
    init_keys(settings)
    if ingress == "drop":
        write_drop(settings.portal_drop, records, seed, documents)
    else:
        engine = zone_engine(settings, "internet")
        write_front_db(engine, settings.portal_store, records, seed, documents)
        engine.dispose()
    os.sync()  # the hand-over's writeback belongs to the portal, not to intake
    return environ


def measure(profile: str | None) -> dict[str, Any]:
    """In the intake process: warm up as a running deployment would (imports, catalogue,
    zone database opened), then run the stage once."""
    import cProfile

    from hub import stages
    from hub.settings import load_settings
    from hub.zones import load_catalogue, zone_engine

    settings = load_settings()
    load_catalogue(settings)
    zone_engine(settings, "internet")
    before = resource.getrusage(resource.RUSAGE_SELF)
    rss_before = peak_rss_mb()
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    report = stages.intake(settings)
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall": wall, "user": after.ru_utime - before.ru_utime, "system": after.ru_stime - before.ru_stime,
        "peak_rss_mb": peak_rss_mb(), "rss_before_mb": rss_before,
        "carried": report["carried"], "quarantined": len(report["quarantined"]), "bundles": len(report["bundles"]),
    }


def run(records: int, seed: int, ingress: str, profile: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hub-bench-intake-") as folder:
        started = time.perf_counter()
        environ = prepare(Path(folder), records, seed, ingress)
        generated = time.perf_counter() - started
        done = subprocess.run(
            [sys.executable, "-m", "bench.intake", "--measure", *(["--profile", profile] if profile else [])],
            env={**os.environ, **environ}, capture_output=True, text=True, check=False,
        )
        if done.returncode:
            raise SystemExit(f"the intake process failed:\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    if figures["carried"] != records:
        raise SystemExit(f"intake carried {figures['carried']} of {records} applications")
    return {"records": records, "ingress": ingress, "generated": generated, **figures}


def print_row(result: dict[str, Any]) -> None:
    records = result["records"]
    cpu = result["user"] + result["system"]
    print(f"{result['ingress']:<9} {records:>10,} {result['wall']:>8.2f} {result['user']:>8.2f} {result['system']:>8.2f} "
          f"{cpu / records * 1e6:>10.1f} {result['peak_rss_mb']:>9.0f} {result['bundles']:>8}   "
          f"(hand-over written in {result['generated']:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--ingress", choices=("front_db", "drop", "both-ways"), default="both-ways")
    parser.add_argument("--profile", help="write a cProfile of the intake stage here")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.profile)))
        return
    ingresses = ("front_db", "drop") if args.ingress == "both-ways" else (args.ingress,)
    print(f"{'ingress':<9} {'records':>10} {'wall s':>8} {'user s':>8} {'sys s':>8} {'CPU µs/rec':>10} "
          f"{'peak MB':>9} {'bundles':>8}")
    for ingress in ingresses:
        print_row(run(args.records, args.seed, ingress, args.profile))


if __name__ == "__main__":
    main()
