"""Perturbations in the real LIBERO simulator: each dimension changes what it claims to.

- visual dimensions (camera, light, image, texture, color) leave a privileged-state
  policy's actions and outcome identical to the clean control on three suites, while the
  agentview image differs (and the wrist image does not, under camera and default image);
- physical dimensions change the start: robot_init by the requested joint norm, position
  by the requested distance without contacts, scale resizes the target (undone at the next
  reset); runtime_move fires once at its trigger;
- an impossible placement ends as invalid_perturbation after the bounded resamples;
- the parameters an episode record holds replay the episode exactly;
- a language perturbation reaches the policy (reset and every observation).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from envs.libero.env import LiberoEnv
from envs.libero.perturb.scene import object_positions, target_object
from evalharness.config.conf import CONF_DIR
from evalharness.episode.perturbed_start import active_perturbation
from evalharness.plan.perturbed import perturb_plan, perturbation_json
from evalharness.perturb.config import load_perturb_config
from evalharness.plan.build import build_plan
from evalharness.policies.base import Policy
from evalharness.policies.scripted import ScriptedPickPlace
from evalharness.config.protocol import load_protocol
from evalharness.episode.rollout import RolloutSettings, run_episode

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

SIZE = 48
STEPS = 6
TARGETS = {
    "camera": "envs.libero.perturb.camera.CameraOrbit",
    "light": "envs.libero.perturb.light.Lighting",
    "image": "envs.libero.perturb.image.ImageCorruption",
    "texture": "envs.libero.perturb.color.Retexture",
    "color": "envs.libero.perturb.color.Recolor",
    "robot_init": "envs.libero.perturb.robot_init.RobotInit",
    "position": "envs.libero.perturb.position.ShiftObject",
    "runtime_move": "envs.libero.perturb.runtime_move.RuntimeMove",
    "language": "envs.libero.perturb.language.Paraphrase",
    "scale": "envs.libero.perturb.scale.ScaleObject",
}


class ReachPolicy(Policy):
    """A privileged-state policy for any suite: drive the hand above the task's target.

    The scripted policy only parses LIBERO-Object instructions; this one needs no
    instruction, so visual invariance can be checked on Spatial and Goal scenes too.
    """

    name = "reach"
    needs_privileged_state = True

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[dict[str, Any]] = []

    def identity(self) -> dict[str, Any]:
        return {"name": self.name}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self.seen = [{"reset": instruction}]

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        self.seen.append({"images": {k: v.copy() for k, v in obs["images"].items()}, "instruction": obs["instruction"]})
        eef = np.asarray(obs["robot"]["robot0_eef_pos"])
        goal = np.asarray(obs["privileged"][f"{self.target}_pos"]) + [0.0, 0.0, 0.12]
        action = np.zeros(7)
        action[:3] = np.clip(8.0 * (goal - eef), -1, 1)
        action[6] = -1.0
        return action[None]


class RecordingScripted(ScriptedPickPlace):
    cameras = None  # render the protocol's cameras (the scripted policy itself needs none)

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        super().reset(instruction, seed=seed, init_state=init_state, attempt=attempt)
        self.seen = [{"reset": instruction}]

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        self.seen.append({"images": {k: v.copy() for k, v in obs["images"].items()}, "instruction": obs["instruction"]})
        return super().act(obs)


def _settings(max_steps: int = STEPS) -> RolloutSettings:
    protocol = load_protocol(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "protocol" / "openpi.yaml"), resolve=True))
    return RolloutSettings.from_protocol(protocol, "libero_object", max_steps)


def _specs(suite: str, task: int, perturb: dict[str, Any], init_state: int = 0) -> tuple[Any, Any]:
    """(perturbed spec, clean spec) for one episode, planned as the harness plans them."""
    node = {"level": perturb.pop("level", 3), "max_resamples": perturb.pop("max_resamples", 5), **perturb}
    for name, cfg in node.items():
        if isinstance(cfg, dict):
            cfg.setdefault("_target_", TARGETS[name])
    plan = build_plan(suite, [task], None, [init_state], 7, "ctx")
    perturbed, clean = perturb_plan(plan, load_perturb_config(node))
    assert perturbed.control_key == clean.key and clean.perturbation is None
    return perturbed, clean


@pytest.fixture(scope="module")
def envs():
    made: dict[tuple[str, int], LiberoEnv] = {}

    def get(suite: str, task: int = 0) -> LiberoEnv:
        if (suite, task) not in made:
            for env in made.values():
                env.close()
            made.clear()
            made[(suite, task)] = LiberoEnv(suite, task, camera_size=SIZE)
        return made[(suite, task)]

    yield get
    for env in made.values():
        env.close()


VISUAL = {
    "camera": {"camera": {}},
    "light": {"light": {"modes": ["dark"]}, "level": 5},
    "image": {"image": {"kinds": ["gaussian_noise"]}},
    "texture": {"texture": {}},
    "color": {"color": {}},
}


@pytest.mark.parametrize("suite", ["libero_object", "libero_spatial", "libero_goal"])
def test_visual_perturbations_change_only_what_the_policy_sees(envs, suite) -> None:
    env = envs(suite)
    env.reset_to(0)
    target = sorted(object_positions(env))[0]  # any movable object: the policy only needs one to reach
    make = (lambda: RecordingScripted()) if suite == "libero_object" else (lambda: ReachPolicy(target))
    clean_policy = make()
    _, clean = _specs(suite, 0, {"camera": {}})
    base = run_episode(env, clean_policy, clean, _settings())
    assert base.error_kind is None and base.steps > 0
    for dim, node in VISUAL.items():
        spec, _ = _specs(suite, 0, json.loads(json.dumps(node)))
        policy = make()
        out = run_episode(env, policy, spec, _settings())
        assert out.error_kind is None, (dim, out.error_message)
        assert out.action_fingerprint == base.action_fingerprint, f"{dim} changed the actions on {suite}"
        assert (out.success, out.steps) == (base.success, base.steps)
        first, first_clean = policy.seen[1]["images"], clean_policy.seen[1]["images"]
        assert not np.array_equal(first["base_0_rgb"], first_clean["base_0_rgb"]), f"{dim}: agentview unchanged"
        if dim in ("camera", "image"):
            assert np.array_equal(first["left_wrist_0_rgb"], first_clean["left_wrist_0_rgb"]), f"{dim}: wrist changed"
        assert out.perturbation["dimensions"][dim]["level"] == node.get("level", 3)
    # The model edits are undone at the next reset: a clean episode is clean again.
    again = make()
    assert run_episode(env, again, clean, _settings()).action_fingerprint == base.action_fingerprint
    assert np.array_equal(again.seen[1]["images"]["base_0_rgb"], clean_policy.seen[1]["images"]["base_0_rgb"])


def _start(env: LiberoEnv, spec, settle: int = 10) -> Any:
    settings = _settings()
    active = active_perturbation(spec)
    env.reset_to(spec.init_state, layout_seed=spec.seed, perturbation=active)
    for _ in range(settle):
        env.step_physics(settings.settle_action)
    return active


@pytest.mark.parametrize("level", [1, 5])
def test_robot_init_starts_the_arm_elsewhere_by_the_requested_norm(envs, level) -> None:
    env = envs("libero_spatial")
    spec, clean = _specs("libero_spatial", 0, {"robot_init": {}, "level": level})
    joints = env._robot._ref_joint_pos_indexes
    _start(env, clean)
    q_clean = np.array(env._sim.data.qpos[joints])
    active = _start(env, spec)
    assert not active.problems(env)
    q = np.array(env._sim.data.qpos[joints])  # the first policy step starts here
    assert np.linalg.norm(q - q_clean) == pytest.approx(0.1 * level, abs=0.02 + 0.02 * level)
    offset = np.asarray(active.params["robot_init"]["offset"])
    assert np.linalg.norm(offset) == pytest.approx(0.1 * level)
    assert np.abs(offset).max() <= 0.47


def test_position_moves_the_target_by_the_requested_distance_without_contacts(envs) -> None:
    env = envs("libero_spatial")
    spec, clean = _specs("libero_spatial", 0, {"position": {}, "level": 2})
    env.reset_to(0, layout_seed=7)
    name = target_object(env)
    before = object_positions(env)[name]
    active = active_perturbation(spec)
    env.reset_to(0, layout_seed=7, perturbation=active)
    moved = object_positions(env)[name]
    assert np.linalg.norm(moved[:2] - before[:2]) == pytest.approx(0.08, abs=1e-6)
    assert active.new_contacts == []
    for _ in range(10):
        env.step_physics(_settings().settle_action)
    assert active.problems(env) == []
    assert active.record()["applied"]["position"]["object"] == name


def test_runtime_move_happens_once_at_the_trigger(envs) -> None:
    env = envs("libero_spatial")
    spec, _ = _specs("libero_spatial", 0, {"runtime_move": {"fallback_step": 4, "trigger_m": 0.0}, "level": 2})
    target = None
    env.reset_to(0)
    target = target_object(env)
    positions = []

    class Watch(ReachPolicy):
        def act(self, obs):
            positions.append(np.asarray(obs["privileged"][f"{self.target}_pos"]).copy())
            return np.zeros((1, 7))

    out = run_episode(env, Watch(target), spec, _settings(8))
    assert out.error_kind is None
    runtime = out.perturbation["runtime"]["runtime_move"]
    assert runtime["step"] == 4 and runtime["trigger"] == "fallback"
    jumps = [float(np.linalg.norm(b[:2] - a[:2])) for a, b in zip(positions, positions[1:])]
    assert [i for i, d in enumerate(jumps) if d > 0.02] == [3]  # moved once, right after step 4
    assert jumps[3] == pytest.approx(0.06, abs=0.01)


def test_impossible_placement_ends_as_invalid_perturbation_not_failure(envs) -> None:
    env = envs("libero_spatial")
    spec, _ = _specs("libero_spatial", 0, {"position": {"distance": 5.0}, "max_resamples": 2})
    out = run_episode(env, ReachPolicy("plate_1"), spec, _settings())
    assert out.error_kind == "invalid_perturbation" and out.success is False and out.steps == 0
    assert "3 candidate(s)" in out.error_message and "no collision-free spot" in out.error_message


def test_recorded_parameters_replay_the_episode_exactly(envs) -> None:
    env = envs("libero_spatial")
    spec, _ = _specs("libero_spatial", 0, {"camera": {}, "robot_init": {}, "image": {}, "level": 4})
    env.reset_to(0)
    target = target_object(env)
    first_policy = ReachPolicy(target)
    first = run_episode(env, first_policy, spec, _settings())
    record = first.perturbation
    params = {name: d["params"] for name, d in record["dimensions"].items()}
    replay_spec = dataclasses.replace(spec, perturbation=perturbation_json(record["parts"], [params]))
    policy = ReachPolicy(target)
    again = run_episode(env, policy, replay_spec, _settings())
    assert again.action_fingerprint == first.action_fingerprint and again.steps == first.steps
    assert again.perturbation["dimensions"] == record["dimensions"]
    for a, b in zip(first_policy.seen[1:], policy.seen[1:]):
        assert all(np.array_equal(a["images"][c], b["images"][c]) for c in a["images"])


def test_the_policy_receives_the_paraphrased_instruction(envs) -> None:
    env = envs("libero_object")
    spec, clean = _specs("libero_object", 0, {"language": {}})
    policy = RecordingScripted()
    out = run_episode(env, policy, spec, _settings(3))
    text = out.perturbation["dimensions"]["language"]["params"]["instruction"]
    assert text != clean.instruction and spec.instruction == text
    assert policy.seen[0]["reset"] == text
    assert {s["instruction"] for s in policy.seen[1:]} == {text}
    assert out.error_kind is None  # the scripted policy still finds "alphabet soup" in it


def test_scale_resizes_the_target_and_is_undone_at_the_next_reset(envs) -> None:
    from envs.libero.perturb.scale import _lowest_point
    from envs.libero.perturb.scene import body_geoms

    env = envs("libero_spatial")
    _, clean = _specs("libero_spatial", 0, {"scale": {}})
    spec, _ = _specs("libero_spatial", 0, {"scale": {"factor": 1.4}})
    env.reset_to(0, layout_seed=7)
    model = env._sim.model
    name = target_object(env)
    boxes = [g for g in body_geoms(env, name, visual=False) if model.geom_type[g] == 6]
    [mesh_geom] = [g for g in body_geoms(env, name, visual=True) if model.geom_type[g] == 7]
    mesh = int(model.geom_dataid[mesh_geom])
    rows = slice(int(model.mesh_vertadr[mesh]), int(model.mesh_vertadr[mesh] + model.mesh_vertnum[mesh]))
    verts, sizes, low = np.array(model.mesh_vert[rows]), np.array(model.geom_size[boxes]), _lowest_point(env, boxes)
    image = env.render_images(("base_0_rgb",))["base_0_rgb"]

    active = active_perturbation(spec)
    env.reset_to(0, layout_seed=7, perturbation=active)
    assert np.allclose(model.mesh_vert[rows], 1.4 * verts) and np.allclose(model.geom_size[boxes], 1.4 * sizes)
    assert _lowest_point(env, boxes) == pytest.approx(low, abs=1e-9)  # still standing where it stood
    assert active.record()["applied"]["scale"]["factor"] == 1.4
    assert not np.array_equal(env.render_images(("base_0_rgb",))["base_0_rgb"], image)

    env.reset_to(0, layout_seed=7)
    assert np.array_equal(model.mesh_vert[rows], verts) and np.array_equal(model.geom_size[boxes], sizes)
    assert np.array_equal(env.render_images(("base_0_rgb",))["base_0_rgb"], image)
