"""``protocol=vla_eval`` + ``policy=vla_eval`` send what vla-eval's own LIBERO benchmark sends.

For the same simulator states, the observation payload this harness builds (rendered by
its env, through the protocol's image transforms, shaped by
``transports/vla_eval/libero.py``) is compared, as msgpack bytes, with what
``vla_eval.benchmarks.libero.benchmark.LIBEROBenchmark.make_obs`` builds from robosuite's
own observation dict (robosuite's own step, camera observables on, as vla-eval runs it): images,
``states`` (with and without ``quat_no_antipodal``), ``controller_states`` and every key
name. The preset's numbers are checked against vla-eval's own constants, and the gripper
rule against its ``step``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import msgpack
import numpy as np
import pytest
import yaml

from vla_eval.benchmarks.libero import benchmark as vla_libero
from vla_eval.protocol.numpy_codec import encode_ndarray

from evalharness.config.protocol import load_protocol
from evalharness.episode.rollout import RolloutSettings, _observation
from evalharness.policies.base import Policy
from evalharness.transports.vla_eval.libero import binarize_gripper, observation_payload
from evalharness.transports.vla_eval.wire import pack_value

ROOT = Path(__file__).resolve().parents[1]
SUITE, TASK = "libero_spatial", 0
PROTOCOL = load_protocol(yaml.safe_load((ROOT / "conf/protocol/vla_eval.yaml").read_text()))


def test_preset_numbers_are_vla_evals_own() -> None:
    defaults = {k: p.default for k, p in inspect.signature(vla_libero.LIBEROBenchmark.__init__).parameters.items()}
    assert PROTOCOL.settle_steps == defaults["num_steps_wait"] == 10
    assert PROTOCOL.settle_action == list(vla_libero.LIBERO_DUMMY_ACTION)
    assert PROTOCOL.max_steps == vla_libero.MAX_STEP_MAPPING
    assert PROTOCOL.seed == defaults["seed"] == 7
    assert PROTOCOL.render_size == vla_libero.LIBERO_ENV_RESOLUTION == 256
    assert PROTOCOL.replan_steps == 1  # SyncEpisodeRunner: one observation, one action, every step
    assert PROTOCOL.state and PROTOCOL.cameras == ["base_0_rgb", "left_wrist_0_rgb"]


def test_gripper_rule_is_vla_evals_step() -> None:
    """LIBEROBenchmark.step executes ``-1 if g < 0 else 1`` for the gripper; so does the client."""
    chunk = np.array([[0.1, -0.2, 0.3, 0.0, 0.0, 0.0, g] for g in (-0.5, -0.0, 0.0, 1e-9, 0.7)], dtype=np.float32)
    ours = binarize_gripper(chunk)
    for row, action in zip(ours, chunk):
        raw = action.tolist()
        theirs = raw[:-1] + [-1.0 if raw[-1] < 0 else 1.0]
        assert row.tolist() == theirs


class _Observer(Policy):
    cameras = ("base_0_rgb", "left_wrist_0_rgb")

    def act(self, observation):  # pragma: no cover - never queried
        raise AssertionError


@pytest.fixture(scope="module")
def env():
    """robosuite's own step (fast_physics off), with its camera observables on: every step
    returns the observation dict vla-eval's benchmark receives from ``env.step``."""
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(SUITE, TASK, camera_size=256, fast_physics=False)
    for name in ("agentview_image", "robot0_eye_in_hand_image"):
        env._env.env.modify_observable(name, "enabled", True)
    yield env
    env.close()


def _theirs(env, quat_no_antipodal: bool) -> dict:
    """vla-eval's make_obs on robosuite's own observation dict: what set_init_state or the
    last step returned, images included (sampled within the step by robosuite's camera
    observables)."""
    bench = vla_libero.LIBEROBenchmark(suite=SUITE, send_wrist_image=True, send_state=True,
                                       quat_no_antipodal=quat_no_antipodal)
    bench._env = env._env  # the same OffScreenRenderEnv: its controller gives controller_states
    raw = dict(env._raw_obs)  # what robosuite's set_init_state / step returned
    assert raw["agentview_image"].shape == (256, 256, 3)
    return bench.make_obs(raw, {"name": env.task.instruction})


def _ours(env, quat_no_antipodal: bool) -> dict:
    settings = RolloutSettings.from_protocol(PROTOCOL, SUITE)
    blank = settings.image_transform(np.zeros((env.height, env.width, 3), dtype=np.uint8))
    obs, _ = _observation(env, _Observer(), settings, settings.cameras, blank)
    return observation_payload(obs, send_wrist_image=True, send_state=True, quat_no_antipodal=quat_no_antipodal)


@pytest.mark.sim
@pytest.mark.usefixtures("assets_installed")
def test_observation_is_byte_identical_to_vla_evals_libero(env) -> None:
    """After the reset, after the settle steps, and after random steps (the arm moving, where
    a frame rendered at the step's end would differ from robosuite's sampled one)."""
    settings = RolloutSettings.from_protocol(PROTOCOL, SUITE)
    env.reset_to(0, layout_seed=PROTOCOL.seed)
    rng = np.random.default_rng(0)
    for moment in ("reset", "settled", "moving 1", "moving 2"):
        if moment == "settled":
            for _ in range(settings.settle_steps):
                env.step_physics(settings.settle_action)
        elif moment.startswith("moving"):
            for _ in range(8):
                env.step_physics(np.concatenate([rng.uniform(-0.6, 0.6, 6), [1.0]]))
        for quat_no_antipodal in (False, True):  # the conventions differ only when w < 0
            ours, theirs = _ours(env, quat_no_antipodal), _theirs(env, quat_no_antipodal)
            assert list(ours) == list(theirs) and list(ours["images"]) == list(theirs["images"]) == ["agentview", "wrist"]
            for key in ("states", "controller_states"):
                assert ours[key].dtype == theirs[key].dtype, key
                assert ours[key].tobytes() == theirs[key].tobytes(), (key, moment)
            for cam in ("agentview", "wrist"):
                np.testing.assert_array_equal(ours["images"][cam], theirs["images"][cam], err_msg=f"{cam} {moment}")
            assert pack_value(ours) == msgpack.packb(theirs, default=encode_ndarray, use_bin_type=True)
