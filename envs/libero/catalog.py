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
from envs.libero import plus_data, pro_data
from envs.libero.home import libero_package_dir

# LIBERO's own five suites (every protocol has a max steps for each).
SUITES: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")
# Every suite a run can name: LIBERO's, LIBERO-PRO's 16 (envs.libero.pro_data) and
# LIBERO-Plus's variants as one suite (envs.libero.plus_data).
ALL_SUITES: tuple[str, ...] = SUITES + pro_data.PRO_SUITES + (plus_data.SUITE,)
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
        if self.suite == plus_data.SUITE:
            return plus_data.data_dir() / plus_data.variants()[self.index].bddl
        if pro_data.is_pro_suite(self.suite):
            return pro_data.bddl_path(self.suite, self.name)
        return libero_package_dir() / "bddl_files" / self.suite / f"{self.name}.bddl"

    @property
    def init_states_path(self) -> Path:
        if self.suite == plus_data.SUITE:
            return plus_data.data_dir() / plus_data.variants()[self.index].init_file
        if pro_data.is_pro_suite(self.suite):
            return pro_data.init_states_path(self.suite, self.name)
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
    if suite not in ALL_SUITES:
        raise choices_error("suite", suite, list(ALL_SUITES))
    return suite


def base_suite(suite: str, task_index: int = 0) -> str:
    """The LIBERO suite whose protocol settings (max steps) a task uses.

    Itself for LIBERO's suites, the base suite for LIBERO-PRO's, the variant's sub-suite for
    LIBERO-Plus (whose one suite spans four).
    """
    if suite == plus_data.SUITE:
        return plus_data.variants()[task_index].sub_suite
    return pro_data.base_suite(suite) if pro_data.is_pro_suite(suite) else suite


def plus_published_prompt(variant: plus_data.Variant) -> str:
    """The instruction LIBERO-Plus's benchmark gives a variant (``Task.language``), as published.

    For a language variant: its BDDL's instruction. Otherwise LIBERO's file-name rule applied
    to the whole variant name, which appends the variant id ("... on the plate view 0 0 100
    2 352 initstate 0"; upstream issue #64).
    """
    name = variant.name
    if "_language_" in name:
        return pro_data.bddl_instruction(str(plus_data.data_dir() / variant.bddl))
    if name[0].isupper():  # libero_10's scene prefix
        name = name[name.find("SCENE") + (8 if "SCENE10" in name else 7):]
    return " ".join(name.split("_"))


def plus_bddl_prompt(variant: plus_data.Variant) -> str:
    """The variant's clean instruction: its BDDL's, as LIBERO's env reads it."""
    return pro_data.bddl_instruction(str(plus_data.data_dir() / variant.bddl))


@functools.cache
def suite_tasks(suite: str) -> tuple[TaskInfo, ...]:
    """The tasks of a suite, in LIBERO's order 0."""
    check_suite(suite)
    if suite == plus_data.SUITE:
        return tuple(TaskInfo(suite=suite, index=v.index, name=v.name, instruction=plus_published_prompt(v))
                     for v in plus_data.variants())
    if pro_data.is_pro_suite(suite):
        # Instruction: the BDDL's, as LIBERO's env reads it (the file names are the base suite's).
        return tuple(
            TaskInfo(suite=suite, index=i, name=name,
                     instruction=pro_data.bddl_instruction(str(pro_data.bddl_path(suite, name))))
            for i, name in enumerate(pro_data.task_names(suite))
        )
    return tuple(
        TaskInfo(suite=suite, index=i, name=name, instruction=instruction_from_name(name))
        for i, name in enumerate(_task_map()[suite])
    )


def all_tasks() -> list[TaskInfo]:
    """Every task of LIBERO's five suites (the PRO suites need setup; list them by name)."""
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
    if pro_data.is_pro_suite(suite):
        with np.load(info.init_states_path, allow_pickle=False) as stored:  # LIBERO-PRO's NPZ
            states = np.asarray(stored["states"])
        if states.ndim != 2 or states.shape[0] != INIT_STATES_PER_TASK:
            raise RuntimeError(f"{info.init_states_path} holds states of shape {states.shape}; expected ({INIT_STATES_PER_TASK}, n)")
        states.setflags(write=False)
        return states
    # LIBERO's and LIBERO-Plus's torch-pickled files, read without torch where they allow it
    states = _read_numpy_torch_file(info.init_states_path)
    if states is None:
        import torch  # deferred: listing tasks must not pay for importing torch

        states = np.asarray(torch.load(info.init_states_path, weights_only=False))
    if suite == plus_data.SUITE and states.ndim == 1:
        states = states.reshape(1, -1)
    states.setflags(write=False)
    return states
