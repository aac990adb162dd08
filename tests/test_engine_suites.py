"""A real short evaluation on every LIBERO suite, in this process (``runner.workers=0``).

Each suite's run also exercises one more part of the engine, so that one env build
(~4-7 s) serves several checks:

- libero_spatial: ``video=first_n`` over init states [3, 1]: the first *by position* (1)
  is filmed, not init states numbered below first_n;
- libero_object: chunks of 3 actions, 2 executed per query, ``video=all``;
- libero_goal: ``video=none``;
- libero_10: the OpenVLA protocol with ``camera_size=48`` (frames at 48 px, 30 fps);
- libero_90: the LeRobot protocol, and a secret in the config that must not be written
  anywhere under the run folder.

Videos are decoded back: an episode of N steps has N + 1 frames (one before each step
and the final state; see evalharness.episode.rollout.run_episode), at the camera size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from evalharness.errors import UserInputError
from evalharness.config.conf import CONF_DIR
from evalharness.config.redaction import REDACTED
from evalharness.engine.evaluate import evaluate

pytestmark = pytest.mark.sim

SECRET = "sk-test-9f8e7d6c5b4a-do-not-write"

BASE = ["policy=zero", "suite.tasks=[0]", "suite.episodes_per_task=1", "suite.max_steps=5", "protocol.render_size=32",
        "runner.workers=0", "run_name=engine-test"]
RUNS: dict[str, dict[str, Any]] = {
    "libero_spatial": {"overrides": ["video=first_n", "suite.init_states=[3,1]"], "episodes": 2, "size": 32, "fps": 10},
    "libero_object": {"overrides": ["video=all", "policy.horizon=3", "protocol.replan_steps=2", "suite.max_steps=7"],
                      "episodes": 1, "size": 32, "fps": 10, "steps": 7},
    "libero_goal": {"overrides": ["video=none"], "episodes": 1, "size": 32},
    "libero_10": {"overrides": ["protocol=openvla", "video=all", "camera_size=48"], "episodes": 1, "size": 48, "fps": 30},
    "libero_90": {"overrides": ["protocol=lerobot", "video=all", f"+extra.api_key={SECRET}", f"+extra.nested.hf_token={SECRET}"],
                  "episodes": 1, "size": 32, "fps": 80},  # lerobot: LiberoEnv.metadata["render_fps"]
}


def _run(suite: str, out: Path, *extra: str) -> dict[str, Any]:
    overrides = [f"suite={suite}", *BASE, *RUNS[suite]["overrides"], *extra, f"output_dir={out}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return evaluate(cfg).to_document()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, assets_installed) -> dict[str, tuple[dict[str, Any] | Exception, Path]]:
    root = tmp_path_factory.mktemp("suites")
    results: dict[str, tuple[dict[str, Any] | Exception, Path]] = {}
    for suite in RUNS:
        out = root / suite
        try:
            results[suite] = (_run(suite, out), out)
        except Exception as exc:  # noqa: BLE001 - reported by that suite's tests, the others still run
            results[suite] = (exc, out)
    return results


def _get(runs, suite: str) -> tuple[dict[str, Any], Path, list[dict[str, Any]]]:
    summary, out = runs[suite]
    if isinstance(summary, Exception):
        raise AssertionError(f"the {suite} run failed: {type(summary).__name__}: {summary}") from summary
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    return summary, out, records


def _frames(path: Path) -> list[np.ndarray]:
    import imageio.v3 as iio

    return list(iio.imiter(path, plugin="FFMPEG"))


@pytest.mark.parametrize("suite", list(RUNS))
def test_one_short_episode_runs_on_every_suite(runs, suite: str) -> None:
    summary, out, records = _get(runs, suite)
    spec = RUNS[suite]
    assert len(records) == spec["episodes"]
    for record in records:
        assert record["suite"] == suite and record["task_index"] == 0
        assert record["error_kind"] is None, record["error_message"]
        assert record["success"] is False  # holding still solves nothing
        assert record["steps"] == spec.get("steps", 5)
        assert record["env_time_s"] > 0 and record["wall_time_s"] > 0
    assert summary["complete"] is True
    assert summary["suites"][suite]["episodes"] == spec["episodes"]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "summary.md").read_text().strip()


@pytest.mark.parametrize("suite", [s for s in RUNS if "fps" in RUNS[s]])
def test_videos_decode_with_steps_plus_one_frames_at_the_camera_size(runs, suite: str) -> None:
    import imageio.v3 as iio

    _, out, records = _get(runs, suite)
    size = RUNS[suite]["size"]
    filmed = [r for r in records if r["video"]]
    assert filmed
    for record in filmed:
        path = out / record["video"]
        assert path.is_file() and path.parent == out / "videos"
        frames = _frames(path)
        assert len(frames) == record["steps"] + 1
        assert all(f.shape == (size, size, 3) for f in frames)
        assert iio.immeta(path, plugin="FFMPEG")["fps"] == pytest.approx(RUNS[suite]["fps"])
    assert not [p for p in (out / "videos").iterdir() if p.name.startswith(".")]
    assert not (out / ".scratch").exists()


def test_video_first_n_films_the_first_episode_of_each_task_by_position(runs) -> None:
    _, out, records = _get(runs, "libero_spatial")
    by_state = {r["init_state"]: r for r in records}
    assert sorted(by_state) == [1, 3]
    assert by_state[1]["video"] and by_state[1]["video"].endswith("_init001_failure.mp4")
    assert by_state[3]["video"] is None
    assert [p.name for p in (out / "videos").iterdir()] == [Path(by_state[1]["video"]).name]


def test_video_none_writes_no_video(runs) -> None:
    _, out, records = _get(runs, "libero_goal")
    assert all(r["video"] is None for r in records)
    assert not (out / "videos").exists() or not any((out / "videos").iterdir())


def test_the_resolved_protocol_and_overrides_are_recorded(runs) -> None:
    summary, out, _ = _get(runs, "libero_10")
    protocol = summary["metadata"]["protocol"]
    assert protocol["name"] == "openvla" and protocol["render_size"] == 32 and protocol["replan_steps"] == 1
    assert summary["metadata"]["camera_size"] == 48
    run = json.loads((out / "run.json").read_text())
    assert run["context_inputs"]["camera_size"] == 48 and run["context_inputs"]["max_steps_override"] == 5
    # the context holds every setting that can change an episode; episodes_per_task only picks episodes
    assert run["context_inputs"]["protocol"] == {k: v for k, v in protocol.items() if k != "episodes_per_task"}
    assert protocol["episodes_per_task"] == 50

    summary, _, _ = _get(runs, "libero_object")
    assert summary["metadata"]["protocol"]["replan_steps"] == 2
    assert summary["metadata"]["policy"] == {"name": "zero", "horizon": 3}


def test_a_secret_in_the_config_is_written_nowhere(runs) -> None:
    summary, out, _ = _get(runs, "libero_90")
    assert summary["metadata"]["config"]["extra"]["api_key"] == REDACTED
    assert summary["metadata"]["config"]["extra"]["nested"]["hf_token"] == REDACTED
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["extra"] == {"api_key": REDACTED, "nested": {"hf_token": REDACTED}}
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"run.json", "summary.json", "summary.md", "episodes.jsonl"}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), f"the secret is in {path.relative_to(out)}"
    assert SECRET not in json.dumps(summary)


@pytest.mark.parametrize("change", ["suite.max_steps=6", "protocol.replan_steps=4", "policy=random"])
def test_a_run_folder_refuses_episodes_of_another_configuration(runs, change: str) -> None:
    """Resuming into a folder made with other settings would mix two runs' episodes."""
    _, out, _ = _get(runs, "libero_goal")
    before = {name: (out / name).read_bytes() for name in ("episodes.jsonl", "run.json", "summary.json")}
    with pytest.raises(UserInputError, match="another configuration") as info:
        _run("libero_goal", out, change)
    assert "\n" not in str(info.value) and "output_dir" in str(info.value)
    assert {name: (out / name).read_bytes() for name in before} == before


