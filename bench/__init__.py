"""Benchmarks of the hub, measured outside the test suite (``python -m bench.<name>``)."""
