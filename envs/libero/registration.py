"""Gymnasium ids for every LIBERO task.

Ids read ``LIBERO/<suite>-<task index>-v0``, for example ``LIBERO/libero_goal-3-v0`` or
``LIBERO/libero_10-0-v0``; task indices follow LIBERO's order 0 (``evalharness tasks``
lists them). Keyword arguments of :class:`envs.libero.env.LiberoEnv` pass through
``gymnasium.make`` (``camera_size=256``). The ``TimeLimit`` is openpi's max policy steps for
the suite; pass ``max_episode_steps`` to change it.
"""

from __future__ import annotations

from envs.libero.catalog import SUITES, suite_tasks

NAMESPACE = "LIBERO"
VERSION = 0

# openpi's max policy steps per suite (docs/reference/protocols.md).
DEFAULT_MAX_STEPS = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}


def env_id(suite: str, index: int) -> str:
    return f"{NAMESPACE}/{suite}-{index}-v{VERSION}"


def register_all() -> list[str]:
    """Register every task of the five suites; returns the ids. Idempotent."""
    import gymnasium

    ids = []
    for suite in SUITES:
        for task in suite_tasks(suite):
            name = env_id(suite, task.index)
            if name not in gymnasium.registry:
                gymnasium.register(
                    id=name,
                    entry_point="envs.libero.env:LiberoEnv",
                    kwargs={"suite": suite, "task": task.index},
                    max_episode_steps=DEFAULT_MAX_STEPS[suite],
                )
            ids.append(name)
    return ids
