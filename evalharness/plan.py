"""The plan of a run: one immutable :class:`EpisodeSpec` per episode, each with a stable key.

A key is a hash of everything that determines the episode's outcome: the run context
(protocol settings, policy identity, action pipeline, camera size, the versions of the
simulator stack and the assets' checksum) plus the episode's own coordinates (suite,
task, init state, seed). Resume skips keys already in the result store, so changing any
of those inputs (a new checkpoint, another MuJoCo) can never silently reuse old episodes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.errors import UserInputError
from envs.libero.catalog import INIT_STATES_PER_TASK, check_init_state, check_suite, get_task, suite_tasks


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON form (sorted keys) of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: task ``task_index`` of ``suite`` from init state ``init_state``."""

    suite: str
    task_index: int
    task_name: str
    instruction: str
    init_state: int
    seed: int
    context: str  # hash of the run context shared by every episode of the run
    # perturb group (evalharness.perturb.plan): the dimensions' configs and the parameter
    # candidates drawn from the seed, as canonical JSON; None for an unperturbed episode.
    perturbation: str | None = None
    control_key: str | None = None  # the key of this perturbed episode's clean twin

    @property
    def key(self) -> str:
        coordinates: list = [self.context, self.suite, self.task_name, self.init_state, self.seed]
        if self.perturbation is not None:  # unperturbed keys stay what they always were
            coordinates.append(self.perturbation)
        return stable_hash(coordinates)[:32]

    @property
    def episode_seed(self) -> int:
        """A per-episode seed for stochastic policies, derived from (seed, task, init state)."""
        seq = np.random.SeedSequence([self.seed, self.task_index, self.init_state, len(self.suite)])
        return int(seq.generate_state(1)[0])


def select_tasks(suite: str, tasks: Any) -> list[int]:
    """Task indices from ``all``, an index, a name, or a list of indices / names."""
    check_suite(suite)
    if tasks in (None, "all"):
        return [t.index for t in suite_tasks(suite)]
    items = list(tasks) if isinstance(tasks, (list, tuple)) else [tasks]
    allowed = (
        f"all, or a non-empty list of distinct task indices 0..{len(suite_tasks(suite)) - 1} "
        f"or task names (see 'evalharness tasks {suite}')"
    )
    if not items:
        raise UserInputError(f"suite.tasks={items!r} is not valid (no task); allowed: {allowed}")
    indices = []
    for item in items:
        try:
            indices.append(get_task(suite, item).index)
        except UserInputError:
            raise UserInputError(f"suite.tasks={items!r} is not valid ({item!r} is not a task of {suite}); allowed: {allowed}") from None
    if len(set(indices)) != len(indices):
        raise UserInputError(f"suite.tasks={items!r} is not valid (a task is listed twice); allowed: {allowed}")
    return indices


def select_init_states(episodes_per_task: int | None, init_states: Sequence[int] | None) -> list[int]:
    """Init states 0..n-1 (the protocols' convention), or an explicit list."""
    if init_states is not None:
        items = list(init_states) if isinstance(init_states, (list, tuple)) else [init_states]
        allowed = f"a non-empty list of distinct init states 0..{INIT_STATES_PER_TASK - 1}"
        if not items:
            raise UserInputError(f"suite.init_states={items!r} is not valid (no init state); allowed: {allowed}")
        states = []
        for k in items:
            try:
                states.append(check_init_state(k))
            except UserInputError:
                raise UserInputError(f"suite.init_states={items!r} is not valid ({k!r} is not an init state); allowed: {allowed}") from None
        if len(set(states)) != len(states):
            raise UserInputError(f"suite.init_states={items!r} is not valid (a state is listed twice); allowed: {allowed}")
        return states
    n = episodes_per_task if episodes_per_task is not None else INIT_STATES_PER_TASK
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= INIT_STATES_PER_TASK:
        raise UserInputError(
            f"suite.episodes_per_task={n!r} is not valid; allowed: 1..{INIT_STATES_PER_TASK} "
            "(LIBERO has 50 fixed init states per task)"
        )
    return list(range(n))


def build_plan(
    suite: str, tasks: Any, episodes_per_task: int | None, init_states: Sequence[int] | None, seed: int, context: str
) -> list[EpisodeSpec]:
    """All episodes of a run, ordered by task then init state."""
    states = select_init_states(episodes_per_task, init_states)
    plan = []
    for index in select_tasks(suite, tasks):
        info = get_task(suite, index)
        for k in states:
            plan.append(EpisodeSpec(suite, index, info.name, info.instruction, k, int(seed), context))
    return plan
