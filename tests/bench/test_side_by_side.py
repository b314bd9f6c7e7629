"""`python -m bench` ends with the hub and the baselines side by side: the hub's speed as a
multiple of each baseline's, its CPU without the simulator, and each zone's peak RSS."""

from __future__ import annotations

from bench.__main__ import side_by_side


def test_the_table_compares_the_hub_with_each_baseline() -> None:
    hub = {"records": 1000, "wall": 2.0, "simulator_wall": 1.2, "zones": {"admin": [1.5, 300.0], "internet": [1.0, 200.0]},
           "rows": [["intake", 0.5, 1, 0.4], ["case_processing", 1.0, 1, 0.9], ["status_publish", 1.0, 1, 0.6]]}
    baselines = {"records": 1000, "peak_rss_mb": 90.0, "tools_peak_rss_mb": 40.0, "rows": [
        {"name": "naive pipeline (jsonschema + tar|zstd|openssl)", "seconds": 20.0, "bytes": 0, "note": ""},
        {"name": "sha256 + fsync'd copy", "seconds": 0.5, "bytes": 0, "note": ""}]}
    table = side_by_side(hub, baselines)
    lines = table.splitlines()
    assert "admin 300, internet 200" in lines[3]  # each zone's peak, not their sum
    assert ("1.0 CPU s (1000 µs per application), the case-processing simulator 0.9 CPU s besides, 1.2 s of wall "
            "time between the hub's phases") in table
    naive = next(line for line in lines if line.startswith("naive"))
    assert naive.split()[-2] == "10.00" and naive.split()[-1] == "40"  # 500/s against 50/s; the tools' RSS
    copy = next(line for line in lines if line.startswith("sha256"))
    assert copy.split()[-2] == "0.25"  # the copy is four times faster than the hub
