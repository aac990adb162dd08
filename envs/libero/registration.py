"""Gymnasium ids for every LIBERO task.

Ids read ``LIBERO/<suite>-<task index>-v0``, for example ``LIBERO/libero_goal-3-v0`` or
``LIBERO/libero_10-0-v0``; task indices follow LIBERO's order 0 (``evalharness tasks``
lists them). LIBERO-PRO's suites (``LIBERO/libero_pro_object_swap-3-v0``) are registered
once ``evalharness setup --libero-pro`` has fetched them; LIBERO-Plus's variants are not
(build them with ``LiberoEnv("libero_plus", index)``). Keyword arguments of :class:`envs.libero.env.LiberoEnv` pass through
``gymnasium.make`` (``camera_size=256``). The ``TimeLimit`` is openpi's max policy steps for
the suite; pass ``max_episode_steps`` to change it.
"""

from __future__ import annotations

from envs.libero.catalog import SUITES, base_suite, suite_tasks
from envs.libero.pro_data import PRO_SUITES
from envs.libero.pro_data import snapshot as pro_snapshot
from envs.libero.pro_data import task_names as pro_task_names

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
    """Register every task of the five suites, and of LIBERO-PRO's 16 once set up; returns the ids. Idempotent."""
    import gymnasium

    ids = []
    counts = {suite: len(suite_tasks(suite)) for suite in SUITES}
    if pro_snapshot() is not None:  # only the names: importing envs must stay cheap
        counts.update({suite: len(pro_task_names(suite)) for suite in PRO_SUITES})
    for suite, count in counts.items():
        for index in range(count):
            name = env_id(suite, index)
            if name not in gymnasium.registry:
                gymnasium.register(
                    id=name,
                    entry_point="envs.libero.env:LiberoEnv",
                    kwargs={"suite": suite, "task": index},
                    max_episode_steps=DEFAULT_MAX_STEPS[base_suite(suite)],
                )
            ids.append(name)
    return ids