# ----- video=failures with a real success -----------------------------------------------------------------


@pytest.fixture(scope="module")
def scripted_success(tmp_path_factory, assets_installed) -> tuple[dict[str, Any], Path]:
    """The scripted pick-and-place policy solves LIBERO-Object task 0 from init state 0
    (~150 steps). One camera and no preprocessing keep the episode cheap."""
    out = tmp_path_factory.mktemp("scripted") / "run"
    overrides = ["suite=libero_object", "suite.tasks=[0]", "suite.init_states=[0]", "policy=scripted", "video=failures",
                 "protocol.render_size=32", "protocol.cameras=[base_0_rgb]", "protocol.image_transforms=[]",
                 "runner.workers=0", "run_name=engine-test", f"output_dir={out}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return evaluate(cfg).to_document(), out


def test_video_failures_drops_the_video_of_a_success(scripted_success) -> None:
    summary, out = scripted_success
    (record,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert record["error_kind"] is None, record["error_message"]
    assert record["success"] is True, "the scripted policy no longer solves LIBERO-Object task 0 init 0"
    assert 0 < record["steps"] < 280  # stopped at success, before the protocol's max steps
    assert record["video"] is None
    assert not (out / "videos").exists() or not any((out / "videos").iterdir())
    assert not (out / ".scratch").exists()
    assert summary["totals"]["successes"] == 1 and summary["totals"]["rate"] == 1.0 and summary["complete"] is True
