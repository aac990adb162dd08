"""How far a visual perturbation moves the agentview image, per level: the severity check.

A level is only meaningful if it is ordered: level 5 must change what the policy sees
more than level 3, and level 3 more than level 1. This module measures it the way the
harness runs episodes: each episode is planned (:func:`~evalharness.perturb.plan.perturb_plan`,
so its parameters are drawn from its seed exactly as in a run), reset with and without its
perturbation, and the agentview image the policy would get is rendered. The distance is
the mean absolute difference of the two uint8 images (0-255 scale, over pixels and
channels). Nothing is stepped: visual dimensions do not touch the physics.

Rerun the figures of docs/robustness.md with::

    MUJOCO_GL=egl python -m evalharness.bench.perturb_severity            # all visual dimensions
    MUJOCO_GL=egl python -m evalharness.bench.perturb_severity light image  # some of them
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: Three tasks of different suites (a table scene, a floor scene, a kitchen-table scene).
TASKS: tuple[tuple[str, int], ...] = (("libero_spatial", 0), ("libero_object", 0), ("libero_goal", 0))
LEVELS: tuple[int, ...] = (1, 3, 5)
SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
CAMERA = "base_0_rgb"  # the agentview, as the policy receives it
SIZE = 64  # camera size of the command's figures (the test uses 32 px)

#: The visual dimensions, and the variants each draws from (checked one variant at a time,
#: so that a mode that does not scale with the level cannot hide behind another that does).
VISUAL: dict[str, dict[str, Any]] = {
    "camera": {"_target_": "envs.libero.perturb.camera.CameraOrbit"},
    "light": {"_target_": "envs.libero.perturb.light.Lighting"},
    "image": {"_target_": "envs.libero.perturb.image.ImageCorruption"},
    "color": {"_target_": "envs.libero.perturb.color.Recolor"},
    "texture": {"_target_": "envs.libero.perturb.color.Retexture"},
}


def variants() -> dict[str, dict[str, Any]]:
    """Label -> the ``perturb`` dimension config: each dimension as configured by default,
    plus each light mode, camera group and image corruption on its own."""
    from envs.libero.perturb.camera import GROUPS
    from envs.libero.perturb.image import KINDS
    from envs.libero.perturb.light import MODES

    out = {name: dict(cfg) for name, cfg in VISUAL.items()}
    out.update({f"light:{m}": {**VISUAL["light"], "modes": [m]} for m in MODES})
    out.update({f"camera:{g}": {**VISUAL["camera"], "groups": [g]} for g in GROUPS})
    out.update({f"image:{k}": {**VISUAL["image"], "kinds": [k]} for k in KINDS})
    return out


def _planned(suite: str, task: int, seed: int, dimension: str, cfg: dict[str, Any], level: int):
    from evalharness.plan.perturbed import perturb_plan
    from evalharness.perturb.config import load_perturb_config
    from evalharness.plan.build import build_plan

    plan = build_plan(suite, [task], None, [0], seed, "severity")
    node = {"level": level, "control": True, dimension: dict(cfg)}
    perturbed, clean = perturb_plan(plan, load_perturb_config(node))
    return perturbed, clean


def image_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images, 0-255 scale."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def measure(env: Any, suite: str, task: int, label: str, cfg: dict[str, Any],
            levels: Sequence[int] = LEVELS, seeds: Sequence[int] = SEEDS,
            clean_images: dict[int, np.ndarray] | None = None) -> dict[int, list[float]]:
    """Level -> the distance for each seed, on ``env`` (a LiberoEnv of ``suite`` / ``task``).

    ``clean_images`` (seed -> the clean twin's image) caches the clean renders between
    calls on the same env; a render costs far more than a reset.
    """
    from evalharness.perturb.episode import active_perturbation

    dimension = label.split(":")[0]
    cache = {} if clean_images is None else clean_images
    out: dict[int, list[float]] = {level: [] for level in levels}
    for seed in seeds:
        for level in levels:
            perturbed, clean = _planned(suite, task, seed, dimension, cfg, level)
            if seed not in cache:
                env.reset_to(clean.init_state, layout_seed=clean.seed)
                cache[seed] = env.render_images((CAMERA,))[CAMERA]
            env.reset_to(perturbed.init_state, layout_seed=perturbed.seed, perturbation=active_perturbation(perturbed))
            out[level].append(image_distance(env.render_images((CAMERA,))[CAMERA], cache[seed]))
    env.reset_to(0)  # undo the last perturbation's model edits
    return out


def medians(distances: dict[int, list[float]]) -> dict[int, float]:
    return {level: statistics.median(values) for level, values in distances.items()}


def is_ordered(values: Iterable[float]) -> bool:
    values = list(values)
    return all(a < b for a, b in zip(values, values[1:]))


def main(argv: Sequence[str] | None = None) -> int:
    from envs.libero.env import LiberoEnv

    wanted = list(argv if argv is not None else sys.argv[1:])
    chosen = {k: v for k, v in variants().items() if not wanted or k.split(":")[0] in wanted or k in wanted}
    size = SIZE
    bad = 0
    print(f"median over seeds {list(SEEDS)} of the mean |perturbed - clean| agentview pixel difference "
          f"(0-255, {size}x{size}), levels {list(LEVELS)}")
    for suite, task in TASKS:
        env = LiberoEnv(suite, task, camera_size=size)
        clean_images: dict[int, np.ndarray] = {}
        try:
            for label, cfg in chosen.items():
                m = medians(measure(env, suite, task, label, cfg, clean_images=clean_images))
                ok = is_ordered(m[level] for level in LEVELS)
                bad += not ok
                print(f"{suite:15s} t{task} {label:22s} " + "  ".join(f"L{k} {v:6.2f}" for k, v in m.items())
                      + ("" if ok else "   NOT ORDERED"))
        finally:
            env.close()
    print(json.dumps({"not_ordered": bad}))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
