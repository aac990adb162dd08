"""Engine pieces that need no simulator: the episode loop against a fake env, chunk
validation, secret redaction, work grouping, the video recorder and the faulty policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalharness.errors import InvalidActionError, UserInputError
from evalharness.config.conf import check_group_choices
from evalharness.config.redaction import REDACTED, redact
from evalharness.plan.build import build_plan
from evalharness.policies.base import Policy
from evalharness.policies.baselines import RandomPolicy, ZeroPolicy
from evalharness.policies.faulty import FaultyPolicy
from evalharness.episode.video_selection import EpisodeRecorder, remove_scratch
from evalharness.episode.rollout import EpisodeOutcome, RolloutSettings, run_episode
from evalharness.policies.chunks import validate_chunk
from evalharness.engine.runner import LocalRunner, group_items
from evalharness.transforms.images import build_image_transform
from evalharness.engine.worker import WorkItem

SETTLE = np.array([0, 0, 0, 0, 0, 0, -1.0])


# ----- validate_chunk ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk", "shape"),
    [
        (np.zeros(7), (1, 7)),
        (np.zeros((1, 7)), (1, 7)),
        (np.zeros((10, 7), dtype=np.float32), (10, 7)),
        ([[0.1] * 7, [0.2] * 7], (2, 7)),
        (np.zeros((7, 3)).T, (3, 7)),  # non-contiguous input
    ],
)
def test_validate_chunk_accepts_h_by_7(chunk, shape) -> None:
    out = validate_chunk(chunk)
    assert out.shape == shape and out.dtype == np.float64


@pytest.mark.parametrize(
    "chunk",
    [
        np.zeros((1, 6)),
        np.zeros(6),
        np.zeros(8),
        np.zeros((0, 7)),
        np.zeros((2, 7, 1)),
        np.zeros((1, 1, 7)),
        np.float64(0.0),
        None,
        "up",
        [[0.0] * 7, [0.0] * 6],  # ragged
        {"action": [0.0] * 7},
    ],
)
def test_validate_chunk_rejects_bad_shapes_and_types(chunk) -> None:
    with pytest.raises(InvalidActionError) as info:
        validate_chunk(chunk)
    assert info.value.kind == "invalid_action"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validate_chunk_rejects_non_finite_values_naming_where(bad: float) -> None:
    chunk = np.zeros((3, 7))
    chunk[2, 4] = bad
    with pytest.raises(InvalidActionError) as info:
        validate_chunk(chunk)
    assert "step 2" in str(info.value) and "dim 4" in str(info.value)


# ----- the episode loop against a fake env ----------------------------------------------------------


class FakeEnv:
    """Stands in for LiberoEnv. Every rendered image encodes the number of physics steps
    taken so far (settle steps included), so a frame tells which state it shows; raw images
    carry a marker in their first row, as LIBERO's upside-down frames would at the bottom."""

    instruction = "put the fake thing in the fake basket"

    def __init__(self, size: int = 6, succeed_after: int | None = None, fail: str | None = None, fail_after: int = 0) -> None:
        self.size = size
        self.height = self.width = size  # as LiberoEnv exposes its camera size
        self.succeed_after = succeed_after  # total physics steps after which success holds
        self.fail = fail  # "reset" | "step" | "render" | "privileged"
        self.fail_after = fail_after
        self.physics_steps = 0
        self.actions: list[np.ndarray] = []
        self.rendered: list[str] = []

    def reset_to(self, init_state: int, layout_seed: int = 0) -> None:
        if self.fail == "reset":
            raise RuntimeError("reset exploded")
        self.physics_steps = 0
        self.actions = []

    def step_physics(self, action: np.ndarray) -> bool:
        if self.fail == "step" and self.physics_steps >= self.fail_after:
            raise RuntimeError("mujoco went unstable")
        self.actions.append(np.array(action, dtype=np.float64))
        self.physics_steps += 1
        return self.succeed_after is not None and self.physics_steps >= self.succeed_after

    def _raw(self, camera: str) -> np.ndarray:
        if self.fail == "render" and self.physics_steps >= self.fail_after:
            raise RuntimeError("EGL context lost")
        self.rendered.append(camera)
        image = np.full((self.size, self.size, 3), self.physics_steps % 256, dtype=np.uint8)
        image[0, :, 0] = 255  # LIBERO's raw frames are upside down: the marker is the bottom row
        if camera == "robot0_eye_in_hand":
            image[..., 2] = 7
        return image

    def render_images(self, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        out = {}
        for cam, libero_cam in (("base_0_rgb", "agentview"), ("left_wrist_0_rgb", "robot0_eye_in_hand")):
            out[cam] = self._raw(libero_cam) if cam in cameras else np.zeros((self.size, self.size, 3), np.uint8)
        out["right_wrist_0_rgb"] = np.zeros((self.size, self.size, 3), np.uint8)
        return out

    def render_upright(self) -> np.ndarray:
        return np.ascontiguousarray(self._raw("agentview")[::-1])

    def proprio_state(self) -> np.ndarray:
        return np.full(8, float(self.physics_steps), dtype=np.float32)

    def robot_state(self) -> dict[str, np.ndarray]:
        return {"robot0_eef_pos": np.zeros(3), "robot0_eef_quat": np.array([1.0, 0, 0, 0]), "robot0_gripper_qpos": np.zeros(2)}

    def privileged_state(self) -> dict[str, np.ndarray]:
        if self.fail == "privileged":
            raise KeyError("world_pose_in_gripper")
        return {"cube_1_pos": np.zeros(3)}


class ChunkPolicy(Policy):
    """Returns (horizon, 7) chunks; action value = query number + step / 100 in every dim,
    so the executed actions tell which query and which row they came from."""

    name = "chunk"

    def __init__(self, horizon: int, fail: str | None = None, fail_at_query: int = 1, privileged: bool = False) -> None:
        self.horizon = horizon
        self.fail = fail
        self.fail_at_query = fail_at_query
        self.needs_privileged_state = privileged
        self.queries = 0
        self.observations: list[dict[str, Any]] = []
        self.resets: list[dict[str, Any]] = []

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        if self.fail == "reset":
            raise ValueError("no such object in the instruction")
        self.resets.append({"instruction": instruction, "seed": seed, "init_state": init_state})
        self.queries = 0

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        self.queries += 1
        self.observations.append(observation)
        if self.fail and self.queries >= self.fail_at_query:
            if self.fail == "raise":
                raise RuntimeError("CUDA out of memory")
            if self.fail == "nan":
                return np.full((self.horizon, 7), np.nan)
            if self.fail == "shape":
                return np.zeros((self.horizon, 6))
        return np.array([[(self.queries + row / 100) / 100] * 7 for row in range(self.horizon)])


SPEC = build_plan("libero_object", [0], None, [3], 7, "ctx")[0]


def _settings(max_steps: int = 7, replan_steps: int = 3, settle_steps: int = 2, cameras=("base_0_rgb", "left_wrist_0_rgb"),
              give_state: bool = True, transforms: list | None = None) -> RolloutSettings:
    return RolloutSettings(
        settle_steps=settle_steps, settle_action=SETTLE, max_steps=max_steps, replan_steps=replan_steps,
        cameras=tuple(cameras), give_state=give_state, image_transform=build_image_transform(transforms or []),
    )


def _run(env: FakeEnv, policy: Policy, settings: RolloutSettings, film: bool = True) -> tuple[EpisodeOutcome, list[np.ndarray]]:
    frames: list[np.ndarray] = []
    outcome = run_episode(env, policy, SPEC, settings, frames.append if film else None)
    return outcome, frames


def test_settle_steps_use_the_settle_action_and_are_not_counted() -> None:
    env, policy = FakeEnv(), ChunkPolicy(1)
    outcome, _ = _run(env, policy, _settings(max_steps=4, settle_steps=3))
    assert outcome.steps == 4 and env.physics_steps == 3 + 4
    for action in env.actions[:3]:
        np.testing.assert_array_equal(action, SETTLE)
    # The policy starts after settling: its first observation shows 3 physics steps.
    assert policy.observations[0]["state"][0] == 3


def test_executes_the_first_replan_steps_of_each_chunk_then_queries_again() -> None:
    env, policy = FakeEnv(), ChunkPolicy(horizon=4)
    outcome, _ = _run(env, policy, _settings(max_steps=7, replan_steps=3))
    assert outcome.success is False and outcome.error_kind is None and outcome.steps == 7
    executed = [round(a[0] * 100, 2) for a in env.actions[2:]]  # after the 2 settle steps
    # query 1 rows 0-2, query 2 rows 0-2, query 3 row 0 (cut by max_steps)
    assert executed == [1.0, 1.01, 1.02, 2.0, 2.01, 2.02, 3.0]
    assert policy.queries == 3


def test_a_chunk_shorter_than_replan_steps_is_executed_whole() -> None:
    env, policy = FakeEnv(), ChunkPolicy(horizon=2)
    outcome, _ = _run(env, policy, _settings(max_steps=5, replan_steps=5))
    assert outcome.steps == 5 and policy.queries == 3
    assert [round(a[0] * 100, 2) for a in env.actions[2:]] == [1.0, 1.01, 2.0, 2.01, 3.0]


@pytest.mark.parametrize(("horizon", "replan", "max_steps"), [(1, 5, 6), (4, 3, 7), (10, 5, 12), (3, 3, 3)])
def test_a_filmed_episode_has_steps_plus_one_upright_frames_one_per_state(horizon: int, replan: int, max_steps: int) -> None:
    env = FakeEnv()
    outcome, frames = _run(env, ChunkPolicy(horizon), _settings(max_steps=max_steps, replan_steps=replan))
    assert outcome.steps == max_steps
    assert len(frames) == outcome.steps + 1
    # Frame i shows the state after i policy steps (2 settle steps before), upright.
    assert [int(f[1, 1, 1]) for f in frames] == [2 + i for i in range(max_steps + 1)]
    for frame in frames:
        assert frame.shape == (6, 6, 3) and frame.dtype == np.uint8
        assert np.all(frame[-1, :, 0] == 255), "frames must be upright (LIBERO's first row at the bottom)"


def test_frames_come_from_render_upright_when_the_policy_sees_no_agentview() -> None:
    env = FakeEnv()
    outcome, frames = _run(env, ChunkPolicy(1), _settings(max_steps=3, cameras=("left_wrist_0_rgb",)))
    assert len(frames) == outcome.steps + 1 == 4
    assert [int(f[1, 1, 1]) for f in frames] == [2, 3, 4, 5]
    assert all(np.all(f[-1, :, 0] == 255) and np.all(f[..., 2] != 7) for f in frames)


def test_success_ends_the_episode_mid_chunk() -> None:
    env = FakeEnv(succeed_after=2 + 4)  # 2 settle steps + 4 policy steps
    outcome, frames = _run(env, ChunkPolicy(horizon=3), _settings(max_steps=20, replan_steps=3))
    assert outcome.success is True and outcome.error_kind is None
    assert outcome.steps == 4 and env.physics_steps == 6
    assert len(frames) == 5


def test_an_unfilmed_episode_renders_only_the_policy_cameras() -> None:
    env = FakeEnv()
    _run(env, ChunkPolicy(horizon=4), _settings(max_steps=7, replan_steps=3, cameras=("base_0_rgb",)), film=False)
    assert env.rendered == ["agentview"] * 3  # one per query, never for physics steps


def test_the_policy_observation_follows_the_protocol() -> None:
    env, policy = FakeEnv(size=8), ChunkPolicy(1, privileged=True)
    _run(env, policy, _settings(max_steps=1, cameras=("base_0_rgb",), transforms=["rotate180", {"resize_with_pad": 12}]))
    obs = policy.observations[0]
    assert set(obs["images"]) == {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"}
    assert all(img.shape == (12, 12, 3) for img in obs["images"].values())
    assert obs["image_mask"] == {"base_0_rgb": True, "left_wrist_0_rgb": False, "right_wrist_0_rgb": False}
    assert not obs["images"]["left_wrist_0_rgb"].any()  # not a protocol camera: zeros
    assert obs["images"]["base_0_rgb"][-1, :, 0].max() > 0  # rotated: the raw first row is now last
    assert obs["instruction"] == FakeEnv.instruction
    assert obs["state"].shape == (8,) and "privileged" in obs and "robot" in obs

    policy = ChunkPolicy(1)
    _run(FakeEnv(), policy, _settings(max_steps=1, give_state=False), film=False)
    assert "state" not in policy.observations[0] and "privileged" not in policy.observations[0]


def test_policy_reset_gets_the_episode_seed_and_instruction() -> None:
    policy = ChunkPolicy(1)
    _run(FakeEnv(), policy, _settings(max_steps=1))
    assert policy.resets == [{"instruction": SPEC.instruction, "seed": SPEC.episode_seed, "init_state": 3}]


def test_the_fingerprint_covers_executed_actions_only() -> None:
    class TailPolicy(ChunkPolicy):
        """Same executed rows as ChunkPolicy, different rows beyond replan_steps."""

        def act(self, observation):
            chunk = super().act(observation)
            chunk[3:] = 0.5
            return chunk

    settings = _settings(max_steps=6, replan_steps=3)
    a, _ = _run(FakeEnv(), ChunkPolicy(5), settings, film=False)
    b, _ = _run(FakeEnv(), ChunkPolicy(5), settings, film=False)
    c, _ = _run(FakeEnv(), TailPolicy(5), settings, film=False)
    d, _ = _run(FakeEnv(), ChunkPolicy(5), _settings(max_steps=5, replan_steps=3), film=False)
    assert len(a.action_fingerprint) == 64
    assert a.action_fingerprint == b.action_fingerprint == c.action_fingerprint
    assert d.action_fingerprint != a.action_fingerprint


@pytest.mark.parametrize(
    ("fail", "kind", "text"),
    [("raise", "policy_error", "CUDA out of memory"), ("nan", "invalid_action", "non-finite"), ("shape", "invalid_action", "(2, 6)")],
)
def test_a_misbehaving_policy_ends_the_episode_as_an_error_not_a_failure(fail: str, kind: str, text: str) -> None:
    env = FakeEnv()
    outcome, frames = _run(env, ChunkPolicy(2, fail=fail, fail_at_query=3), _settings(max_steps=20, replan_steps=2))
    assert outcome.success is False
    assert outcome.error_kind == kind and text in outcome.error_message
    assert outcome.steps == 4  # two good queries of 2 actions ran first
    assert len(frames) == outcome.steps + 1  # one per executed step plus the failing query's


def test_policy_reset_failure_is_a_policy_error() -> None:
    outcome, _ = _run(FakeEnv(), ChunkPolicy(1, fail="reset"), _settings())
    assert outcome.error_kind == "policy_error" and "reset" in outcome.error_message and outcome.steps == 0


@pytest.mark.parametrize(("fail", "fail_after", "text"), [("reset", 0, "reset"), ("step", 5, "unstable"), ("render", 4, "EGL"), ("privileged", 0, "world_pose_in_gripper")])
def test_a_simulator_failure_is_an_env_error_not_a_crash(fail: str, fail_after: int, text: str) -> None:
    env = FakeEnv(fail=fail, fail_after=fail_after)
    outcome, _ = _run(env, ChunkPolicy(1, privileged=True), _settings(max_steps=10))
    assert outcome.error_kind == "env_error" and outcome.success is False
    assert text in outcome.error_message and "\n" not in outcome.error_message


def test_timers_are_recorded() -> None:
    outcome, _ = _run(FakeEnv(), ChunkPolicy(1), _settings(max_steps=3))
    assert outcome.wall_time_s >= outcome.env_time_s + outcome.policy_time_s >= 0
    assert outcome.render_time_s >= 0


# ----- secrets ------------------------------------------------------------------------------------------


def test_redact_hides_secrets_at_any_depth() -> None:
    config = {
        "policy": {"_target_": "x.Remote", "api_key": "sk-live-1", "endpoint": "https://example.org"},
        "extra": {"nested": {"OPENAI_API_KEY": "sk-live-2", "apiKey": "sk-live-3"}},
        "hf_token": "hf_abc",
        "token": "t0k",
        "auth": {"password": 123456, "client_secret": "cs"},
        "servers": [{"name": "a", "access_token": "at-1"}, {"name": "b", "db_password": "pw"}],
        "api_keys": ["sk-a", "sk-b"],
        "secrets": {"openai": "sk-c"},
    }
    out = redact(config)
    text = json.dumps(out)
    for secret in ("sk-live-1", "sk-live-2", "sk-live-3", "hf_abc", "t0k", "123456", "cs", "at-1", "pw", "sk-a", "sk-b", "sk-c"):
        assert secret not in text, secret
    assert out["policy"]["api_key"] == REDACTED
    assert out["policy"]["endpoint"] == "https://example.org"
    assert out["servers"][0]["name"] == "a"
    assert config["policy"]["api_key"] == "sk-live-1", "redact must not modify its input"


def test_redact_keeps_the_action_token_settings_and_unset_secrets() -> None:
    """Decoder settings named after tokens are configuration, not credentials: the
    recorded config must keep them, or a run cannot be reproduced from its metadata."""
    config = {
        "decoder": {"name": "fast", "tokenizer_path": "/models/fast/tokenizer.json", "min_token": -354, "skip_tokens": 128,
                    "token_low": 0, "token_high": 512, "action_end_ids": [1, 2], "eos_id": 1},
        "policy": {"api_key": None, "password": ""},
    }
    assert redact(config) == config


# ----- group choices, config checks -------------------------------------------------------------------


def test_check_group_choices_rejects_unknown_choices_in_one_line() -> None:
    check_group_choices(["suite=libero_10", "policy=zero", "protocol=openvla", "video=none", "suite.tasks=[0]"])
    with pytest.raises(UserInputError) as info:
        check_group_choices(["suite=libero_100"])
    assert "suite 'libero_100'" in str(info.value) and "libero_10" in str(info.value)
    with pytest.raises(UserInputError, match="protocol 'octo'"):
        check_group_choices(["-m", "protocol=openpi,octo"])


def test_local_runner_rejects_negative_workers() -> None:
    from evalharness.config.validation import validate_settings

    with pytest.raises(UserInputError, match="runner.workers"):
        validate_settings(LocalRunner.Settings, {"workers": -1, "max_attempts": 2}, "runner")


# ----- grouping work for workers ----------------------------------------------------------------------------


def _items(tasks: list[int], episodes: int) -> list[WorkItem]:
    return [WorkItem(spec, "no") for spec in build_plan("libero_goal", tasks, episodes, None, 7, "ctx")]


def _check_partition(items: list[WorkItem], groups: list[list[WorkItem]]) -> None:
    flat = [item for group in groups for item in group]
    assert sorted(i.spec.key for i in flat) == sorted(i.spec.key for i in items)  # each once
    for group in groups:
        assert group and len({i.spec.task_index for i in group}) == 1  # one task per group (one env build)
        states = [i.spec.init_state for i in group]
        assert states == sorted(states)


def test_group_items_one_group_per_task_when_tasks_outnumber_workers() -> None:
    items = _items([0, 1, 2], 4)
    groups = group_items(items, 2)
    _check_partition(items, groups)
    assert len(groups) == 3


def test_group_items_splits_tasks_so_every_worker_has_work() -> None:
    items = _items([0, 1], 4)
    groups = group_items(items, 4)
    _check_partition(items, groups)
    assert len(groups) == 4 and all(len(g) == 2 for g in groups)

    items = _items([5], 5)
    groups = group_items(items, 2)
    _check_partition(items, groups)
    assert sorted(len(g) for g in groups) == [2, 3]


def test_group_items_never_makes_empty_groups() -> None:
    items = _items([0], 2)
    groups = group_items(items, 8)
    _check_partition(items, groups)
    assert len(groups) == 2
    assert group_items([], 4) == []


# ----- the video recorder ----------------------------------------------------------------------------------


def _film(run_dir: Path, decision: str, success: bool, error_kind: str | None = None, frames: int = 4) -> str | None:
    spec = build_plan("libero_object", [2], None, [5], 7, "ctx")[0]
    recorder = EpisodeRecorder(run_dir, spec, decision, fps=10)
    if recorder.sink is not None:
        for i in range(frames):
            recorder.sink(np.full((16, 16, 3), 10 * i, dtype=np.uint8))
    outcome = EpisodeOutcome(success, frames - 1, error_kind, "boom" if error_kind else None, 0, 0, 0, 0, "", [])
    return recorder.finish(outcome)


@pytest.mark.parametrize(
    ("decision", "success", "error_kind", "kept", "suffix"),
    [
        ("yes", True, None, True, "_success.mp4"),
        ("yes", False, None, True, "_failure.mp4"),
        ("if_failure", True, None, False, None),
        ("if_failure", False, None, True, "_failure.mp4"),
        ("if_failure", False, "policy_error", True, "_error.mp4"),
        ("no", False, None, False, None),
    ],
)
def test_recorder_keeps_or_drops_by_decision_and_outcome(tmp_path: Path, decision, success, error_kind, kept, suffix) -> None:
    import imageio.v3 as iio

    video = _film(tmp_path, decision, success, error_kind)
    files = sorted(p.name for p in (tmp_path / "videos").glob("*")) if (tmp_path / "videos").exists() else []
    if not kept:
        assert video is None and files == []
        return
    assert video is not None and video.startswith("videos/") and video.endswith(suffix)
    assert "_t02_" in video and "_init005_" in video
    assert files == [Path(video).name]
    assert not [p for p in (tmp_path / ".scratch").rglob("*")]  # no scratch file left behind
    frames = list(iio.imiter(tmp_path / video, plugin="FFMPEG"))
    assert len(frames) == 4 and frames[0].shape == (16, 16, 3)


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text.encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


_KILLED_WHILE_FILMING = """
import os, signal, sys
from pathlib import Path
import numpy as np
from evalharness.plan.build import build_plan
from evalharness.episode.video_selection import EpisodeRecorder
spec = build_plan("libero_object", [0], None, [0], 7, "ctx")[0]
recorder = EpisodeRecorder(Path(sys.argv[1]), spec, "yes", fps=10)
recorder.sink(np.zeros((16, 16, 3), dtype=np.uint8))
os.kill(os.getpid(), signal.SIGKILL)  # a worker dying mid-episode
"""


def test_a_worker_killed_while_filming_leaves_nothing_once_scratch_is_removed(tmp_path: Path) -> None:
    """The ffmpeg process filming an episode outlives a killed worker (imageio starts it in
    its own process group) and writes its file after the worker died, maybe after the run
    cleaned up: the cleanup must leave it nowhere to write."""
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = subprocess.run([sys.executable, "-c", _KILLED_WHILE_FILMING, str(run_dir)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    remove_scratch(run_dir)  # what the run does as soon as its workers are gone
    deadline = time.monotonic() + 30
    while _processes_mentioning(str(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the orphaned ffmpeg finishes on its own
    assert not _processes_mentioning(str(run_dir))
    assert sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")) == []


# ----- the faulty policy ------------------------------------------------------------------------------------


def test_faulty_policy_accepts_nan_as_hydra_parses_it() -> None:
    """``policy.mode=nan`` on the command line arrives as a float NaN (Hydra's grammar)."""
    policy = FaultyPolicy(mode=float("nan"))
    assert policy.mode == "nan" and policy.identity()["mode"] == "nan"
    policy.reset("x", seed=0, init_state=0)
    assert np.isnan(policy.act({})).any()


def test_faulty_policy_fails_only_on_the_chosen_init_states_after_n_queries() -> None:
    policy = FaultyPolicy(mode="wrong_shape", after_queries=1, on_init_states=[1])
    policy.reset("x", seed=0, init_state=0)
    assert all(policy.act({}).shape == (1, 7) for _ in range(3))
    policy.reset("x", seed=0, init_state=1)
    assert policy.act({}).shape == (1, 7)
    assert policy.act({}).shape == (1, 6)
    with pytest.raises(UserInputError, match="policy.mode"):
        FaultyPolicy(mode="segfault")


def test_baselines() -> None:
    zero = ZeroPolicy(horizon=3).act({})
    assert zero.shape == (3, 7) and np.all(zero[:, :6] == 0) and np.all(zero[:, 6] == -1)
    a, b = RandomPolicy(horizon=2), RandomPolicy(horizon=2)
    a.reset("x", seed=11)
    b.reset("x", seed=11)
    chunk = a.act({})
    np.testing.assert_array_equal(chunk, b.act({}))
    assert chunk.shape == (2, 7) and np.all(np.abs(chunk) <= 1) and set(np.abs(chunk[:, 6])) == {1.0}
    b.reset("x", seed=12)
    assert not np.array_equal(a.act({}), b.act({}))


# ----- the action pipeline around a policy ------------------------------------------------------------------


def _pipeline_cfg(**groups: str) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from evalharness.config.conf import CONF_DIR

    cfg = {}
    for group in ("decoder", "normalize", "convert"):
        loaded = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{groups.get(group, 'none')}.yaml"))
        assert isinstance(loaded, dict)
        cfg[group] = loaded
    return cfg


class _Outputs(Policy):
    name = "outputs"

    def __init__(self, output: Any) -> None:
        self.output = output

    def act(self, observation: dict[str, Any]) -> Any:
        return self.output


def test_openvla_pipeline_runs_without_state_as_the_openvla_protocol_gives_none() -> None:
    from evalharness.policies.pipelined import PipelinedPolicy

    cfg = _pipeline_cfg(decoder="openvla_bins", normalize="range", convert="openvla")
    cfg["normalize"].update(low=-1.0, high=1.0)
    tokens = np.array([31900, 31872, 31800, 31850, 31750, 31900, 31745])  # 7 action tokens
    policy = PipelinedPolicy(_Outputs(tokens), cfg)
    observation = {"images": {}, "instruction": "x"}  # protocol.state=false: no "state"
    without_state = policy.act(observation)
    assert without_state.shape == (1, 7) and np.all(np.isfinite(without_state))
    np.testing.assert_array_equal(without_state, policy.act({**observation, "state": np.zeros(8)}))


def test_a_pipeline_step_that_needs_the_state_fails_the_episode_clearly_without_it() -> None:
    from evalharness.errors import DecodeError
    from evalharness.policies.pipelined import PipelinedPolicy

    chunk = np.full((2, 7), 0.1)
    policy = PipelinedPolicy(_Outputs(chunk), _pipeline_cfg(convert="openpi_libero"))
    state = np.arange(8, dtype=np.float32)
    out = policy.act({"state": state})
    np.testing.assert_allclose(out[:, :6], np.tile(0.1 + state[:6].astype(np.float64), (2, 1)))
    np.testing.assert_allclose(out[:, 6], 0.1)
    with pytest.raises(DecodeError, match="state") as info:
        policy.act({"images": {}})
    assert info.value.kind == "decode_error" and "\n" not in str(info.value)


def test_policy_cameras_narrow_what_is_rendered():
    """A policy that declares it ignores images gets none rendered (rendering is the cost)."""
    from evalharness.policies.base import Policy
    from evalharness.policies.scripted import ScriptedPickPlace
    from evalharness.episode.rollout import policy_cameras

    class Wrist(Policy):
        cameras = ("left_wrist_0_rgb", "right_wrist_0_rgb")

        def act(self, observation):
            return np.zeros((1, 7))

    settings = _settings()
    assert policy_cameras(ScriptedPickPlace(), settings) == ()
    assert policy_cameras(Wrist(), settings) == ("left_wrist_0_rgb",)
