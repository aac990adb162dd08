"""What a run will cost, before it starts: ``evalharness ... --dry-run`` and the large-run notice.

A dry run validates and plans exactly as the run would (:func:`evalharness.engine.evaluate.prepare`:
the config, the protocol, the policy's identity, hence the episode keys), reads what the run
folder already holds, and prints:

- episodes planned, already recorded (resume skips them) and left to run;
- episodes per worker, grouped as the local runner groups them (one task's episodes per
  group, split so every worker has something to do; a free worker takes the next group);
- an **estimate** of the wall time, from the steps/s ``evalharness bench`` last measured on
  this machine (:mod:`evalharness.results.bench_cache`), taking every episode to its step limit (an
  upper bound: solved episodes end early), without the policy's own inference time;
- the memory one worker peaks at, and how many workers ``runner.workers=auto`` would start.

It writes nothing (no run folder, no run.json) and builds no env. The policy is built once,
as the run itself does first, because its identity is part of every episode key.

A run with more than :data:`LARGE_RUN_EPISODES` episodes left prints the same estimate in
one line before it starts. The entry points are in :mod:`evalharness.engine.evaluate`
(``run_cost``, ``run_hydra(dry_run=True)``), which owns preparing a run and deciding what
resume skips; this module only counts and prints.
"""

from __future__ import annotations

import heapq
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalharness.engine.worker_budget import WORKER_PEAK_BYTES, auto_workers

__all__ = ["Cost", "recorded_episodes", "estimate_cost", "render_cost", "announce_large_run", "LARGE_RUN_EPISODES"]

LARGE_RUN_EPISODES = 200


@dataclass
class Cost:
    planned: int
    recorded: int
    to_run: int
    workers: int  # processes the run would start (0 = in this process)
    per_worker: list[int]  # episodes each worker would run, largest first
    steps_per_episode: int  # policy steps + settle steps, the upper bound
    steps_per_s: float | None  # per worker, from the bench cache
    bench_note: str
    wall_s: float | None
    memory_per_worker: int
    auto_workers: int
    refused: str | None = None  # the folder holds another configuration: the run would refuse it


def _per_worker(items: list[Any], workers: int) -> list[int]:
    """Episodes per worker as the local runner hands out groups (greedy: a free worker takes the next)."""
    from evalharness.engine.runner import group_items

    if not items:
        return []
    if workers <= 0:
        return [len(items)]
    groups = group_items(items, workers)
    loads = [(0, i) for i in range(min(workers, len(groups)))]
    totals = [0] * len(loads)
    for group in groups:  # in order, as the runner pops its queue
        load, i = heapq.heappop(loads)
        totals[i] = load + len(group)
        heapq.heappush(loads, (totals[i], i))
    return sorted(totals, reverse=True)


def _bench_rate(workers: int) -> tuple[float | None, str]:
    from evalharness.results.bench_cache import cache_path, load_figures

    figures = load_figures()
    harness = (figures or {}).get("harness") or {}
    rate = harness.get("steps_per_s")
    if not isinstance(rate, (int, float)) or rate <= 0:
        return None, f"no cached bench figure ({cache_path()}); run `evalharness bench` once to get a wall-time estimate"
    setup = figures.get("setup") or {}  # type: ignore[union-attr]
    efficiency = 1.0
    for row in figures.get("parallel") or []:  # type: ignore[union-attr]
        if row.get("workers") == workers and isinstance(row.get("efficiency_in_episodes"), (int, float)):
            efficiency = float(row["efficiency_in_episodes"])
    note = (f"`evalharness bench` on {figures.get('measured_at', 'an unknown date')}: {rate:.1f} env steps/s per worker "  # type: ignore[union-attr]
            f"({setup.get('suite', '?')}, {setup.get('size', '?')} px, a zero policy reading both cameras"
            + (f"; x{efficiency:.2f} measured with {workers} workers" if efficiency != 1.0 else "") + ")")
    return float(rate) * efficiency, note


