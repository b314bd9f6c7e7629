"""The data path without scheduler overhead: portal drop → intake → bundle → receive →
validate and load → simulated processing → status publish → public feed.

    python -m bench.data_path [--records N] [--seed S] [--ingress front_db|drop] [--sequential] [--profile FILE]
    python -m bench.data_path --scaling 10000,100000[,1000000] [--ingress front_db|drop]

``--ingress`` chooses how the portal hands submissions over: rows of the front database
(前置库, the default) or folders of the drop (``HUB_INGRESS``); the workload is the same.

By default the two zones run side by side, as deployed (DESIGN §2: each zone runs its own
Airflow): one process plays the internet zone (intake, then the public feed as outbound
bundles arrive), the other the administration zone. The target leaves the case-processing
simulator out (it plays another system, which takes days, not seconds, over a province-day):
it runs in a third process, with memory of its own, and the run has two hub phases with the
simulator between them:

1. inbound: intake in the internet zone while the administration zone receives and loads,
   round after round as inbound bundles arrive, until every application is loaded;
2. the simulator carries every case to its end (timed, reported apart, not hub time);
3. outbound: the administration zone publishes status round after round while the internet
   zone applies the outbound bundles to the public store as they arrive.

The figure checked against the §6 target (1,000,000 in 60 s, peak RSS under 1 GB) is the
hub's wall time, phase 1 plus phase 3 (from the start of intake to the last application
loaded, and from the end of the simulator to the last public record), and the sum of both
zones' peak RSS (the simulator's is reported apart). The per-stage table gives each stage's
own seconds, summed over its calls: where the time goes.
``--sequential`` runs the stages one after the other in one process instead (``--profile``
implies it: one cProfile of every stage).

Every run checks that every application ended as the workload says it must (accepted, or
rejected with its reason codes). ``--scaling`` runs each size in its own process and prints
time per record and peak RSS side by side: time must grow linearly, memory must stay flat.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import multiprocessing
import os
import pstats
import queue
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import peak_rss_mb

STAGES = ("intake", "inbound_receive", "applications_load", "case_processing", "status_publish", "portal_publish")
ADMIN_STAGES = ("inbound_receive", "applications_load", "case_processing", "status_publish")
INBOUND_STAGES = ("inbound_receive", "applications_load")  # phase 1 of the side-by-side run
TARGET_RECORDS, TARGET_SECONDS, TARGET_RSS_MB = 1_000_000, 60.0, 1024.0
# How long a zone waits before looking again when a round found nothing to do.
POLL_SECONDS = 0.2


def run(records: int, seed: int, root: Path, profile: Path | None = None,
        sequential: bool = False, ingress: str = "front_db") -> dict[str, Any]:
    """Generate the workload under ``root`` and carry it through every stage; returns the
    figures. Both zones side by side unless ``sequential`` (or ``profile``). ``ingress``:
    the portal writes the front database (``front_db``) or the drop folder (``drop``)."""
    from bench.workload import catalogue_documents, write_drop, write_front_db

    catalogue_file = root / "catalogue.json"
    documents = catalogue_documents(seed)
    catalogue_file.write_bytes(json.dumps(documents, ensure_ascii=False).encode("utf-8"))
    environ = {
        "HUB_DATA_ROOT": str(root / "data"), "HUB_ZONE": "both", "HUB_SIMULATE": "1",
        "HUB_CATALOGUE_FILE": str(catalogue_file), "HUB_INGRESS": ingress,
    }
    os.environ.update(environ)
    from hub.keys import init_keys
    from hub.settings import load_settings

    settings = load_settings()
    init_keys(settings)
    started = time.perf_counter()
    if ingress == "drop":
        workload = write_drop(settings.portal_drop, records, seed, documents)
    else:
        from hub.zones import zone_engine

        workload = write_front_db(zone_engine(settings, "internet"), settings.portal_store, records, seed, documents)
    os.sync()  # the drop's writeback belongs to the generator, not to the first hub stage
    generated = time.perf_counter() - started
    print(f"  {records:,}: workload generated in {generated:.1f} s", flush=True)
    if sequential or profile:
        figures = _sequential(records, settings, profile)
    else:
        figures = _side_by_side(records, environ)
    return {
        "records": records,
        "mode": "sequential" if sequential or profile else "zones side by side",
        "ingress": ingress,
        "generated": generated,
        **figures,
        "workload": {
            "envelope_bytes": workload.envelope_bytes, "attached": workload.attached,
            "attachment_bytes": workload.attachment_bytes, "rejected": workload.rejected,
        },
        "check": _check(workload.expected, figures["reports"]),
    }


def stage_call(name: str) -> Callable[[Any], dict[str, Any]]:
    """The hub's stage ``name``; the processing simulator runs to the workload's fixed
    moment (every case to its end) instead of the wall clock."""
    from bench.workload import PROCESSED_UNTIL
    from hub import stages

    if name == "case_processing":
        return functools.partial(stages.case_processing, at=PROCESSED_UNTIL)
    return stages.STAGES[name]


def _sequential(records: int, settings: Any, profile: Path | None) -> dict[str, Any]:
    """Every stage once, one after the other, in this process."""

    profiler = cProfile.Profile() if profile else None
    reports: dict[str, dict[str, Any]] = {}
    rows = []
    for name in STAGES:
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        reports[name] = stage_call(name)(settings)
        if profiler:
            profiler.disable()
        rows.append((name, time.perf_counter() - started, 1, time.process_time() - cpu))
        print(f"  {records:,}: {name} {rows[-1][1]:.1f} s, peak RSS {peak_rss_mb():.0f} MB", flush=True)
    if profiler and profile:
        profiler.dump_stats(profile)
    simulated = next(row[1] for row in rows if row[0] == "case_processing")
    seconds = sum(row[1] for row in rows) - simulated
    return {"rows": rows, "wall": seconds, "simulator_wall": simulated, "zones": {"both": [seconds, peak_rss_mb()]},
            "reports": reports}


def _side_by_side(records: int, environ: dict[str, str]) -> dict[str, Any]:
    """The internet zone and the administration zone in a process each, started together,
    and the simulator (the case-processing system) in a third, which works only between the
    hub's two phases; its memory is its own, not the hub's."""
    context = multiprocessing.get_context("spawn")  # no engine or file state shared with this one
    signals = {name: context.Event() for name in ("start", "intake_done", "loaded", "processed", "admin_done")}
    results = context.Queue()
    workers = [
        context.Process(target=_zone, args=(zone, environ, signals, results))
        for zone in ("internet", "admin", "simulator")
    ]
    for worker in workers:
        worker.start()
    ready = _collect(results, workers)  # imports and catalogue warmed, as in a running deployment
    assert ready == ["ready"] * len(workers)
    started = time.perf_counter()
    signals["start"].set()
    finished = _collect(results, workers)
    for worker in workers:
        worker.join()
    admin = next(f for f in finished if f["zone"] == "admin")
    simulated = admin["processed"] - admin["loaded"]
    wall = max(f["finished"] for f in finished if f["zone"] != "simulator") - started - simulated
    stages: dict[str, tuple[Any, ...]] = {}
    for zone in finished:
        stages.update(zone["stages"])  # each stage runs in one process
    simulator = next(f for f in finished if f["zone"] == "simulator")
    return {
        "rows": [(name, stages[name][0], stages[name][1], stages[name][3]) for name in STAGES],
        "peak_rise": {name: stages[name][4] for name in STAGES},
        "wall": wall,
        "simulator_wall": simulated,
        "simulator_rss_mb": simulator["peak_rss_mb"],
        "zones": {f["zone"]: [f["busy"], f["peak_rss_mb"]] for f in finished if f["zone"] != "simulator"},
        "idle": {f["zone"]: f["idle"] for f in finished if f["zone"] != "simulator"},
        "reports": {name: stages[name][2] for name in STAGES},
    }


def _collect(results: Any, workers: list[Any]) -> list[Any]:
    """One message from each zone process; stops everything if one of them fails."""
    messages: list[Any] = []
    while len(messages) < len(workers):
        try:
            messages.append(results.get(timeout=5))
        except queue.Empty:
            if any(worker.exitcode for worker in workers):
                for worker in workers:
                    worker.kill()
                raise SystemExit("a zone process failed: see its traceback above") from None
    return messages


def _zone(zone: str, environ: dict[str, str], signals: dict[str, Any], results: Any) -> None:
    """One process's loop: the internet zone carries the whole hand-over, then applies
    outbound bundles as they arrive; the administration zone receives and loads round after
    round until intake has finished and a round finds nothing to do, waits while the
    simulator carries every case to its end, then publishes until a round finds nothing
    (the phases of the module's text)."""
    os.environ.update(environ)
    from hub.settings import load_settings
    from hub.zones import load_catalogue

    settings = load_settings()
    load_catalogue(settings)
    # Per stage: seconds, calls, the summed report, CPU seconds (all threads) and the
    # largest rise of the process's peak RSS during one of its calls.
    totals: dict[str, list[Any]] = {name: [0.0, 0, {}, 0.0, 0.0] for name in STAGES}
    idle = [0.0, 0]  # calls that found nothing to do: the cost of polling, kept apart
    marks: dict[str, float] = {}  # the administration zone's phase ends (perf_counter)

    def timed(name: str) -> bool:
        """Run one stage; False when it found nothing to do."""
        began, cpu, peak = time.perf_counter(), time.process_time(), peak_rss_mb()
        report = stage_call(name)(settings)
        spent = time.perf_counter() - began
        totals[name][4] = max(totals[name][4], peak_rss_mb() - peak)
        _add_report(totals[name][2], report)
        worked = any(report.values())
        if worked:
            totals[name][3] += time.process_time() - cpu
        figures = totals[name] if worked else idle
        figures[0] += spent
        figures[1] += 1
        return worked

    results.put("ready")
    signals["start"].wait()
    if zone == "internet":
        timed("intake")
        signals["intake_done"].set()
        _rounds(lambda: timed("portal_publish"), signals["admin_done"])
    elif zone == "simulator":
        signals["loaded"].wait()
        while timed("case_processing"):
            pass
        signals["processed"].set()
    else:

        def inbound_round() -> bool:
            worked = [timed(name) for name in INBOUND_STAGES]  # both stages, each round
            return any(worked)

        _rounds(inbound_round, signals["intake_done"])
        marks["loaded"] = time.perf_counter()
        signals["loaded"].set()
        signals["processed"].wait()
        marks["processed"] = time.perf_counter()
        while timed("status_publish"):
            pass
        signals["admin_done"].set()
    finished = time.perf_counter()
    results.put({
        "zone": zone, "finished": finished, "peak_rss_mb": peak_rss_mb(), **marks,
        "busy": sum(value[0] for value in totals.values()), "idle": idle,
        "stages": {name: tuple(value) for name, value in totals.items() if value[1] or value[2]},
    })


def _rounds(round_: Callable[[], bool], upstream_done: Any) -> None:
    """Run ``round_`` until the upstream zone is done and a round after that found nothing."""
    while True:
        last = upstream_done.is_set()  # read before the round: its work is then all visible
        if round_():
            continue
        if last:
            return
        time.sleep(POLL_SECONDS)


def _add_report(total: dict[str, Any], report: dict[str, Any]) -> None:
    """Sum a stage's reports over its calls: counts added, lists joined, tallies merged."""
    for key, value in report.items():
        if isinstance(value, bool) or not isinstance(value, int | float | list | dict):
            total[key] = value
        elif isinstance(value, dict):
            tally = total.setdefault(key, {})
            for name, count in value.items():
                tally[name] = tally.get(name, 0) + count
        else:
            total[key] = total.get(key, type(value)()) + value


def _check(expected: Any, reports: dict[str, Any]) -> list[str]:
    """Differences between what the workload says must happen and what the hub did."""
    problems = []
    load = reports["applications_load"]
    if load["accepted"] != expected["accepted"]:
        problems.append(f"accepted {load['accepted']}, expected {expected['accepted']}")
    for code, count in expected.items():
        if code != "accepted" and load["reasons"].get(code, 0) != count:
            problems.append(f"{code}: {load['reasons'].get(code, 0)}, expected {count}")
    if reports["intake"]["quarantined"]:
        problems.append(f"intake quarantined {len(reports['intake']['quarantined'])} submissions")
    sent = reports["status_publish"]["published"] + reports["status_publish"]["disclosures"]
    if reports["portal_publish"]["records"] != sent:
        problems.append(f"public feed applied {reports['portal_publish']['records']} records, {sent} were sent")
    if reports["status_publish"]["held"]:
        problems.append(
            f"status_publish held {reports['status_publish']['held']} changes for review (the scanner reads "
            "some national power codes as bank cards: see docs/benchmarks.md)"
        )
    return problems


def hub_figures(result: dict[str, Any]) -> tuple[float, float]:
    """Wall seconds of the hub's work and the peak RSS it needed (both zones' peaks added
    when they ran side by side)."""
    return result["wall"], sum(rss for _, rss in result["zones"].values())


def print_report(result: dict[str, Any]) -> None:
    records = result["records"]
    work = result["workload"]
    print(f"data path, {records:,} applications ({work['envelope_bytes'] / records:,.0f} B each, "
          f"{work['attached']:,} with {work['attachment_bytes'] / 2**20:,.0f} MiB of attachments, "
          f"{work['rejected']:,} invalid), {os.cpu_count()} cores, {result['mode']}, "
          f"ingress {result.get('ingress', 'drop')}")
    print(f"generate the portal's hand-over (not hub work): {result['generated']:.2f} s")
    print(f"{'stage (own seconds, summed over calls)':<40} {'calls':>6} {'seconds':>9} {'records/s':>11} "
          f"{'µs/record':>10} {'CPU s':>7} {'peak rise MB':>13}")
    rises = result.get("peak_rise", {})
    for name, seconds, calls, cpu in result["rows"]:
        rise = f"{rises[name]:>13.0f}" if name in rises else ""
        print(f"{name:<40} {calls:>6} {seconds:>9.2f} {records / seconds:>11,.0f} {seconds / records * 1e6:>10.0f} "
              f"{cpu:>7.2f} {rise}")
    for zone, (busy, rss) in result["zones"].items():
        print(f"{'zone ' + zone + ' (busy seconds, peak RSS MB)':<40} {'':>6} {busy:>9.2f} "
              f"{'':>11} {rss:>10.0f}")
    for zone, (seconds, calls) in result.get("idle", {}).items():
        print(f"{'zone ' + zone + ', calls that found nothing':<40} {calls:>6} {seconds:>9.2f}")
    wall, peak = hub_figures(result)
    rate = records / wall
    if "simulator_wall" in result:
        rss = f"{result['simulator_rss_mb']:>10.0f}" if "simulator_rss_mb" in result else ""
        print(f"{'simulator between the phases (not hub)':<40} {'':>6} {result['simulator_wall']:>9.2f} "
              f"{'':>11} {rss}")
    print(f"{'hub wall time (intake → public feed)':<40} {'':>6} {wall:>9.2f} {rate:>11,.0f} "
          f"{wall / records * 1e6:>10.0f}")
    needed = TARGET_RECORDS / TARGET_SECONDS
    verdict = "met" if rate >= needed else f"MISSED: {needed / rate:.1f}× too slow"
    print(f"target {TARGET_RECORDS:,} in {TARGET_SECONDS:.0f} s = {needed:,.0f} records/s: {verdict}; "
          f"projected 1M: {TARGET_RECORDS / rate:,.0f} s")
    print(f"target peak RSS < {TARGET_RSS_MB:.0f} MB: {'met' if peak < TARGET_RSS_MB else 'MISSED'} ({peak:.0f} MB)")
    print("outcomes: " + ("every application ended as the workload expects" if not result["check"]
                          else "WRONG: " + "; ".join(result["check"])))


def scaling(sizes: list[int], seed: int, sequential: bool = False, ingress: str = "front_db") -> None:
    """Each size in a fresh process; time per record and peak RSS side by side."""
    results = []
    for size in sizes:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                [sys.executable, "-m", "bench.data_path", "--records", str(size), "--seed", str(seed),
                 "--json", out.name, "--ingress", ingress, *(["--sequential"] if sequential else [])], check=True,
            )
            results.append(json.loads(Path(out.name).read_text()))
    print("\nscaling of the data path (each size in its own process)")
    print(f"{'records':>10} {'hub seconds':>12} {'µs/record':>10} {'records/s':>11} {'peak RSS MB':>12}")
    base = None
    for result in results:
        seconds, peak = hub_figures(result)
        per = seconds / result["records"] * 1e6
        base = base or (per, peak)
        print(f"{result['records']:>10,} {seconds:>12.1f} {per:>10.1f} {result['records'] / seconds:>11,.0f} "
              f"{peak:>12.0f}   (time/record ×{per / base[0]:.2f}, peak RSS ×{peak / base[1]:.2f})")
    print("own seconds per stage:")
    for index, name in enumerate(STAGES):
        print(f"  {name:<20} " + "  ".join(f"{r['rows'][index][1]:>9.1f}" for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--sequential", action="store_true", help="one stage after the other, one process")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the hub stages here (sequential)")
    parser.add_argument("--scaling", help="comma-separated sizes, each run in its own process")
    parser.add_argument("--ingress", choices=("front_db", "drop"), default="front_db",
                        help="the portal's hand-over: front database rows (default) or drop folders")
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling:
        scaling([int(s) for s in args.scaling.split(",")], args.seed, args.sequential, args.ingress)
        return
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as folder:
        result = run(args.records, args.seed, Path(folder), args.profile, args.sequential, args.ingress)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result))
    if args.profile:
        print(f"\ntop of the profile ({args.profile}), by own time:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
