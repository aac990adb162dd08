"""The run plan (evalharness.plan.spec) and video decisions (evalharness.episode.video_selection): no simulator.

Episode keys are what resume relies on: they must be stable (same inputs, same key, in
any process) and must change with anything that can change an outcome.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from envs.libero.catalog import suite_tasks
from evalharness.errors import UserInputError
from evalharness.plan.spec import EpisodeSpec, stable_hash
from evalharness.plan.build import build_plan, select_init_states, select_tasks
from evalharness.episode.video_selection import video_decisions

CONTEXT = stable_hash({"protocol": "openpi", "policy": {"name": "zero"}})


def _plan(**kw):
    args = {"suite": "libero_object", "tasks": [0, 1], "episodes_per_task": 3, "init_states": None, "seed": 7, "context": CONTEXT}
    args.update(kw)
    return build_plan(args["suite"], args["tasks"], args["episodes_per_task"], args["init_states"], args["seed"], args["context"])


# ----- keys ------------------------------------------------------------------------------------


def test_plan_is_ordered_by_task_then_init_state() -> None:
    plan = _plan()
    assert [(s.task_index, s.init_state) for s in plan] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    names = {t.index: t for t in suite_tasks("libero_object")}
    for spec in plan:
        assert spec.task_name == names[spec.task_index].name
        assert spec.instruction == names[spec.task_index].instruction
        assert spec.seed == 7 and spec.context == CONTEXT


def test_keys_are_stable_across_calls_and_unique_within_a_plan() -> None:
    a, b = _plan(), _plan()
    assert [s.key for s in a] == [s.key for s in b]
    assert len({s.key for s in a}) == len(a)
    assert all(len(s.key) == 32 and all(c in "0123456789abcdef" for c in s.key) for s in a)


def test_keys_are_stable_across_processes() -> None:
    """No dependence on Python's per-process hash randomization (PYTHONHASHSEED)."""
    code = (
        "import json; from evalharness.plan.build import build_plan; "
        f"print(json.dumps([s.key for s in build_plan('libero_object', [0, 1], 3, None, 7, {CONTEXT!r})]))"
    )
    keys = []
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": hash_seed})
        keys.append(json.loads(out.stdout))
    assert keys[0] == keys[1] == [s.key for s in _plan()]


@pytest.mark.parametrize(
    "change",
    [
        {"context": stable_hash({"protocol": "openvla"})},
        {"init_state": 5},
        {"seed": 8},
        {"task_name": "another_task"},
        {"suite": "libero_goal"},
    ],
)
def test_key_changes_with_anything_that_determines_the_outcome(change: dict) -> None:
    spec = _plan()[0]
    assert dataclasses.replace(spec, **change).key != spec.key


def test_key_does_not_depend_on_the_instruction_text_or_index_alone() -> None:
    """The key is a function of (context, suite, task name, init state, seed): the
    instruction is derived from the task name, so it must not add anything."""
    spec = _plan()[0]
    assert dataclasses.replace(spec, instruction="something else").key == spec.key


def test_stable_hash_is_independent_of_dict_order() -> None:
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_a_different_context_gives_disjoint_keys() -> None:
    other = _plan(context=stable_hash("other"))
    assert not ({s.key for s in _plan()} & {s.key for s in other})


def test_episode_seed_is_deterministic_and_differs_between_episodes() -> None:
    plan = _plan()
    seeds = [s.episode_seed for s in plan]
    assert seeds == [s.episode_seed for s in _plan()]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**32 for s in seeds)
    assert [s.episode_seed for s in _plan(seed=8)] != seeds


# ----- task selection ----------------------------------------------------------------------------


def test_select_all_tasks() -> None:
    n = len(suite_tasks("libero_goal"))
    assert select_tasks("libero_goal", "all") == list(range(n))
    assert select_tasks("libero_goal", None) == list(range(n))
    assert len(select_tasks("libero_90", "all")) == 90


def test_select_tasks_by_index_and_by_name_in_the_order_given() -> None:
    tasks = suite_tasks("libero_spatial")
    assert select_tasks("libero_spatial", [3, 1]) == [3, 1]
    assert select_tasks("libero_spatial", [tasks[4].name, 2]) == [4, 2]
    assert select_tasks("libero_spatial", tasks[7].name) == [7]
    assert select_tasks("libero_spatial", 5) == [5]
    assert select_tasks("libero_spatial", "5") == [5]


@pytest.mark.parametrize("tasks", [[0, 0], [2, "2"]])
def test_select_tasks_rejects_duplicates(tasks) -> None:
    with pytest.raises(UserInputError) as info:
        select_tasks("libero_object", tasks)
    assert "suite.tasks" in str(info.value) and "\n" not in str(info.value)


