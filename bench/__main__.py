"""`make bench`: every benchmark of the hub in one run."""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = [("bench.data_path", ["--records", "2000"])]

for module, args in BENCHMARKS:
    print(f"\n== {module} {' '.join(args)}", flush=True)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__")
