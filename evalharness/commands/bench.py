"""``evalharness bench``: measure this machine's evaluation throughput.

Each bench mode lives in its own module under :mod:`evalharness.bench`; this module only
declares the flags and dispatches. Without a mode flag it runs the side-by-side of the
harness against a plain LIBERO loop (:mod:`evalharness.bench.throughput`); ``--serve``
measures ``evalharness serve`` (:mod:`evalharness.bench.serve`; with ``--soak``, under load
and hostile requests, :mod:`evalharness.bench.soak`), ``--chaos`` runs the fault-injection
check (:mod:`evalharness.bench.chaos`) and ``--repeated`` compares a warm ``Evaluator`` with
CLI runs (:mod:`evalharness.bench.repeated`).
"""

from __future__ import annotations

import argparse

from evalharness.errors import UserInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evalharness.bench import chaos, repeated, throughput

    throughput.add_arguments(parser)
    serve = parser.add_argument_group("--serve: evalharness serve throughput (evalharness/bench/serve.py)")
    serve.add_argument("--serve", action="store_true", help="measure evalharness serve, batched vs max_batch=1")
    serve.add_argument("--sessions", default="1,2,4,8", help="concurrent sessions per measurement")
    serve.add_argument("--queries", type=int, default=20, help="act requests per session")
    serve.add_argument("--max-batch", type=int, default=8, help="the batched setting (compared with 1)")
    serve.add_argument("--max-wait-ms", type=float, default=5.0, help="serve.max_wait_ms")
    serve.add_argument("--png-level", type=int, default=0, choices=range(10), metavar="0-9",
                       help="the clients' PNG zlib level (0: what runner.policy_server=auto sends)")
    serve.add_argument("--soak", action="store_true", help="with --serve: N sessions x M queries with malformed "
                       "requests mixed in; fails on a 5xx or growing server memory (evalharness/bench/soak.py)")
    serve.add_argument("--soak-seconds", type=float, default=300.0, help="--soak: stop sending after this long")
    serve.add_argument("overrides", nargs="*", help="--serve: Hydra overrides choosing the served policy "
                       "(default: the reference checkpoint, random weights, seed 0)")
    chaos.add_arguments(parser)  # --chaos [quick|full] and its options
    repeated.add_arguments(parser)  # --repeated: a warm Evaluator against CLI runs


def run(args: argparse.Namespace) -> int:
    if args.serve and args.soak:
        from evalharness.bench import soak

        return soak.run(args)
    if args.serve:
        from evalharness.bench import serve

        return serve.run(args)
    if args.overrides:
        raise UserInputError(f"{args.overrides[0]!r} is not valid here; Hydra overrides choose the policy of --serve only")
    if args.repeated:
        from evalharness.bench import repeated

        return repeated.run(args)
    if args.chaos:
        from evalharness.bench import chaos

        return chaos.run(args)
    from evalharness.bench import throughput

    return throughput.run(args)
