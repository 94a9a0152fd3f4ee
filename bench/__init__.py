"""Benchmark scripts (run with ``python -m bench.<name>`` or ``python bench/<name>.py``)."""
