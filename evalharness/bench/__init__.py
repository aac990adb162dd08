"""Benchmark modes of ``evalharness bench``, one module each; ``commands/bench.py`` dispatches on a flag."""