def recorded_episodes(run_dir: Path, context: str) -> tuple[list[Any], str | None]:
    """What ``run_dir`` already holds for a run of ``context`` (read only), and why the run
    would refuse the folder (it holds another configuration), if it would."""
    import json

    from evalharness.results.store import EPISODES_FILENAME, ResultStore

    run_json = run_dir / "run.json"
    if run_json.is_file() and json.loads(run_json.read_text()).get("context") != context:
        return [], (f"{run_dir} holds a run with another configuration; the run would be refused "
                    "(pass a new output_dir=... or run_name=...)")
    if (run_dir / EPISODES_FILENAME).is_file():
        return ResultStore(run_dir, readonly=True).records(), None
    return [], None


def estimate_cost(run: Any, todo: list[Any], refused: str | None = None) -> Cost:
    """The cost of running the episodes ``todo`` of ``run`` (a prepared run; the caller says
    which episodes are left, as resume decides: ``evaluate.episodes_to_run``)."""
    from evalharness.engine.worker import WorkItem

    items = [WorkItem(spec, run.video[spec.key], run.max_steps) for spec in todo]
    per_worker = _per_worker(items, run.workers)
    suite = run.config["suite"]["name"]
    steps = (run.max_steps or run.protocol.max_steps[suite]) + run.protocol.settle_steps
    rate, note = _bench_rate(max(1, run.workers))
    wall = per_worker[0] * steps / rate if rate and per_worker else (0.0 if rate else None)
    return Cost(
        planned=len(run.plan), recorded=len(run.plan) - len(todo), to_run=len(todo), workers=run.workers,
        per_worker=per_worker, steps_per_episode=steps, steps_per_s=rate, bench_note=note, wall_s=wall,
        memory_per_worker=WORKER_PEAK_BYTES, auto_workers=auto_workers(), refused=refused,
    )


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h {m:02d}m" if hours else f"{m}m {s:02d}s"


def render_cost(cost: Cost, run_dir: Path, label: str) -> str:
    workers = "in this process (runner.workers=0)" if cost.workers == 0 else f"on {cost.workers} worker(s)"
    spread = ", ".join(map(str, cost.per_worker[:8])) + (" ..." if len(cost.per_worker) > 8 else "")
    lines = [
        f"evalharness dry run: {label} -> {run_dir}",
        f"  episodes planned:      {cost.planned}",
        f"  already recorded:      {cost.recorded} (resume skips them)",
        f"  to run:                {cost.to_run}, {workers}",
        f"  episodes per worker:   {spread or '0'}",
    ]
    if cost.wall_s is None:
        lines.append(f"  wall time:             unknown: {cost.bench_note}")
    else:
        lines.append(f"  wall time (estimate):  at most ~{_duration(cost.wall_s)} "
                     f"({cost.per_worker[0] if cost.per_worker else 0} episodes x {cost.steps_per_episode} steps "
                     f"at {cost.steps_per_s:.1f} steps/s; every episode to its step limit, policy inference not included)")
        lines.append(f"                         from {cost.bench_note}")
    lines += [
        f"  memory per worker:     ~{cost.memory_per_worker / 2**30:.1f} GiB peak (LIBERO env, original assets; "
        "the policy's model comes on top)",
        f"  runner.workers=auto:   would start {cost.auto_workers} worker(s) on this machine (cores and MemAvailable)",
    ]
    if cost.refused:
        lines.append(f"  warning: {cost.refused}")
    lines.append("nothing was written and no env was built (dry run)")
    return "\n".join(lines)


def announce_large_run(cost: Cost) -> None:
    """Before a large run starts: its estimated cost in one line on stderr."""
    if cost.to_run <= LARGE_RUN_EPISODES or cost.refused:
        return
    wall = f"~{_duration(cost.wall_s)} at most (estimate)" if cost.wall_s is not None else "wall time unknown (no bench figure)"
    workers = max(1, cost.workers)
    print(f"evalharness: {cost.to_run} episodes to run ({cost.recorded} already recorded) on {workers} worker(s), "
          f"up to {cost.per_worker[0] if cost.per_worker else 0} each: {wall}; --dry-run prints the detail",
          file=sys.stderr)
