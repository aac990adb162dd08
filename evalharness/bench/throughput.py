"""``evalharness bench``: the harness side by side with a plain LIBERO loop, in one run.

Sections, all on the same tasks and init states:

1. **Plain loop**, written the way openpi's LIBERO example is: LIBERO's
   ``OffScreenRenderEnv`` rendering both cameras at every step (robosuite's observables),
   one env per task with robosuite's default hard reset, 10 settle steps, a policy queried
   every ``replan`` steps (a zero policy that reads both cameras), images rotated 180
   degrees and resized with padding to 224 px at every step with ``openpi_client``.
2. **The harness's real evaluation path**: a composed Hydra config, ``evaluate`` (plan,
   local runner, worker processes, result store; video off), openpi protocol, the same
   camera-reading zero policy (:mod:`evalharness.bench.policies`).
3. **Physics per control step**: one env, the same actions, robosuite's own step vs the
   fast step (:mod:`envs.libero.fast_step`), alternated in one process; the final states
   are compared.
4. **A frame**: robosuite's ``MjSim.render`` per camera vs the env's render path
   (:mod:`envs.libero.render`), byte-compared.
5. **Parallel efficiency**: the harness path with 1..N workers, end to end and inside
   episodes. Use enough episodes per worker (``--episodes``, ``--tasks``) that env builds
   do not dominate: with fewer tasks than workers, each worker builds the task's env.
6. **Harness overhead with cameras off**: the harness path with a policy that declares no
   camera; inside its episodes, the time outside env calls (``reset_to``,
   ``step_physics``) over the time in them. A bare ``step_physics`` loop in the bench
   process is printed beside it.

Figures are printed as a table; ``--json PATH`` writes them. Nothing here asserts a
target: the targets are read off the printed figures (on a quiet machine; the 1-minute
load average is recorded because figures taken on a loaded machine are not comparable).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalharness.errors import UserInputError

SETTLE_ACTION = [0.0] * 6 + [-1.0]
RESIZE = 224
POLICY_TARGET = "evalharness.bench.policies.CameraZeroPolicy"


@dataclass(frozen=True)
class BenchSetup:
    """What every section runs: the same tasks, init states, steps and protocol."""

    suite: str
    tasks: tuple[int, ...]
    episodes: int
    max_steps: int
    settle_steps: int
    replan: int
    horizon: int
    size: int
    workers: int
    physics_steps: int
    frames: int
    quick: bool

    @property
    def env_steps_per_episode(self) -> int:
        return self.settle_steps + self.max_steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="libero_spatial")
    parser.add_argument("--tasks", default="0", help="comma-separated task indices (default: 0)")
    parser.add_argument("--episodes", type=int, default=None, help="init states 0..E-1 per task (default 2; quick 1)")
    parser.add_argument("--max-steps", type=int, default=None, help="policy steps per episode (default: the openpi protocol's for the suite)")
    parser.add_argument("--size", type=int, default=None, help="camera render size in px (default 256, openpi's; quick 32)")
    parser.add_argument("--workers", type=int, default=None, help="parallel efficiency for 1..N workers (default: one per core; quick 1)")
    parser.add_argument("--quick", action="store_true", help="a tiny run (few steps, small images) to check the bench itself")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")


def _setup(args: argparse.Namespace) -> BenchSetup:
    from envs.libero.catalog import check_suite, suite_tasks
    from evalharness.config.protocol import load_protocol
    from evalharness.engine.runner import default_workers

    suite = check_suite(args.suite)
    try:
        tasks = tuple(int(t) for t in str(args.tasks).split(",") if t.strip() != "")
    except ValueError:
        raise UserInputError(f"--tasks {args.tasks!r} is not valid; allowed: comma-separated task indices, e.g. 0,3") from None
    count = len(suite_tasks(suite))
    if not tasks or any(t < 0 or t >= count for t in tasks):
        raise UserInputError(f"--tasks {args.tasks!r} is not valid; allowed: indices in 0..{count - 1}")
    import yaml

    from evalharness.config.conf import CONF_DIR

    protocol = load_protocol(yaml.safe_load((CONF_DIR / "protocol" / "openpi.yaml").read_text()))
    quick = bool(args.quick)
    episodes = args.episodes if args.episodes is not None else (1 if quick else 2)
    max_steps = args.max_steps if args.max_steps is not None else (6 if quick else protocol.max_steps[suite])
    size = args.size if args.size is not None else (32 if quick else protocol.render_size)
    workers = args.workers if args.workers is not None else (1 if quick else default_workers())
    for flag, value, low, high in (("--episodes", episodes, 1, 50), ("--max-steps", max_steps, 1, 10_000),
                                   ("--size", size, 8, 2048), ("--workers", workers, 1, 64)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UserInputError(f"{flag} {value!r} is not valid; allowed: an integer in {low}..{high}")
    return BenchSetup(
        suite=suite, tasks=tasks, episodes=episodes, max_steps=max_steps, settle_steps=protocol.settle_steps,
        replan=protocol.replan_steps, horizon=10, size=size, workers=workers,
        physics_steps=10 if quick else 60, frames=2 if quick else 5, quick=quick,
    )


# ----- measuring helpers ----------------------------------------------------------------


def _peak_rss_mb(pid: int | str = "self") -> float | None:
    """The kernel's high-water mark of a process's resident memory (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class _ChildMemory:
    """Samples the peak RSS of this process's multiprocessing children (the workers)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            for child in mp.active_children():
                peak = _peak_rss_mb(child.pid)
                if peak is not None:
                    self.peaks[child.pid] = max(peak, self.peaks.get(child.pid, 0.0))
            self._stop.wait(interval)

    def __enter__(self) -> "_ChildMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _Timer:
    """Accumulates wall time per bucket."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, bucket: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[bucket] = self.totals.get(bucket, 0.0) + time.perf_counter() - start


def _per_step_ms(seconds: dict[str, float], steps: int) -> dict[str, float]:
    return {k: 1000.0 * v / max(1, steps) for k, v in seconds.items()}


# ----- 1. the plain loop ------------------------------------------------------------------


def plain_loop(setup: BenchSetup) -> dict[str, Any]:
    """openpi's LIBERO example loop around LIBERO's own env, timed by part."""
    from openpi_client import image_tools

    from envs.libero.catalog import get_task, load_init_states
    from envs.libero.render import free_render_context
    from envs.libero.runtime import import_libero
    from evalharness.bench.policies import CameraZeroPolicy

    import_libero()
    from libero.libero.envs import OffScreenRenderEnv

    policy = CameraZeroPolicy(horizon=setup.horizon)
    timer = _Timer()
    steps = 0
    builds = 0
    episodes_run = 0
    start = time.perf_counter()
    loop_time = 0.0
    for task_index in setup.tasks:
        task = get_task(setup.suite, task_index)
        init_states = load_init_states(setup.suite, task_index)
        with timer("build"):
            env = OffScreenRenderEnv(
                bddl_file_name=str(task.bddl_path), camera_heights=setup.size, camera_widths=setup.size
            )
            env.seed(7)
        builds += 1
        render_seconds = [0.0]

        def timed_render(original):
            def render(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    render_seconds[0] += time.perf_counter() - t0

            return render

        try:
            for k in range(setup.episodes):
                episodes_run += 1
                loop_start = time.perf_counter()
                with timer("reset"):
                    env.reset()  # a hard reset rebuilds the sim: wrap its render again
                    sim = env.env.sim
                    sim.render = timed_render(type(sim).render.__get__(sim))
                    obs = env.set_init_state(init_states[k])
                policy.reset(task.instruction, seed=7, init_state=k)
                plan: deque = deque()
                t = 0
                while t < setup.max_steps + setup.settle_steps:
                    if t < setup.settle_steps:
                        before = render_seconds[0]
                        with timer("step"):
                            obs, _, done, _ = env.step(SETTLE_ACTION)
                        timer.totals["render_in_step"] = timer.totals.get("render_in_step", 0.0) + render_seconds[0] - before
                        t += 1
                        steps += 1
                        continue
                    with timer("preprocess"):
                        img = np.ascontiguousarray(obs["agentview_image"][::-1, ::-1])
                        wrist = np.ascontiguousarray(obs["robot0_eye_in_hand_image"][::-1, ::-1])
                        img = image_tools.convert_to_uint8(image_tools.resize_with_pad(img, RESIZE, RESIZE))
                        wrist = image_tools.convert_to_uint8(image_tools.resize_with_pad(wrist, RESIZE, RESIZE))
                    if not plan:
                        with timer("policy"):
                            chunk = policy.act({"images": {"base_0_rgb": img, "left_wrist_0_rgb": wrist}})
                        plan.extend(chunk[: setup.replan])
                    action = plan.popleft()
                    before = render_seconds[0]
                    with timer("step"):
                        obs, _, done, _ = env.step(action.tolist())
                    timer.totals["render_in_step"] = timer.totals.get("render_in_step", 0.0) + render_seconds[0] - before
                    steps += 1
                    if done:
                        break
                    t += 1
                loop_time += time.perf_counter() - loop_start
        finally:
            free_render_context(env.env.sim)
            env.close()
    wall = time.perf_counter() - start
    totals = timer.totals
    render = totals.get("render_in_step", 0.0)
    split = {
        "physics": totals.get("step", 0.0) - render,
        "render": render,
        "preprocess": totals.get("preprocess", 0.0),
        "policy": totals.get("policy", 0.0),
        "reset": totals.get("reset", 0.0),
    }
    split["loop_overhead"] = max(0.0, loop_time - sum(split.values()))
    return {
        "env_steps": steps,
        "episodes": setup.episodes * len(setup.tasks),
        "loop_s": loop_time,
        "wall_s": wall,
        "steps_per_s": steps / loop_time,
        "steps_per_s_end_to_end": steps / wall,
        "split_ms_per_step": _per_step_ms(split, steps),
        "env_builds_per_task": builds / len(setup.tasks),
        # robosuite's default hard reset rebuilds the MuJoCo model and the GL context
        # (textures uploaded again) at every episode's reset.
        "model_rebuilds_per_task": (builds + episodes_run) / len(setup.tasks),
        "peak_rss_mb": _peak_rss_mb(),
    }


# ----- 2. the harness's evaluation path ------------------------------------------------------


def harness_run(setup: BenchSetup, workers: int, cameras: tuple[str, ...], out_dir: Path) -> dict[str, Any]:
    """One real ``evaluate`` run (openpi protocol, video off) and its figures."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from evalharness.config.conf import CONF_DIR

    from evalharness.engine.evaluate import evaluate
    from evalharness.plan.build import build_plan
    from evalharness.results.store import ResultStore
    from evalharness.engine.runner import group_items
    from evalharness.engine.worker import WorkItem

    overrides = [
        "protocol=openpi", "video=none", f"suite={setup.suite}", f"suite.tasks=[{','.join(map(str, setup.tasks))}]",
        f"suite.episodes_per_task={setup.episodes}", "suite.init_states=null", f"suite.max_steps={setup.max_steps}",
        f"camera_size={setup.size}", f"runner.workers={workers}", "run_name=bench", f"output_dir={out_dir}",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="evalharness"):
        cfg = compose("config", overrides=overrides)
    OmegaConf.set_struct(cfg, False)
    cfg.policy = OmegaConf.create({"_target_": POLICY_TARGET, "horizon": setup.horizon, "cameras": list(cameras)})
    sink = io.StringIO()
    start = time.perf_counter()
    with _ChildMemory() as memory, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        evaluate(cfg)
    wall = time.perf_counter() - start
    records = ResultStore(out_dir).records()
    errors = [r.error_message for r in records if r.error_kind]
    if errors:
        raise RuntimeError(f"the harness run had errors: {errors[0]}")
    steps = sum(r.steps + setup.settle_steps for r in records)
    episode_wall = sum(r.wall_time_s for r in records)
    split = {
        "physics": sum(r.env_time_s for r in records),
        "render": sum(r.render_time_s for r in records),
        "policy": sum(r.policy_time_s for r in records),
    }
    split["harness_overhead"] = max(0.0, episode_wall - sum(split.values()))
    # Env builds: one per group of a task's episodes, as the runner groups the plan.
    plan = build_plan(setup.suite, list(setup.tasks), setup.episodes, None, 0, "bench")
    builds = len(group_items([WorkItem(spec, "no") for spec in plan], workers)) / len(setup.tasks)
    return {
        "workers": workers,
        "cameras": list(cameras),
        "env_steps": steps,
        "episodes": len(records),
        "loop_s": episode_wall,
        "wall_s": wall,
        "steps_per_s": steps / episode_wall,  # per worker, inside episodes
        "steps_per_s_end_to_end": steps / wall,
        "split_ms_per_step": _per_step_ms(split, steps),
        "env_builds_per_task": builds,
        "peak_rss_mb_per_worker": sorted(memory.peaks.values(), reverse=True),
    }


# ----- 3. physics per control step ---------------------------------------------------------


def physics_ab(env, setup: BenchSetup) -> dict[str, Any]:
    """robosuite's step vs the fast step, same env, same actions, alternated."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, size=(setup.physics_steps, 7))
    actions[:, 6] = np.where(np.arange(setup.physics_steps) % 8 < 4, -1.0, 1.0)
    actions = np.concatenate([np.tile(SETTLE_ACTION, (setup.settle_steps, 1)), actions])
    times: dict[bool, list[float]] = {False: [], True: []}
    finals: dict[bool, bytes] = {}
    for _ in range(1 if setup.quick else 2):
        for fast in (False, True):
            env.fast_physics = fast
            env.reset_to(0, layout_seed=7)
            start = time.perf_counter()
            for action in actions:
                env.step_physics(action)
            times[fast].append((time.perf_counter() - start) / len(actions))
            finals[fast] = env.sim_state().tobytes()
    env.fast_physics = True
    slow, fast = min(times[False]), min(times[True])
    return {
        "control_steps": len(actions),
        "robosuite_ms_per_step": 1000.0 * slow,
        "fast_ms_per_step": 1000.0 * fast,
        "faster_by": 1.0 - fast / slow,
        "identical_final_state": finals[False] == finals[True],
    }


# ----- 4. one frame --------------------------------------------------------------------------


def frame_ab(env, setup: BenchSetup) -> dict[str, Any]:
    """Both cameras: robosuite's ``MjSim.render`` per camera vs the env's render path."""
    sim = env._sim
    names = (("base_0_rgb", "agentview"), ("left_wrist_0_rgb", "robot0_eye_in_hand"))

    def robosuite_frames():
        sim._render_context_offscreen.gl_ctx.make_current()
        with env.frame_scene():  # the scene the env's frames show (envs.libero.sampled_scene)
            return {cam: sim.render(camera_name=name, width=setup.size, height=setup.size) for cam, name in names}

    robosuite_frames(), env.render_images()  # warm up
    slow, fast, identical = [], [], True
    for _ in range(setup.frames):
        t0 = time.perf_counter()
        reference = robosuite_frames()
        t1 = time.perf_counter()
        ours = env.render_images()
        t2 = time.perf_counter()
        slow.append(t1 - t0)
        fast.append(t2 - t1)
        identical &= all(ours[cam].tobytes() == reference[cam].tobytes() for cam, _ in names)
    return {
        "robosuite_ms_both_cameras": 1000.0 * float(np.median(slow)),
        "harness_ms_both_cameras": 1000.0 * float(np.median(fast)),
        "identical": identical,
    }


# ----- 6. bare stepping with cameras off -------------------------------------------------


def bare_stepping(env_for, setup: BenchSetup) -> dict[str, Any]:
    """What the harness's episodes cost at least: reset, settle, the zero policy's actions."""
    action = np.array(SETTLE_ACTION)  # the zero policy's action: gripper open
    steps = 0
    start = time.perf_counter()
    for task_index in setup.tasks:
        env = env_for(task_index)
        for k in range(setup.episodes):
            env.reset_to(k, layout_seed=7)
            for _ in range(setup.env_steps_per_episode):
                env.step_physics(action)
                steps += 1
    elapsed = time.perf_counter() - start
    return {"env_steps": steps, "loop_s": elapsed, "steps_per_s": steps / elapsed}


# ----- the run ------------------------------------------------------------------------------


def measure(setup: BenchSetup, work_dir: Path) -> dict[str, Any]:
    """Every section, in an order that keeps one simulator in this process at a time."""
    from envs.libero.env import LiberoEnv
    from evalharness.results.metadata import run_metadata

    versions = run_metadata()["versions"]
    figures: dict[str, Any] = {
        "machine": {"cores": len(os.sched_getaffinity(0)), "load_1min_start": os.getloadavg()[0],
                    "versions": {k: versions.get(k) for k in ("mujoco", "robosuite", "hf-libero")}},
        "setup": {**setup.__dict__, "tasks": list(setup.tasks), "protocol": "openpi"},
    }
    figures["plain_loop"] = plain_loop(setup)

    envs: dict[int, Any] = {}

    def env_for(task_index: int):
        if task_index not in envs:
            for other in envs.values():
                other.close()
            envs.clear()
            envs[task_index] = LiberoEnv(setup.suite, task_index, camera_size=setup.size)
        return envs[task_index]

    try:
        env = env_for(setup.tasks[0])
        figures["physics"] = physics_ab(env, setup)
        figures["frame"] = frame_ab(env, setup)
        bare = bare_stepping(env_for, setup)
    finally:
        for env in envs.values():
            env.close()

    both = ("base_0_rgb", "left_wrist_0_rgb")
    runs = [harness_run(setup, n, both, work_dir / f"harness-{n}") for n in range(1, setup.workers + 1)]
    figures["harness"] = runs[0]
    base = runs[0]["steps_per_s_end_to_end"]
    # Two readings: end to end (worker start, env builds and an uneven last round count),
    # and inside episodes (each worker's stepping rate against one worker alone: what
    # the workers cost each other, e.g. render threads competing for the cores).
    figures["parallel"] = [
        {
            "workers": run["workers"],
            "steps_per_s_end_to_end": run["steps_per_s_end_to_end"],
            "efficiency": run["steps_per_s_end_to_end"] / (run["workers"] * base),
            "efficiency_in_episodes": run["steps_per_s"] / runs[0]["steps_per_s"],
            "env_builds_per_task": run["env_builds_per_task"],
            "peak_rss_mb_per_worker": run["peak_rss_mb_per_worker"],
        }
        for run in runs
    ]
    blind = harness_run(setup, 1, (), work_dir / "harness-cameras-off")
    # The overhead is read inside the worker's own episodes: the time in env calls
    # (reset_to, step_physics) is bare stepping, measured in the same process at the same
    # moment; everything else in the episode is the harness. The bench process's bare loop
    # is printed beside it as a cross-check (another process, another moment).
    env_ms = blind["split_ms_per_step"]["physics"]
    episode_ms = sum(blind["split_ms_per_step"].values())
    figures["cameras_off"] = {
        "bare_steps_per_s": bare["steps_per_s"],
        "bare_steps_per_s_in_worker": 1000.0 / env_ms,
        "harness_steps_per_s": blind["steps_per_s"],
        "harness_steps_per_s_end_to_end": blind["steps_per_s_end_to_end"],
        "overhead": episode_ms / env_ms - 1.0,
    }
    figures["speedup"] = figures["harness"]["steps_per_s"] / figures["plain_loop"]["steps_per_s"]
    figures["speedup_end_to_end"] = (
        figures["harness"]["steps_per_s_end_to_end"] / figures["plain_loop"]["steps_per_s_end_to_end"]
    )
    at_cores = [p for p in figures["parallel"] if p["workers"] == figures["machine"]["cores"]]
    figures["targets"] = {
        "speedup_at_least_4x": figures["speedup"] >= 4.0,
        "efficiency_at_least_90pct_one_worker_per_core": (at_cores[0]["efficiency"] >= 0.9) if at_cores else None,
        "overhead_at_most_10pct_cameras_off": figures["cameras_off"]["overhead"] <= 0.10,
    }
    figures["machine"]["load_1min_end"] = os.getloadavg()[0]
    return figures


def _split_line(split: dict[str, float]) -> str:
    return " / ".join(f"{k} {v:.1f}" for k, v in split.items())


def report(figures: dict[str, Any]) -> str:
    """The printed side-by-side."""
    s, m = figures["setup"], figures["machine"]
    plain, harness = figures["plain_loop"], figures["harness"]
    physics, frame, off = figures["physics"], figures["frame"], figures["cameras_off"]
    lines = [
        f"evalharness bench: {s['suite']} tasks {s['tasks']}, init states 0..{s['episodes'] - 1}, "
        f"{s['max_steps']} policy steps + {s['settle_steps']} settle, {s['size']} px, openpi protocol (replan {s['replan']})",
        f"machine: {m['cores']} cores, load average {m['load_1min_start']:.1f} -> {m['load_1min_end']:.1f} "
        "(figures from a loaded machine are not comparable)",
        "",
        "side by side, one worker, a zero policy reading both cameras",
        f"                                  {'plain loop':>12} {'harness':>12}",
        f"  env steps/s (episode loops)     {plain['steps_per_s']:12.1f} {harness['steps_per_s']:12.1f}   ratio {figures['speedup']:.2f}x",
        f"  env steps/s (end to end)        {plain['steps_per_s_end_to_end']:12.1f} {harness['steps_per_s_end_to_end']:12.1f}   ratio {figures['speedup_end_to_end']:.2f}x",
        f"  env builds per task             {plain['env_builds_per_task']:12.1f} {harness['env_builds_per_task']:12.1f}",
        f"  model + GL rebuilds per task    {plain['model_rebuilds_per_task']:12.1f} {harness['env_builds_per_task']:12.1f}   (plain: hard reset each episode)",
        f"  peak RSS (MB)                   {plain['peak_rss_mb'] or 0:12.0f} {max(harness['peak_rss_mb_per_worker'] or [0]):12.0f}   (plain: bench process; harness: worker)",
        f"  ms per env step, plain:   {_split_line(plain['split_ms_per_step'])}",
        f"  ms per env step, harness: {_split_line(harness['split_ms_per_step'])}",
        "    (harness physics includes reset_to, its render includes preprocessing)",
        "",
        f"physics per control step, same env and actions: robosuite {physics['robosuite_ms_per_step']:.2f} ms, "
        f"fast {physics['fast_ms_per_step']:.2f} ms ({100 * physics['faster_by']:.0f}% faster); "
        f"identical final state: {'yes' if physics['identical_final_state'] else 'NO'}",
        f"both camera frames: robosuite MjSim.render {frame['robosuite_ms_both_cameras']:.1f} ms, "
        f"harness {frame['harness_ms_both_cameras']:.1f} ms; byte-identical: {'yes' if frame['identical'] else 'NO'}",
        "parallel efficiency (end to end, with worker start and env builds):",
    ]
    for p in figures["parallel"]:
        rss = ", ".join(f"{v:.0f}" for v in p["peak_rss_mb_per_worker"]) or "-"
        lines.append(
            f"  {p['workers']} worker(s): {p['steps_per_s_end_to_end']:7.1f} env steps/s, efficiency {100 * p['efficiency']:5.1f}% "
            f"(in episodes {100 * p['efficiency_in_episodes']:5.1f}%), "
            f"env builds per task {p['env_builds_per_task']:.0f}, peak RSS per worker (MB) {rss}"
        )
    lines += [
        f"cameras off: harness {off['harness_steps_per_s']:.1f} env steps/s in its episodes, of which env calls alone "
        f"{off['bare_steps_per_s_in_worker']:.1f} -> harness overhead {100 * off['overhead']:.1f}% "
        f"(bare step_physics loop in the bench process: {off['bare_steps_per_s']:.1f})",
        "",
        "targets: " + "; ".join(f"{k}: {'-' if v is None else ('met' if v else 'not met')}" for k, v in figures["targets"].items()),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    setup = _setup(args)
    with tempfile.TemporaryDirectory(prefix="evalharness-bench-") as tmp:
        figures = measure(setup, Path(tmp))
    print(report(figures))
    from evalharness.results.bench_cache import save_figures

    cached = save_figures(figures)  # for `evalharness ... --dry-run` wall-time estimates
    if cached is not None:
        print(f"figures cached in {cached} (read by --dry-run)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0
