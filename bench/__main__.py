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

from bench.data_path import hub_figures
from bench.measure import machine


def _run(module: str, *args: str) -> int:
    print(f"\n== python -m {module} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", module, *args], check=False).returncode
    print(f"== {module}: exit {code}, {time.perf_counter() - started:.0f} s wall", flush=True)
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--scaling", help="comma-separated sizes for the scaling run")
    parser.add_argument("--skip", nargs="*", default=[], help="benchmark modules to leave out")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    hub_rate = None
    if "bench.data_path" not in args.skip:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            _run("bench.data_path", "--records", str(args.records), "--json", out.name)
            text = Path(out.name).read_text()
            if text:
                result = json.loads(text)
                hub_rate = result["records"] / hub_figures(result)[0]
    if "bench.baselines" not in args.skip:
        extra = ["--hub-rate", f"{hub_rate:.1f}"] if hub_rate else []
        _run("bench.baselines", "--records", str(args.records), *extra)
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
