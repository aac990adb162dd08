"""The LIBERO suites and tasks, listable without building a simulator.

Task order is LIBERO's order 0 (the identity order), which every published VLA evaluation
uses, so "task 3 of libero_goal" means the same task here as in openpi, OpenVLA and
LeRobot. The task list is read from hf-libero's own suite map (loaded by file path, so
listing does not import torch or robosuite).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.errors import UserInputError, choices_error
from envs.libero.home import libero_package_dir

SUITES: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")
INIT_STATES_PER_TASK = 50

# libero_10 / libero_90 task names carry a scene prefix ("KITCHEN_SCENE3_turn_on_...").
_SCENE_PREFIX = re.compile(r"^[A-Z0-9_]*?SCENE\d+_")


@dataclass(frozen=True)
class TaskInfo:
    """One LIBERO task: where it sits in its suite and what it asks for."""

    suite: str
    index: int
    name: str
    instruction: str

    @property
    def bddl_path(self) -> Path:
        return libero_package_dir() / "bddl_files" / self.suite / f"{self.name}.bddl"

    @property
    def init_states_path(self) -> Path:
        return libero_package_dir() / "init_files" / self.suite / f"{self.name}.pruned_init"


def instruction_from_name(name: str) -> str:
    """The language instruction LIBERO derives from a task's file name."""
    return _SCENE_PREFIX.sub("", name).replace("_", " ")


@functools.cache
def _task_map() -> dict[str, list[str]]:
    path = libero_package_dir() / "benchmark" / "libero_suite_task_map.py"
    spec = importlib.util.spec_from_file_location("_libero_suite_task_map", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.libero_task_map


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise choices_error("suite", suite, list(SUITES))
    return suite


@functools.cache
def suite_tasks(suite: str) -> tuple[TaskInfo, ...]:
    """The tasks of a suite, in LIBERO's order 0."""
    check_suite(suite)
    return tuple(
        TaskInfo(suite=suite, index=i, name=name, instruction=instruction_from_name(name))
        for i, name in enumerate(_task_map()[suite])
    )


def all_tasks() -> list[TaskInfo]:
    return [task for suite in SUITES for task in suite_tasks(suite)]


def get_task(suite: str, task: int | str) -> TaskInfo:
    """A task by index or by name; a bad value gives one line listing the valid ones."""
    tasks = suite_tasks(suite)
    if isinstance(task, str) and not task.lstrip("-").isdigit():
        for info in tasks:
            if info.name == task:
                return info
        raise UserInputError(
            f"task {task!r} is not in {suite}; allowed: indices 0..{len(tasks) - 1} or names "
            f"(see 'evalharness tasks {suite}')"
        )
    index = int(task)
    if not 0 <= index < len(tasks):
        raise choices_error(f"task index for {suite}", index, range(len(tasks)))
    return tasks[index]


def check_init_state(index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < INIT_STATES_PER_TASK:
        raise choices_error("init state", index, range(INIT_STATES_PER_TASK))
    return int(index)


def _read_numpy_torch_file(path: str) -> np.ndarray | None:
    """A ``torch.save``d numpy array read without torch, or None when the file holds tensors.

    LIBERO's ``.pruned_init`` files are torch zip archives whose only record is the pickle
    of a numpy array (no tensor storages), so plain unpickling gives exactly the array
    ``torch.load`` gives (checked for all 130 tasks). Workers that only simulate then never
    import torch, so an in-memory model served by the parent provably stays there.
    """
    import pickle
    import zipfile

    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl")]
        if len(pickles) != 1 or any("/data/" in n for n in names):  # tensor storages: torch must read it
            return None
        try:
            return np.asarray(pickle.loads(archive.read(pickles[0])))
        except (pickle.UnpicklingError, AttributeError, ImportError, ModuleNotFoundError):
            return None


@functools.cache
def load_init_states(suite: str, task_index: int) -> np.ndarray:
    """The task's fixed initial MuJoCo states, shape (50, state_dim), read-only."""
    info = get_task(suite, task_index)
    states = _read_numpy_torch_file(info.init_states_path)
    if states is None:
        import torch  # deferred: listing tasks must not pay for importing torch

        states = np.asarray(torch.load(info.init_states_path, weights_only=False))
    states.setflags(write=False)
    return states