def test_select_tasks_rejects_the_same_task_by_index_and_by_name() -> None:
    name = suite_tasks("libero_object")[1].name
    with pytest.raises(UserInputError, match="suite.tasks"):
        select_tasks("libero_object", [1, name])


@pytest.mark.parametrize(("tasks", "shown"), [([99], "99"), ([0, "no_such_task"], "no_such_task"), ([-1], "-1"), ([], "[]")])
def test_select_tasks_errors_name_the_key_the_value_and_the_allowed_range(tasks, shown) -> None:
    with pytest.raises(UserInputError) as info:
        select_tasks("libero_spatial", tasks)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("suite.tasks=")
    assert shown in message
    assert "allowed" in message and "0..9" in message


def test_select_tasks_rejects_an_unknown_suite() -> None:
    with pytest.raises(UserInputError, match="libero_spatial"):
        select_tasks("libero_100", "all")


# ----- init states ----------------------------------------------------------------------------------


def test_init_states_default_to_the_first_n() -> None:
    assert select_init_states(3, None) == [0, 1, 2]
    assert select_init_states(None, None) == list(range(50))
    assert select_init_states(50, None) == list(range(50))


def test_explicit_init_states_override_episodes_per_task() -> None:
    assert select_init_states(2, [7, 3, 49]) == [7, 3, 49]
    plan = _plan(tasks=[0], init_states=[7, 3])
    assert [s.init_state for s in plan] == [7, 3]


@pytest.mark.parametrize("n", [0, 51, -1, True, "3"])
def test_episodes_per_task_out_of_range_is_rejected(n) -> None:
    with pytest.raises(UserInputError) as info:
        select_init_states(n, None)
    message = str(info.value)
    assert message.startswith(f"suite.episodes_per_task={n!r}") and "1..50" in message and "\n" not in message


@pytest.mark.parametrize("states", [[50], [0, 0], [], [-1]])
def test_bad_init_states_are_rejected_naming_the_key(states) -> None:
    with pytest.raises(UserInputError) as info:
        select_init_states(None, states)
    message = str(info.value)
    assert message.startswith("suite.init_states=") and "0..49" in message and "\n" not in message


# ----- video decisions --------------------------------------------------------------------------------


def _decisions(plan: list[EpisodeSpec], mode: str, first_n: int = 1) -> dict[tuple[int, int], str]:
    by_key = video_decisions(plan, mode, first_n)
    assert set(by_key) == {s.key for s in plan}
    return {(s.task_index, s.init_state): by_key[s.key] for s in plan}


def test_video_all_none_failures() -> None:
    plan = _plan()
    assert set(_decisions(plan, "all").values()) == {"yes"}
    assert set(_decisions(plan, "none").values()) == {"no"}
    assert set(_decisions(plan, "failures").values()) == {"if_failure"}


def test_video_first_n_counts_positions_per_task_not_init_state_numbers() -> None:
    # Init states 9, 4, 20 in that order: by position (sorted by init state), the first two
    # of each task are 4 and 9, whatever their numbers and the order they were listed in.
    plan = _plan(tasks=[0, 1], init_states=[9, 4, 20])
    decisions = _decisions(plan, "first_n", 2)
    assert decisions == {
        (0, 4): "yes", (0, 9): "yes", (0, 20): "no",
        (1, 4): "yes", (1, 9): "yes", (1, 20): "no",
    }
    decisions = _decisions(plan, "first_n", 1)
    assert [k for k, v in decisions.items() if v == "yes"] == [(0, 4), (1, 4)]


def test_video_first_n_does_not_change_when_part_of_the_plan_is_done() -> None:
    """Decisions are taken on the whole plan, so a resumed run films the same episodes."""
    plan = _plan(tasks=[0], episodes_per_task=4)
    full = video_decisions(plan, "first_n", 2)
    assert [full[s.key] for s in plan] == ["yes", "yes", "no", "no"]


def test_video_first_n_larger_than_the_plan_films_everything() -> None:
    assert set(_decisions(_plan(), "first_n", 10).values()) == {"yes"}


def test_video_bad_mode_and_first_n_are_one_line_errors() -> None:
    from evalharness.episode.video_selection import load_video_settings

    with pytest.raises(UserInputError) as info:
        load_video_settings({"mode": "sometimes", "first_n": 1, "fps": None})
    message = str(info.value)
    assert "video.mode" in message and "'sometimes'" in message and "first_n" in message and "\n" not in message
    for bad in (0, -1, "2"):
        with pytest.raises(UserInputError, match="video.first_n"):
            load_video_settings({"mode": "first_n", "first_n": bad, "fps": None})
