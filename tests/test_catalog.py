"""The task catalog agrees with LIBERO's own benchmark, and bad names fail clearly."""

from __future__ import annotations

import gymnasium
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.errors import UserInputError
from envs.libero.catalog import SUITES, all_tasks, get_task, suite_tasks
from envs.libero.registration import env_id

EXPECTED_COUNTS = {"libero_spatial": 10, "libero_object": 10, "libero_goal": 10, "libero_10": 10, "libero_90": 90}


def test_suite_counts_and_total():
    assert {s: len(suite_tasks(s)) for s in SUITES} == EXPECTED_COUNTS
    assert len(all_tasks()) == 130


def test_catalog_matches_libero_benchmark(assets_installed):
    from envs.libero.runtime import import_libero

    import_libero()
    from libero.libero import benchmark

    for suite in SUITES:
        bench = benchmark.get_benchmark_dict()[suite]()
        ours = suite_tasks(suite)
        assert [t.name for t in ours] == bench.get_task_names()
        assert [t.instruction for t in ours] == [bench.get_task(i).language for i in range(bench.n_tasks)]


def test_every_task_is_registered_with_gymnasium():
    for task in all_tasks():
        spec = gymnasium.spec(env_id(task.suite, task.index))
        assert spec.kwargs == {"suite": task.suite, "task": task.index}


def test_lookup_by_name_and_index():
    assert get_task("libero_goal", "put_the_bowl_on_the_stove").index == 1
    assert get_task("libero_goal", 1).name == "put_the_bowl_on_the_stove"
    assert get_task("libero_goal", "1").index == 1


@pytest.mark.parametrize(
    ("suite", "task", "needle"),
    [
        ("libero_100", 0, "suite 'libero_100' is not valid; allowed: libero_spatial, libero_object"),
        ("libero_goal", 10, "task index for libero_goal 10 is not valid; allowed: 0..9"),
        ("libero_90", -1, "allowed: 0..89"),
        ("libero_goal", "open_the_fridge", "task 'open_the_fridge' is not in libero_goal"),
    ],
)
def test_bad_suite_or_task_is_one_clear_line(suite, task, needle):
    with pytest.raises(UserInputError) as info:
        get_task(suite, task)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
