"""How far robosuite's step-returned camera images lag the state this env renders.

robosuite samples its camera observables during a control step's physics substeps, not
after the last one; openpi's and vla-eval's LIBERO loops feed the policy those images, and
``LiberoEnv.render_images`` renders the scene of that substep
(``envs.libero.sampled_scene``). This script steps one LIBERO task with robosuite's own
step (camera observable on) and prints, per control step, on which substep's render the
returned agentview image equals, and how many pixels a render at the step's end differs in.

    MUJOCO_GL=egl python scripts/robosuite_image_lag.py [camera_size]
"""

from __future__ import annotations

import sys

import numpy as np

from envs.libero.env import LiberoEnv


def main(size: int = 128) -> None:
    env = LiberoEnv("libero_spatial", 0, camera_size=size, fast_physics=False)
    inner = env._env.env
    inner.modify_observable("agentview_image", "enabled", True)
    env.reset_to(0, layout_seed=7)
    for _ in range(10):
        env.step_physics(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    renders: list[np.ndarray] = []
    step = inner.sim.step

    def step_and_render() -> None:
        step()
        renders.append(env._renderer.render(["agentview"])["agentview"].copy())

    inner.sim.step = step_and_render
    rng = np.random.default_rng(0)
    for k in range(3):
        renders.clear()
        env.step_physics(np.concatenate([rng.uniform(-0.6, 0.6, 6), [1.0]]))
        returned = env._raw_obs["agentview_image"]
        per_substep = [int((r != returned).any(axis=2).sum()) for r in renders]
        same = [i + 1 for i, n in enumerate(per_substep) if n == 0]
        print(f"step {k}: {len(renders)} substeps; the returned image equals the render after substep(s) {same}; "
              f"after the last it differs in {per_substep[-1]} of {size * size} pixels")
    env.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 128)
