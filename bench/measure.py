"""What every benchmark reports: wall time, throughput and peak memory (RSS)."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """Peak RSS of the largest waited-for child process so far."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def machine() -> str:
    """One line on the machine: cores, CPU model, memory, the disk under the temp folder."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    disk = shutil.disk_usage("/tmp")
    source = subprocess.run(["df", "--output=source", "/tmp"], check=False, capture_output=True, text=True).stdout.split()
    return (f"{os.cpu_count()} cores ({model}), {memory:.1f} GiB RAM, /tmp on "
            f"{source[-1] if source else '?'} ({disk.total / 2**30:.0f} GiB), "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
