"""The ``scripted`` privileged-state pick-and-place policy.

Fast tests drive the phase machine with synthetic observations; the ``sim`` test runs one
real LIBERO-Object episode under the openpi protocol (64 px cameras, never rendered).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalharness.policies.scripted import (
    KNOWN_OBJECTS,
    ScriptedPickPlace,
    _quat_mul,
    container_from_instruction,
    grasp_offset_x,
    object_from_instruction,
    orientation_error,
    resolve_instance,
)

LIBERO_OBJECT_INSTRUCTIONS: dict[str, str] = {
    "pick up the alphabet soup and place it in the basket": "alphabet_soup",
    "pick up the cream cheese and place it in the basket": "cream_cheese",
    "pick up the salad dressing and place it in the basket": "salad_dressing",
    "pick up the bbq sauce and place it in the basket": "bbq_sauce",
    "pick up the ketchup and place it in the basket": "ketchup",
    "pick up the tomato sauce and place it in the basket": "tomato_sauce",
    "pick up the butter and place it in the basket": "butter",
    "pick up the milk and place it in the basket": "milk",
    "pick up the chocolate pudding and place it in the basket": "chocolate_pudding",
    "pick up the orange juice and place it in the basket": "orange_juice",
}

INSTRUCTION = "pick up the alphabet soup and place it in the basket"
DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # x-y-z-w: hand pointing down, as in LIBERO's initial states


def _obs(eef: Any, obj: Any, basket: Any = (0.0, 0.25, -0.005), gripper: float = 0.039) -> dict[str, Any]:
    return {
        "instruction": INSTRUCTION,
        "robot": {
            "robot0_eef_pos": np.asarray(eef, dtype=float),
            "robot0_eef_quat": DOWN.copy(),
            "robot0_gripper_qpos": np.array([gripper, -gripper]),
        },
        "privileged": {
            "alphabet_soup_1_pos": np.asarray(obj, dtype=float),
            "alphabet_soup_1_quat": DOWN.copy(),
            "basket_1_pos": np.asarray(basket, dtype=float),
            "basket_1_quat": DOWN.copy(),
            "milk_1_pos": np.array([0.1, -0.2, 0.07]),
            "milk_1_quat": DOWN.copy(),
        },
    }


def _policy() -> ScriptedPickPlace:
    policy = ScriptedPickPlace()
    policy.reset(INSTRUCTION, seed=7)
    return policy


# ----- instruction -> object ---------------------------------------------------------------


@pytest.mark.parametrize(("instruction", "expected"), sorted(LIBERO_OBJECT_INSTRUCTIONS.items()))
def test_every_libero_object_instruction_maps_to_its_object(instruction: str, expected: str) -> None:
    assert object_from_instruction(instruction) == expected
    assert container_from_instruction(instruction) == "basket"


def test_mapping_normalizes_case_punctuation_and_spelling() -> None:
    assert object_from_instruction("Pick up the Alphabet-Soup, and place it in the basket.") == "alphabet_soup"
    assert object_from_instruction("pick up the barbecue sauce and place it in the basket") == "bbq_sauce"
    assert object_from_instruction("  PICK UP THE   ORANGE JUICE and place it in the basket") == "orange_juice"


def test_mapping_prefers_the_longest_name_and_ignores_the_container_clause() -> None:
    # "tomato sauce" must not be read as some other "sauce"; the container is never the object.
    assert object_from_instruction("pick up the tomato sauce and place it in the basket") == "tomato_sauce"
    assert object_from_instruction("pick up the milk and put it next to the butter") == "milk"


def test_unknown_object_raises_a_clear_error() -> None:
    instruction = "pick up the rubber duck and place it in the basket"
    with pytest.raises(ValueError, match="rubber duck") as info:
        object_from_instruction(instruction)
    assert "alphabet soup" in str(info.value)  # says what it can pick up
    with pytest.raises(ValueError, match="rubber duck"):
        ScriptedPickPlace().reset(instruction, seed=7)


def test_unknown_container_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match="on the plate"):
        container_from_instruction("pick up the milk and place it on the plate")


def test_known_objects_cover_libero_object() -> None:
    assert set(LIBERO_OBJECT_INSTRUCTIONS.values()) <= set(KNOWN_OBJECTS)


def test_resolve_instance_takes_the_lowest_numbered_instance_and_names_what_is_there() -> None:
    privileged = {"milk_2_pos": 0, "milk_1_pos": 0, "milk_1_quat": 0, "basket_1_pos": 0, "world_pose_in_gripper": 0}
    assert resolve_instance("milk", privileged) == "milk_1"
    with pytest.raises(ValueError, match=r"no 'ketchup'.*basket_1.*milk_1"):
        resolve_instance("ketchup", privileged)


# ----- grasping flat boxes beside taller objects ------------------------------------------------


def test_flat_box_is_grasped_off_centre_away_from_a_taller_neighbour_under_the_palm() -> None:
    # LIBERO-Object task 1, init state 1: the palm, long along y, lands on the tomato sauce.
    cream_cheese = np.array([0.055, -0.103, 0.009])
    others = {"tomato_sauce_1": np.array([0.100, -0.202, 0.038]), "basket_1": np.array([0.0, 0.25, -0.005])}
    dx = grasp_offset_x("cream_cheese_1", cream_cheese, others, grasp_z=0.012)
    assert -0.029 <= dx < -0.005  # away from the can, pads still on the box (half length 0.041)
    # Mirror image: shift the other way.
    mirrored = {"tomato_sauce_1": np.array([0.010, -0.202, 0.038])}
    assert grasp_offset_x("cream_cheese_1", cream_cheese, mirrored, grasp_z=0.012) > 0.005


def test_no_shift_without_a_blocking_neighbour_or_for_round_objects() -> None:
    cream_cheese = np.array([0.055, -0.103, 0.009])
    assert grasp_offset_x("cream_cheese_1", cream_cheese, {}, grasp_z=0.012) == 0.0
    # Flat neighbours (butter) and objects beyond the palm's y span do not block.
    others = {"butter_1": np.array([0.1, -0.15, 0.009]), "milk_1": np.array([0.1, 0.2, 0.066])}
    assert grasp_offset_x("cream_cheese_1", cream_cheese, others, grasp_z=0.012) == 0.0
    # A can is grasped through its centre whatever is around it.
    soup = np.array([0.05, -0.2, 0.038])
    assert grasp_offset_x("alphabet_soup_1", soup, {"milk_1": np.array([0.1, -0.2, 0.066])}, grasp_z=0.038) == 0.0


# ----- the controller on synthetic observations --------------------------------------------------


def test_policy_metadata_and_identity() -> None:
    policy = ScriptedPickPlace(position_gain=12.0)
    assert policy.name == "scripted"
    assert policy.needs_privileged_state is True
    identity = policy.identity()
    assert identity["name"] == "scripted"
    assert identity["position_gain"] == 12.0
    json.dumps(identity)  # part of every episode's key: must serialize
    assert identity != ScriptedPickPlace().identity()


def test_act_before_reset_or_without_privileged_state_fails_clearly() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        ScriptedPickPlace().act(_obs([0, 0, 0.25], [0.1, 0.1, 0.04]))
    obs = _obs([0, 0, 0.25], [0.1, 0.1, 0.04])
    del obs["privileged"]
    with pytest.raises(ValueError, match="privileged"):
        _policy().act(obs)


def test_far_above_and_beside_the_object_moves_toward_it_with_the_gripper_open() -> None:
    policy = _policy()
    chunk = policy.act(_obs(eef=[-0.15, 0.0, 0.25], obj=[0.05, -0.2, 0.038]))
    assert chunk.shape == (1, 7)
    assert chunk.dtype == np.float64
    assert np.all(np.abs(chunk) <= 1.0)
    action = chunk[0]
    assert action[0] > 0 and action[1] < 0  # toward the object in x-y
    assert max(abs(action[0]), abs(action[1])) == pytest.approx(1.0)  # far: saturated
    assert action[0] == pytest.approx(-action[1])  # straight line: direction kept when clipping
    assert abs(action[2]) < 0.1  # stays at transit height instead of diving
    assert np.allclose(action[3:6], 0.0)  # orientation already where it started
    assert action[6] == -1.0  # open
    assert policy.phase == "approach"


def test_above_the_object_descends_then_closes_then_lifts() -> None:
    policy = _policy()
    obj = [0.05, -0.2, 0.038]
    action = policy.act(_obs(eef=[0.05, -0.2, 0.25], obj=obj))[0]
    assert policy.phase == "descend"
    assert action[2] == pytest.approx(-1.0) and action[6] == -1.0
    # At the grasp height: the gripper closes and the hand holds still for grasp_steps steps.
    closes = [policy.act(_obs(eef=obj, obj=obj))[0] for _ in range(policy.grasp_steps)]
    assert policy.phase == "grasp"
    assert all(a[6] == 1.0 and np.allclose(a[:3], 0.0) for a in closes)
    action = policy.act(_obs(eef=obj, obj=obj, gripper=0.03))[0]
    assert policy.phase == "lift"
    assert action[2] > 0.5 and action[6] == 1.0


def test_object_slipping_during_lift_starts_over() -> None:
    policy = _policy()
    obj = [0.05, -0.2, 0.038]
    policy.act(_obs(eef=[0.05, -0.2, 0.25], obj=obj))
    for _ in range(policy.grasp_steps + 1):
        policy.act(_obs(eef=obj, obj=obj))
    assert policy.phase == "lift"
    # The hand went up 10 cm, the object stayed on the table: the grasp failed.
    action = policy.act(_obs(eef=[0.05, -0.2, 0.138], obj=obj))[0]
    assert policy.phase == "retreat" and policy.retries == 1
    assert action[6] == -1.0
    # Back at transit height it lines up over the object again.
    policy.act(_obs(eef=[0.05, -0.2, 0.25], obj=obj))
    assert policy.phase in ("approach", "descend")


def test_carrying_moves_the_object_over_the_basket_then_releases() -> None:
    policy = _policy()
    obj = np.array([0.05, -0.2, 0.038])
    policy.act(_obs(eef=[0.05, -0.2, 0.25], obj=obj))
    for _ in range(policy.grasp_steps + 1):
        policy.act(_obs(eef=obj, obj=obj))
    in_hand = np.array([0.0, 0.0, -0.006])  # object centre just below the grip site
    eef = np.array([0.05, -0.2, 0.30])
    action = policy.act(_obs(eef=eef, obj=eef + in_hand))[0]
    assert policy.phase == "transport"
    assert action[1] > 0.9 and action[6] == 1.0  # toward the basket (+y), still closed
    basket = np.array([0.0, 0.25, -0.005])
    eef = np.array([basket[0], basket[1], 0.30]) - [in_hand[0], in_hand[1], 0]
    policy.act(_obs(eef=eef, obj=eef + in_hand, basket=basket))
    assert policy.phase == "lower"
    eef = np.array([eef[0], eef[1], basket[2] + policy.release_height + 0.006])
    action = policy.act(_obs(eef=eef, obj=eef + in_hand, basket=basket))[0]
    assert policy.phase == "release"
    assert action[6] == -1.0


def test_orientation_is_held_with_bounded_rotation_deltas() -> None:
    policy = _policy()
    obj = [0.05, -0.2, 0.038]
    policy.act(_obs(eef=[-0.15, 0.0, 0.25], obj=obj))  # remembers the starting orientation
    tilted = _obs(eef=[-0.15, 0.0, 0.25], obj=obj)
    angle = 0.3  # hand rotated 0.3 rad about world z
    rot_z = np.array([0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)])
    tilted["robot"]["robot0_eef_quat"] = _quat_mul(rot_z, DOWN)
    action = policy.act(tilted)[0]
    assert np.all(np.abs(action) <= 1.0)
    assert action[5] < 0 and abs(action[3]) < 1e-9 and abs(action[4]) < 1e-9  # turns back about z


def test_orientation_error_is_the_world_frame_axis_angle() -> None:
    assert np.allclose(orientation_error(DOWN, DOWN), 0.0)
    rot_x = np.array([np.sin(0.1), 0.0, 0.0, np.cos(0.1)])  # 0.2 rad about x
    assert np.allclose(orientation_error(_quat_mul(rot_x, DOWN), DOWN), [0.2, 0.0, 0.0])
    assert np.allclose(orientation_error(DOWN, -DOWN), 0.0)  # q and -q are the same rotation


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_bounded_and_deterministic_over_random_observations(seed: int) -> None:
    runs = []
    for _ in range(2):
        policy = _policy()
        local = np.random.default_rng(seed)
        actions = []
        for _ in range(200):
            eef = local.uniform([-0.3, -0.3, 0.0], [0.3, 0.3, 0.4])
            obj = local.uniform([-0.3, -0.3, 0.0], [0.3, 0.3, 0.3])
            obs = _obs(eef=eef, obj=obj)
            q = local.normal(size=4)
            obs["robot"]["robot0_eef_quat"] = q / np.linalg.norm(q)
            chunk = policy.act(obs)
            assert chunk.shape == (1, 7)
            assert np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1.0)
            assert chunk[0, 6] in (-1.0, 1.0)
            actions.append(chunk)
        runs.append(np.concatenate(actions))
    assert np.array_equal(runs[0], runs[1])


def test_reset_starts_a_fresh_episode() -> None:
    policy = _policy()
    obj = [0.05, -0.2, 0.038]
    policy.act(_obs(eef=[0.05, -0.2, 0.25], obj=obj))
    assert policy.phase == "descend"
    policy.reset(INSTRUCTION, seed=8, init_state=3)  # the engine passes init_state; ignored
    assert policy.phase == "approach" and policy.retries == 0


# ----- one real episode ------------------------------------------------------------------


@pytest.mark.sim
@pytest.mark.timeout(180)
def test_completes_libero_object_task_0_init_state_0(assets_installed: None) -> None:
    """One real episode through the engine's rollout under the openpi protocol (64 px)."""
    import yaml

    from envs.libero.env import LiberoEnv
    from evalharness.plan.build import build_plan
    from evalharness.config.protocol import load_protocol
    from evalharness.episode.rollout import RolloutSettings, run_episode

    conf = Path(__file__).resolve().parents[1] / "conf" / "protocol" / "openpi.yaml"
    protocol = load_protocol(yaml.safe_load(conf.read_text()))
    settings = RolloutSettings.from_protocol(protocol, "libero_object")
    (spec,) = build_plan("libero_object", [0], None, [0], protocol.seed, context="test")
    env = LiberoEnv("libero_object", 0, camera_size=64)
    try:
        outcome = run_episode(env, ScriptedPickPlace(), spec, settings)
        assert outcome.error_kind is None, outcome.error_message
        assert outcome.success, f"not in the basket after {outcome.steps} steps"
        assert 0 < outcome.steps < settings.max_steps
        assert env.success  # the env agrees: LIBERO's goal predicates hold
    finally:
        env.close()
