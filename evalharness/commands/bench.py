"""``evalharness bench``: measure this machine's evaluation throughput.

Each bench mode lives in its own module under :mod:`evalharness.bench`; this module only
declares the flags and dispatches. Without a mode flag it runs the side-by-side of the
harness against a plain LIBERO loop (:mod:`evalharness.bench.throughput`).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evalharness.bench import throughput

    throughput.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from evalharness.bench import throughput

    return throughput.run(args)
