"""Benchmarks (run with ``python -m bench.NAME``); measured here, never in the test suite."""
