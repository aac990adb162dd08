"""Benchmark modes of ``evalharness bench``, one module each; ``commands/bench.py`` only declares flags and dispatches."""
