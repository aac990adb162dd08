"""Benchmark modes of ``evalharness bench``, one module each (the command only dispatches)."""
