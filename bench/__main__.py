"""`make bench`: every benchmark of the hub in one run, each in its own process (so each
peak RSS is its own), with the machine's description first.

    python -m bench [--records N] [--scaling 100000,1000000] [--skip NAME ...]

1. data path without scheduler (bench.data_path) at N applications (default 10,000);
2. baselines on the same workload, as ratios to the data path (bench.baselines);
3. ferry bytes path (bench.ferry_bytes, at 200,000 records and 256 MiB) and validation
   alone (bench.validation);
4. the scheduled loop with the real Airflow scheduler, 1,000 applications
   (bench.scheduled_loop);
5. the supervision pass over 100,000 open cases, 5% of them changed (bench.supervision;
   about a minute; the 1,000,000-case figure is its own command, see docs/benchmarks.md);
6. ``hub trace`` over 100,000 applications' logged provenance, and the audit log's append
   cost per batch (bench.trace; the 1,000,000-application figure is its own command);
7. with ``--scaling``, the data path at each size in its own process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.data_path import hub_figures
from bench.measure import machine


def _run(module: str, *args: str) -> int:
    print(f"\n== python -m {module} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", module, *args], check=False).returncode
    print(f"== {module}: exit {code}, {time.perf_counter() - started:.0f} s wall", flush=True)
    return code


def side_by_side(hub: dict[str, Any], baselines: dict[str, Any]) -> str:
    """The hub and the baselines on the same workload, one table: wall seconds, records per
    second, the hub's speed as a multiple of each baseline's, and peak RSS (per zone for the
    hub, as the zones run side by side, each in its own process)."""
    records = hub["records"]
    wall, _ = hub_figures(hub)
    cpu = {name: seconds for name, _wall, _calls, seconds in hub["rows"]}
    simulator = cpu.pop("case_processing", 0.0)
    lines = [f"\n== side by side, {records:,} applications of one workload",
             f"{'':<50} {'wall s':>8} {'records/s':>10} {'hub ×':>7} {'peak RSS MB':>12}"]
    zones = ", ".join(f"{zone} {rss:.0f}" for zone, (_busy, rss) in hub["zones"].items())
    lines.append(f"{'hub data path (intake → public store)':<50} {wall:>8.1f} {records / wall:>10,.0f} "
                 f"{1:>7.2f} {zones:>12}")
    between = f", {hub['simulator_wall']:.1f} s of wall time between the hub's phases" if "simulator_wall" in hub else ""
    lines.append(f"  the hub's stages took {sum(cpu.values()):.1f} CPU s ({sum(cpu.values()) / records * 1e6:.0f} µs "
                 f"per application), the case-processing simulator {simulator:.1f} CPU s besides{between}")
    for row in baselines["rows"]:
        rate = baselines["records"] / row["seconds"]
        lines.append(f"{row['name']:<50} {row['seconds']:>8.1f} {rate:>10,.0f} {records / wall / rate:>7.2f} "
                     f"{baselines['tools_peak_rss_mb'] if 'naive' in row['name'] else baselines['peak_rss_mb']:>12.0f}")
    lines.append("(hub ×: the hub's records per second over the baseline's; above 1 the hub is faster. The "
                 "hub's wall time leaves out the simulator, which runs between its inbound and outbound phases.)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--scaling", help="comma-separated sizes for the scaling run")
    parser.add_argument("--skip", nargs="*", default=[], help="benchmark modules to leave out")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    hub_rate = None
    hub: dict[str, Any] | None = None
    baselines: dict[str, Any] | None = None
    if "bench.data_path" not in args.skip:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            _run("bench.data_path", "--records", str(args.records), "--json", out.name)
            text = Path(out.name).read_text()
            if text:
                hub = json.loads(text)
                hub_rate = hub["records"] / hub_figures(hub)[0]
    if "bench.baselines" not in args.skip:
        extra = ["--hub-rate", f"{hub_rate:.1f}"] if hub_rate else []
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            _run("bench.baselines", "--records", str(args.records), "--json", out.name, *extra)
            text = Path(out.name).read_text()
            baselines = json.loads(text) if text else None
    if hub is not None and baselines is not None:
        print(side_by_side(hub, baselines))
    for module, module_args in (
        ("bench.ferry_bytes", ["--records", "200000", "--attachment-mb", "256"]),
        ("bench.validation", []),
    ):
        if module not in args.skip:
            _run(module, *module_args)
    if "bench.scheduled_loop" not in args.skip:
        _run("bench.scheduled_loop", "--records", "1000")
    if "bench.supervision" not in args.skip:
        _run("bench.supervision", "--cases", "100000")
    if "bench.trace" not in args.skip:
        _run("bench.trace", "--applications", "100000")
    if args.scaling:
        _run("bench.data_path", "--scaling", args.scaling)


if __name__ == "__main__":
    main()
