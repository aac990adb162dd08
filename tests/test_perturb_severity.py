"""Severity is ordered in every visual dimension (real LIBERO, render only).

On three tasks of different suites, the mean absolute pixel difference between the
perturbed and the clean agentview grows with the level (1 < 3 < 5), median over 5 seeds;
each dimension as configured by default, and each light mode on its own (light's level
once failed to scale its glare and backlight modes: issue 22). The measurement is
:mod:`evalharness.bench.perturb_severity`, whose command prints the figures for every variant
(camera groups and image corruptions one by one too) in docs/robustness.md. Episodes are
planned as a run plans them, reset with and without the perturbation and rendered at
32 px; nothing is stepped.
"""

from __future__ import annotations

import pytest

from evalharness.bench.perturb_severity import LEVELS, TASKS, is_ordered, measure, medians, variants

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

SIZE = 32
CHECKED = [label for label in variants() if ":" not in label or label.startswith("light:")]


@pytest.fixture(scope="module")
def scene():
    """One LiberoEnv at a time (each holds ~2 GB), with its clean renders cached per seed."""
    from envs.libero.env import LiberoEnv

    held: dict = {}

    def get(suite: str, task: int):
        if held.get("key") != (suite, task):
            if "env" in held:
                held["env"].close()
            held.update(key=(suite, task), env=LiberoEnv(suite, task, camera_size=SIZE), clean={})
        return held["env"], held["clean"]

    yield get
    if "env" in held:
        held["env"].close()


CASES = [(suite, task, label) for suite, task in TASKS for label in CHECKED]  # suite-major: one env per suite


@pytest.mark.parametrize("suite,task,label", CASES, ids=[f"{s}-{label}" for s, _, label in CASES])
def test_distance_to_the_clean_image_grows_with_the_level(scene, suite, task, label) -> None:
    env, clean = scene(suite, task)
    distances = measure(env, suite, task, label, variants()[label], clean_images=clean)
    m = medians(distances)
    assert is_ordered(m[level] for level in LEVELS), f"{label} on {suite}: medians {m} (per seed {distances})"
