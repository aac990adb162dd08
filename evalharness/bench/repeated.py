"""``evalharness bench --repeated``: evaluating repeatedly, a warm ``Evaluator`` against CLI runs.

A training loop evaluates the same tasks again and again. Measured in the same bench run,
on the same plan (3 calls x 2 tasks x 2 episodes of ``policy=zero`` by default):

- **cli**: 3 ``evalharness`` runs, each a fresh process that starts its workers and builds
  every env it needs;
- **evaluator**: one Python process with an ``evalharness.Evaluator`` making the 3 calls;
  its workers and envs stay up between calls.

Reported: the wall time of each call, calls 2 and 3 against the CLI's, and the envs built
(the Evaluator counts its builds; a CLI run builds each task's env once per worker that
runs it, counted by the same workers through ``EVALHARNESS_REPORT_ENV_BUILDS``). Both
sides run in child processes, so neither pays for the other's imports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evalharness.errors import UserInputError

CALLS = 3

_EVALUATOR = r"""
import json, sys, time
import evalharness
options = json.loads(sys.argv[1])
times, builds = [], []
with evalharness.Evaluator(sys.argv[2], workers=options.pop("workers"), env_capacity=options.pop("env_capacity"),
                           **options) as ev:
    for call in range(int(sys.argv[3])):
        started = time.perf_counter()
        ev.run("zero", label=f"call{call + 1}")
        times.append(time.perf_counter() - started)
        builds.append(ev.env_builds)
print("BENCH " + json.dumps({"times": times, "env_builds": builds}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--repeated: a warm Evaluator against CLI runs (evalharness/bench/repeated.py)")
    group.add_argument("--repeated", action="store_true", help="3 evaluations of the same tasks: Evaluator vs CLI")
    group.add_argument("--repeated-tasks", default="0,1", help="task indices of libero_object")
    group.add_argument("--repeated-episodes", type=int, default=2, help="episodes per task")
    group.add_argument("--repeated-workers", type=int, default=0, help="workers of both sides (0: in-process)")
    group.add_argument("--repeated-steps", type=int, default=20, help="suite.max_steps")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    try:
        tasks = [int(t) for t in str(args.repeated_tasks).split(",") if t.strip()]
    except ValueError:
        raise UserInputError(f"--repeated-tasks {args.repeated_tasks!r} is not valid; allowed: indices like 0,1") from None
    for name in ("repeated_episodes", "repeated_steps"):
        if getattr(args, name) < 1:
            raise UserInputError(f"--{name.replace('_', '-')} {getattr(args, name)} is not valid; allowed: >= 1")
    if args.repeated_workers < 0:
        raise UserInputError(f"--repeated-workers {args.repeated_workers} is not valid; allowed: >= 0")
    return {"suite": "libero_object", "tasks": tasks, "episodes": args.repeated_episodes,
            "max_steps": args.repeated_steps, "camera_size": 64, "video": "none", "workers": args.repeated_workers,
            "env_capacity": max(1, len(tasks)) if args.repeated_workers == 0 else 1}


def _env() -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}


def _cli_runs(options: dict[str, Any], root: Path) -> dict[str, Any]:
    times, builds = [], []
    tasks = "[" + ",".join(map(str, options["tasks"])) + "]"
    for call in range(CALLS):
        out = root / f"cli{call + 1}"
        report = root / f"cli{call + 1}.builds"
        cmd = [sys.executable, "-m", "evalharness", "policy=zero", "suite=libero_object", f"suite.tasks={tasks}",
               f"suite.episodes_per_task={options['episodes']}", f"suite.max_steps={options['max_steps']}",
               "camera_size=64", "video=none", f"runner.workers={options['workers']}", f"output_dir={out}"]
        started = time.perf_counter()
        proc = subprocess.run(cmd, env={**_env(), "EVALHARNESS_REPORT_ENV_BUILDS": str(report)},
                              capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(f"the CLI run failed: {proc.stderr[-2000:]}")
        builds.append(sum(int(line) for line in report.read_text().split()) if report.exists() else None)
    return {"times": times, "env_builds": builds}


def _evaluator_runs(options: dict[str, Any], root: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _EVALUATOR, json.dumps(options), str(root / "evaluator"), str(CALLS)],
                          env=_env(), capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the Evaluator run failed: {proc.stderr[-2000:]}")
    return json.loads(lines[-1].removeprefix("BENCH "))


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    with tempfile.TemporaryDirectory(prefix="evalharness-bench-repeated-") as tmp:
        root = Path(tmp)
        cli = _cli_runs(options, root)
        evaluator = _evaluator_runs(options, root)
    plan = f"{CALLS} calls x {len(options['tasks'])} tasks x {options['episodes']} episodes, " \
           f"{options['max_steps']} steps, workers={options['workers']}"
    print(f"repeated evaluation ({plan}), policy=zero, libero_object")
    print(f"{'call':>6} {'cli s':>8} {'evaluator s':>12} {'cli env builds':>15} {'evaluator env builds (total)':>29}")
    for call in range(CALLS):
        print(f"{call + 1:>6} {cli['times'][call]:>8.1f} {evaluator['times'][call]:>12.1f} "
              f"{cli['env_builds'][call]!s:>15} {evaluator['env_builds'][call]:>29}")
    warm = sum(evaluator["times"][1:]) / (CALLS - 1)
    cold = sum(cli["times"][1:]) / (CALLS - 1)
    print(f"calls 2-{CALLS}: evaluator {warm:.1f} s vs cli {cold:.1f} s per call ({cold / warm:.1f}x)")
    json_path = getattr(args, "json", None)
    if json_path:
        Path(json_path).write_text(json.dumps({"plan": plan, "cli": cli, "evaluator": evaluator,
                                               "speedup_calls_2_3": cold / warm}, indent=2) + "\n")
    return 0
