"""The plan of a run, from its config: the one function every planner and reader calls.

The run (``engine.evaluate.prepare``) and the readers of a finished run
(``results.runs``, rebuilding the planned keys from ``run.json``) both call
:func:`plan_from_config`, so the episodes a reader expects are the episodes the run
planned: the suite's tasks x init states in order, each perturbed twin before its clean
control when the ``perturb`` group is active.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from envs.errors import UserInputError
from evalharness.config.fields import OptionalCount
from evalharness.config.validation import validate_settings
from envs.libero.catalog import INIT_STATES_PER_TASK, check_init_state, check_suite, get_task, suite_tasks
from evalharness.perturb.config import load_perturb_config
from evalharness.plan.perturbed import perturb_plan
from evalharness.plan.spec import EpisodeSpec

__all__ = ["PlusSuiteSettings", "SuiteSettings", "build_plan", "load_suite_settings", "plan_from_config", "select_init_states",
           "select_tasks"]


class SuiteSettings(BaseModel):
    """The ``suite`` group's keys (``conf/suite/*.yaml``).

    Which tasks and init states a suite has is the catalog's to say: :func:`select_tasks`
    and :func:`select_init_states` check ``tasks``, ``episodes_per_task`` and
    ``init_states`` against it when the plan is built, one line each.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    tasks: Any  # all, a task index or name, or a list of them
    episodes_per_task: Any  # 1..50 (null: all 50)
    init_states: Any  # an explicit list of init states (overrides episodes_per_task)
    max_steps: OptionalCount  # null: the protocol's max steps for this suite


class PlusSuiteSettings(SuiteSettings):
    """``conf/suite/libero_plus.yaml``: the variant filters, each checked by
    :func:`evalharness.plan.plus.plus_plan` against the variants (one line each)."""

    sub_suite: Any = None  # a LIBERO suite or a list of them (null: all four)
    category: Any = None  # a category or a list of them (null: all seven)
    level: Any = None  # 1..5 or a list (null: all); needs upstream's task_classification.json
    prompt: str = "published"  # published | bddl


def load_suite_settings(cfg: Any) -> SuiteSettings:
    """The ``suite`` group, validated (one line naming ``suite.<key>``)."""
    name = cfg.get("name") if isinstance(cfg, Mapping) else None
    return validate_settings(PlusSuiteSettings if name == "libero_plus" else SuiteSettings, cfg, "suite")


def plan_from_config(suite: Mapping[str, Any], perturb: Mapping[str, Any] | None, seed: int, context: str) -> list[EpisodeSpec]:
    """Every episode of a run: the ``suite`` group's episodes, perturbed as ``perturb`` says."""
    if suite["name"] == "libero_plus":  # one trial per variant (evalharness.plan.plus)
        from evalharness.plan.plus import plus_plan

        return perturb_plan(plus_plan(suite, seed, context), load_perturb_config(perturb))
    plan = build_plan(
        suite["name"], suite.get("tasks", "all"), suite.get("episodes_per_task"), suite.get("init_states"),
        seed, context,
    )
    # perturb: each episode's parameters are drawn here, from its seed, into its key.
    return perturb_plan(plan, load_perturb_config(perturb))


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
