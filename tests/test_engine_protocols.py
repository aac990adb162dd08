"""The protocol presets (conf/protocol/*.yaml) against docs/reference/protocols.md.

The expected values below are transcribed by hand from the reference table, not read
from the presets, so an edit to a preset that drifts from the published protocol fails
here. Presets are loaded the way a run loads them: Hydra composes conf/, then
evalharness.config.protocol.load_protocol validates the group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from envs.libero.env import LIBERO_CAMERAS, STATE_DIM
from evalharness.errors import UserInputError
from evalharness.config.conf import CONF_DIR
from evalharness.config.protocol import Protocol, load_protocol
from evalharness.transforms.images import build_image_transform, resize_with_pad

SETTLE_ACTION = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]
SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")

# docs/reference/protocols.md, "openpi (Physical Intelligence examples/libero/main.py)"
OPENPI: dict[str, Any] = {
    "settle_steps": 10,
    "settle_action": SETTLE_ACTION,
    "max_steps": {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400},
    "replan_steps": 5,
    "render_size": 256,
    "image_transforms": ["rotate180", {"resize_with_pad": 224}],
    "cameras": ["base_0_rgb", "left_wrist_0_rgb"],  # right wrist is an all-zero image
    "state": True,
    "seed": 7,
    "video_fps": 10,
    "episodes_per_task": 50,  # examples/libero/main.py Args.num_trials_per_task
}
# docs/reference/protocols.md, "OpenVLA (run_libero_eval.py)": same max steps, settle
# steps and render size as openpi; one query per step, agentview only, no state, rotate +
# JPEG + resize 224 + center crop of 90% of the area (with TF's crop_and_resize sampling, docs/fidelity.md); env.seed(0); video at 30 fps.
OPENVLA: dict[str, Any] = {
    "settle_steps": 10,
    "settle_action": SETTLE_ACTION,
    "max_steps": {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400},
    "replan_steps": 1,
    "render_size": 256,
    "image_transforms": ["rotate180", "jpeg_roundtrip", {"resize": 224}, {"tf_center_crop": 0.9}],
    "cameras": ["base_0_rgb"],
    "state": False,
    "seed": 0,
    "video_fps": 30,
    "episodes_per_task": 50,  # run_libero_eval.py GenerateConfig.num_trials_per_task
}
# The lerobot preset follows LeRobot's own source (huggingface/lerobot at commit
# 7427f318), one citation per field, and docs/reference/protocols.md "LeRobot (lerobot-eval
# with the libero env)" for the step counts. Each value below was read there, not from the preset.
LEROBOT: dict[str, Any] = {
    # src/lerobot/envs/libero.py LiberoEnv.reset: num_steps_wait=10 no-op steps of
    # get_libero_dummy_action() = [0, 0, 0, 0, 0, 0, -1] before the policy acts.
    "settle_steps": 10,
    "settle_action": SETTLE_ACTION,
    # src/lerobot/envs/libero.py TASK_SUITE_MAX_STEPS; docs/reference/protocols.md: spatial 280
    # (not 220).
    "max_steps": {"libero_spatial": 280, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400},
    # docs/source/libero.mdx, "Reproducing published results": --policy.n_action_steps=10.
    "replan_steps": 10,
    # src/lerobot/envs/configs.py LiberoEnv: observation_height = observation_width = 360.
    "render_size": 360,
    # src/lerobot/processor/env_processor.py LiberoProcessorStep: torch.flip(img, dims=[2, 3])
    # on (B, C, H, W), i.e. H and W both flipped, and no resize.
    "image_transforms": ["rotate180"],
    # src/lerobot/envs/configs.py LiberoEnv.camera_name: "agentview_image,robot0_eye_in_hand_image".
    "cameras": ["base_0_rgb", "left_wrist_0_rgb"],
    # LiberoProcessorStep: state = eef pos (3) + axis-angle of eef quat (3) + gripper qpos (2).
    "state": True,
    # src/lerobot/configs/eval.py EvalPipelineConfig.seed = 1000 (lerobot-eval's --seed).
    "seed": 1000,
    # src/lerobot/scripts/lerobot_eval.py writes videos at env.metadata["render_fps"];
    # src/lerobot/envs/libero.py LiberoEnv.metadata["render_fps"] = 80.
    "video_fps": 80,
    # docs/source/libero.mdx, "Reproducing published results": 10 episodes per task (init states 0-9).
    "episodes_per_task": 10,
}
# vla-eval's LIBERO benchmark (vla_eval/benchmarks/libero/benchmark.py, vla-eval 0.8.0);
# docs/reference/protocols.md "vla-eval". tests/test_vla_eval_libero.py also checks these
# against vla-eval's own constants and its observations byte for byte.
VLA_EVAL: dict[str, Any] = {
    # LIBEROBenchmark(num_steps_wait=10) steps LIBERO_DUMMY_ACTION = [0.0] * 6 + [-1.0].
    "settle_steps": 10,
    "settle_action": SETTLE_ACTION,
    # MAX_STEP_MAPPING
    "max_steps": {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400},
    # SyncEpisodeRunner: conn.act(obs) -> one action -> benchmark.apply_action, every step.
    "replan_steps": 1,
    # LIBERO_ENV_RESOLUTION = 256; preprocess_libero_image flips [::-1, ::-1].
    "render_size": 256,
    "image_transforms": ["rotate180", {"resize_with_pad": 256}],
    # make_obs: "agentview", and "wrist" with send_wrist_image.
    "cameras": ["base_0_rgb", "left_wrist_0_rgb"],
    # make_obs: "states" with send_state.
    "state": True,
    # LIBEROBenchmark(seed=7)
    "seed": 7,
    # benchmarks/video.py: fps=20
    "video_fps": 20,
    # LIBEROBenchmark.get_metadata: max_episodes_per_task = 50
    "episodes_per_task": 50,
}
EXPECTED = {"openpi": OPENPI, "openvla": OPENVLA, "lerobot": LEROBOT, "vla_eval": VLA_EVAL}


def _compose(overrides: list[str]) -> dict[str, Any]:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    container = OmegaConf.to_container(cfg.protocol, resolve=True)
    assert isinstance(container, dict)
    return container


def _load(name: str, *overrides: str) -> Protocol:
    return load_protocol(_compose([f"protocol={name}", *overrides]))


def test_every_preset_is_checked_here() -> None:
    assert sorted(p.stem for p in (CONF_DIR / "protocol").glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_matches_the_reference(name: str) -> None:
    protocol = _load(name)
    assert protocol.name == name
    dumped = protocol.model_dump()
    for key, value in EXPECTED[name].items():
        assert dumped[key] == value, f"{name}.{key}: {dumped[key]!r} != reference {value!r}"
    assert set(protocol.max_steps) == set(SUITES)


def test_the_default_protocol_is_openpi() -> None:
    assert load_protocol(_compose([])).name == "openpi"


def test_openpi_preprocessing_turns_a_256_render_into_the_rotated_224_image() -> None:
    protocol = _load("openpi")
    image = np.random.default_rng(0).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    out = build_image_transform(protocol.image_transforms)(image)
    assert out.shape == (224, 224, 3)
    np.testing.assert_array_equal(out, resize_with_pad(224)(np.rot90(image, 2)))


def test_every_field_of_every_preset_is_pinned() -> None:
    """A field added to Protocol must get a reference value here, for each preset."""
    fields = set(Protocol.model_fields) - {"name"}
    for name, expected in EXPECTED.items():
        assert set(expected) == fields, f"{name}: not pinned: {sorted(fields - set(expected))}"


def test_lerobot_preprocessing_flips_both_axes_at_360_px() -> None:
    # LiberoProcessorStep flips H and W of the raw LIBERO frame and does not resize it.
    protocol = _load("lerobot")
    image = np.random.default_rng(2).integers(0, 256, size=(360, 360, 3), dtype=np.uint8)
    out = build_image_transform(protocol.image_transforms)(image)
    np.testing.assert_array_equal(out, image[::-1, ::-1])


def test_lerobot_cameras_are_agentview_and_the_wrist_camera() -> None:
    # LeRobot's camera_name default: agentview_image (-> image), robot0_eye_in_hand_image (-> image2).
    protocol = _load("lerobot")
    assert [LIBERO_CAMERAS[c] for c in protocol.cameras] == ["agentview", "robot0_eye_in_hand"]
    assert STATE_DIM == 8  # LiberoProcessorStep's observation.state shape (8,)


def test_openvla_preprocessing_gives_224() -> None:
    protocol = _load("openvla")
    image = np.random.default_rng(1).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    assert build_image_transform(protocol.image_transforms)(image).shape == (224, 224, 3)


def test_command_line_overrides_reach_the_protocol() -> None:
    protocol = _load("openpi", "protocol.replan_steps=8", "protocol.render_size=128", "protocol.max_steps.libero_goal=50")
    assert (protocol.replan_steps, protocol.render_size, protocol.max_steps["libero_goal"]) == (8, 128, 50)
    assert protocol.max_steps["libero_spatial"] == 220


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("protocol.replan_steps=0", "protocol.replan_steps=0"),
        ("protocol.settle_steps=-1", "protocol.settle_steps=-1"),
        ("protocol.render_size=4", "protocol.render_size=4"),
        ("protocol.seed=-1", "protocol.seed=-1"),
        ("protocol.video_fps=0", "protocol.video_fps=0"),
        ("protocol.cameras=[top]", "protocol.cameras=['top']"),
        ("protocol.image_transforms=[rotate90]", "protocol.image_transforms=['rotate90']"),
        ("protocol.settle_action=[0,0,-1]", "protocol.settle_action=[0, 0, -1]"),
        ("protocol.max_steps.libero_goal=0", "protocol.max_steps"),
        ("~protocol.max_steps.libero_90", "protocol.max_steps"),
        ("+protocol.temperature=0.5", "protocol.temperature"),
    ],
)
def test_a_bad_protocol_value_is_one_line_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(UserInputError) as info:
        load_protocol(_compose(["protocol=openpi", override]))
    message = str(info.value)
    assert "\n" not in message and message.startswith(key), message


def _plan(*overrides: str) -> list:
    from evalharness.engine.evaluate import prepare

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, "policy=zero", "run_name=protocol-plan"])
    return prepare(cfg).plan


def test_lerobot_runs_its_published_ten_episodes_per_task_under_the_same_keys() -> None:
    """issue 25 item 11: protocol=lerobot plans LeRobot's 10 episodes per task (init states 0-9)
    by default; a suite override still wins, and the count is not part of an episode's key,
    so the 10 are exactly the first 10 of a 50-episode run."""
    lerobot = _plan("suite=libero_goal", "protocol=lerobot")
    assert len(lerobot) == 10 * 10
    assert sorted({spec.init_state for spec in lerobot}) == list(range(10))
    everything = _plan("suite=libero_goal", "protocol=lerobot", "suite.episodes_per_task=50")
    assert len(everything) == 10 * 50
    assert {spec.key for spec in lerobot} < {spec.key for spec in everything}
    assert len(_plan("suite=libero_goal", "protocol=lerobot", "suite.episodes_per_task=3")) == 10 * 3
    assert len(_plan("suite=libero_goal", "protocol=openpi")) == 10 * 50
    assert len(_plan("suite=libero_goal", "protocol=lerobot", "protocol.episodes_per_task=4")) == 10 * 4
