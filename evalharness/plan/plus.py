"""The plan of ``suite=libero_plus``: one trial per LIBERO-Plus variant, from init state 0.

LIBERO-Plus evaluates each of its variants once (``num_trials_per_task = 1``) from the base
task's first init state; a run picks variants by ``suite.sub_suite`` (LIBERO suite),
``suite.category`` and ``suite.level`` (upstream's task_classification.json), each a value
or a list (null = all). ``suite.prompt`` chooses the instruction: ``published`` (default) is
upstream's ``Task.language``, the variant id appended, as the published numbers were made;
``bddl`` is the variant BDDL's clean instruction. The prompt is part of the run context,
so the two never share episode keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from envs.errors import UserInputError
from envs.libero import plus_data
from envs.libero.catalog import plus_bddl_prompt, plus_published_prompt
from evalharness.plan.spec import EpisodeSpec

PROMPTS = ("published", "bddl")
DEFAULT_CATEGORIES = plus_data.RUNNABLE


def _choices(key: str, value: Any, allowed: Sequence[Any]) -> list[Any] | None:
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    bad = [v for v in items if v not in allowed or isinstance(v, bool)]
    if not items or bad:
        raise UserInputError(
            f"suite.{key}={value!r} is not valid; allowed: one of {', '.join(map(str, allowed))}, or a list of them, or null (all)"
        )
    return items


def prompt_of(suite: Mapping[str, Any]) -> str:
    prompt = suite.get("prompt", "published")
    if prompt not in PROMPTS:
        raise UserInputError(f"suite.prompt={prompt!r} is not valid; allowed: {', '.join(PROMPTS)}")
    return str(prompt)


def plus_plan(suite: Mapping[str, Any], seed: int, context: str) -> list[EpisodeSpec]:
    """The chosen variants in upstream's order, each once from init state 0."""
    sub_suites = _choices("sub_suite", suite.get("sub_suite"), plus_data.SUB_SUITES)
    categories = _choices("category", suite.get("category", list(DEFAULT_CATEGORIES)), list(plus_data.CATEGORIES))
    levels = _choices("level", suite.get("level"), [1, 2, 3, 4, 5])
    prompt = prompt_of(suite)
    if suite.get("episodes_per_task", 1) not in (1, None) or suite.get("init_states") not in (None, [0], 0):
        raise UserInputError(
            "suite.episodes_per_task / suite.init_states are not valid for libero_plus; allowed: episodes_per_task=1, "
            "init_states=null (LIBERO-Plus runs each variant once, from init state 0)"
        )
    chosen = plus_data.select(sub_suites, categories, levels)
    tasks = suite.get("tasks", "all")
    if tasks not in (None, "all"):
        wanted = list(tasks) if isinstance(tasks, (list, tuple)) else [tasks]
        names = {plus_data.variants()[int(t)].name if isinstance(t, int) else plus_data.variant(str(t)).name for t in wanted}
        chosen = [v for v in chosen if v.name in names]
    if not chosen:
        raise UserInputError(
            f"no LIBERO-Plus variant matches suite.sub_suite={suite.get('sub_suite')!r}, suite.category="
            f"{suite.get('category')!r}, suite.level={suite.get('level')!r}, suite.tasks={tasks!r}"
        )
    plus_data.check_runnable(chosen)
    instruction = plus_published_prompt if prompt == "published" else plus_bddl_prompt
    return [EpisodeSpec(plus_data.SUITE, v.index, v.name, instruction(v), 0, int(seed), context) for v in chosen]
