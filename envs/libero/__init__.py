"""LIBERO (MuJoCo / robosuite manipulation benchmark) as Gymnasium environments.

- :mod:`envs.libero.home` / :mod:`envs.libero.assets`: non-interactive LIBERO setup.
- :mod:`envs.libero.catalog`: suites and tasks, listable without a simulator.
- :mod:`envs.libero.env`: :class:`LiberoEnv`, one task as a ``gymnasium.Env``.
- :mod:`envs.libero.registration`: the ``LIBERO/<suite>-<index>-v0`` ids.
- :mod:`envs.libero.pro_data` / :mod:`envs.libero.pro_objects`: LIBERO-PRO's 16 suites.
- :mod:`envs.libero.plus_data`, ``plus_env``, ``plus_camera``, ``plus_noise``: LIBERO-Plus's variants.

What this package assumes about LIBERO is in docs/reference/libero.md (the offline
assets archive: docs/reference/libero-assets.md).
"""

from envs.libero.catalog import SUITES, TaskInfo, all_tasks, get_task, suite_tasks

__all__ = ["SUITES", "TaskInfo", "all_tasks", "get_task", "suite_tasks", "LiberoEnv"]


def __getattr__(name: str):
    # The env module imports gymnasium eagerly; keep `import envs.libero` light.
    if name == "LiberoEnv":
        from envs.libero.env import LiberoEnv

        return LiberoEnv
    raise AttributeError(name)
