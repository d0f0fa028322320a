"""Benchmarks of pytest-cachesync (``python -m bench.<name>``)."""
