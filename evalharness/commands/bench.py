"""Measure where evaluation time goes on this machine, against a baseline in the same run.

Figures (one LIBERO task, random actions, the same seed for every mode):
- env build time;
- control steps per second: physics only; the baseline loop that renders both cameras
  every step (what most evaluation scripts do); the harness's loop, which renders the
  policy's cameras only when the policy is queried (every ``--replan`` steps);
- one camera frame at the render size.
Printed as a table; ``--json`` also writes the figures to a file.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from evalharness.errors import UserInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="libero_spatial")
    parser.add_argument("--task", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="camera render size (px)")
    parser.add_argument("--steps", type=int, default=100, help="control steps per mode")
    parser.add_argument("--replan", type=int, default=5, help="steps between policy queries (openpi: 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    serve = parser.add_argument_group("--serve: evalharness serve throughput (evalharness/bench/serve.py)")
    serve.add_argument("--serve", action="store_true", help="measure evalharness serve, batched vs max_batch=1")
    serve.add_argument("--sessions", default="1,2,4,8", help="concurrent sessions per measurement")
    serve.add_argument("--queries", type=int, default=20, help="act requests per session")
    serve.add_argument("--max-batch", type=int, default=8, help="the batched setting (compared with 1)")
    serve.add_argument("--max-wait-ms", type=float, default=5.0, help="serve.max_wait_ms")
    serve.add_argument("overrides", nargs="*", help="--serve: Hydra overrides choosing the served policy "
                       "(default: the reference checkpoint, random weights, seed 0)")


def _rate(env, actions: np.ndarray, render_every: int | None, cameras=None) -> float:
    env.reset_to(0, layout_seed=7)
    start = time.perf_counter()
    for i, action in enumerate(actions):
        if render_every is not None and i % render_every == 0:
            env.render_images(cameras)
        env.step_physics(action)
    return len(actions) / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    if args.serve:
        from evalharness.bench import serve

        return serve.run(args)
    if args.overrides:
        raise UserInputError(f"{args.overrides[0]!r} is not valid here; Hydra overrides choose the policy of --serve only")
    if args.steps < 10 or args.replan < 1:
        raise UserInputError(f"--steps {args.steps} / --replan {args.replan} not valid; allowed: steps >= 10, replan >= 1")
    from envs.libero.env import LiberoEnv

    start = time.perf_counter()
    env = LiberoEnv(args.suite, args.task, camera_size=args.size)
    build_s = time.perf_counter() - start
    try:
        actions = np.random.default_rng(0).uniform(-0.3, 0.3, size=(args.steps, 7))
        env.reset_to(0)
        env.render_images()  # warm up the GL context and texture upload
        frames = []
        for _ in range(10):
            t0 = time.perf_counter()
            env.render_images(("base_0_rgb",))
            frames.append(time.perf_counter() - t0)
        figures = {
            "suite": args.suite,
            "task": args.task,
            "size": args.size,
            "steps": args.steps,
            "env_build_s": build_s,
            "frame_ms": 1000 * float(np.median(frames)),
            "physics_only_steps_per_s": _rate(env, actions, None),
            "baseline_render_every_step_steps_per_s": _rate(env, actions, 1),
            "harness_render_at_queries_steps_per_s": _rate(env, actions, args.replan),
        }
    finally:
        env.close()
    speedup = figures["harness_render_at_queries_steps_per_s"] / figures["baseline_render_every_step_steps_per_s"]
    figures["speedup_vs_baseline"] = speedup
    print(f"LIBERO {args.suite} task {args.task}, {args.size} px, {args.steps} steps per mode")
    print(f"  env build                              {build_s:8.1f} s")
    print(f"  one camera frame                       {figures['frame_ms']:8.1f} ms")
    print(f"  physics only                           {figures['physics_only_steps_per_s']:8.1f} steps/s")
    print(f"  baseline: both cameras every step      {figures['baseline_render_every_step_steps_per_s']:8.1f} steps/s")
    print(f"  harness: cameras every {args.replan} steps        {figures['harness_render_at_queries_steps_per_s']:8.1f} steps/s")
    print(f"  speed-up over the baseline             {speedup:8.2f}x")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 0
