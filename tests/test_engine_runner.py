"""Full runs of the ``evalharness`` command with worker processes (real LIBERO, tiny images).

- determinism: 1 and 3 workers give the same outcomes, action fingerprints and video
  frames (the frames show the simulator state, so they also catch a simulator that
  depends on which episodes a worker ran before);
- resume: a run killed with SIGKILL resumes without losing, redoing or duplicating an
  episode; a finished run reruns nothing;
- faults: a policy that raises, emits NaN or a wrongly shaped chunk, or kills its worker,
  costs only the affected episodes, which are recorded as errors (not failures).

Runs are shared between the assertions through module-scoped fixtures.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from proctable import kill_group_after_first_record

from evalharness.plan.build import build_plan
from evalharness.policies.baselines import ZeroPolicy

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

TINY = ["protocol.render_size=32"]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), **extra}


def _cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "evalharness", *args]


def _cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(args), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _start(args: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(_cmd(args), cwd=cwd, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> subprocess.CompletedProcess:
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]


def _by_key(run_dir: Path) -> dict[str, dict[str, Any]]:
    records = _records(run_dir)
    by_key = {r["key"]: r for r in records}
    assert len(by_key) == len(records), "an episode was recorded twice"
    return by_key


def _planned_keys(run_dir: Path, suite: str, tasks: list[int], episodes: int, seed: int) -> set[str]:
    context = json.loads((run_dir / "run.json").read_text())["context"]
    return {s.key for s in build_plan(suite, tasks, episodes, None, seed, context)}


def _summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def _frames(path: Path) -> list[np.ndarray]:
    import imageio.v3 as iio

    return list(iio.imiter(path, plugin="FFMPEG"))


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstderr:\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stderr
    return proc


# ----- determinism ------------------------------------------------------------------------------------------

DETERMINISM = ["suite=libero_object", "suite.tasks=[0,1]", "suite.episodes_per_task=2", "suite.max_steps=12",
               "policy=random", "video=all", *TINY]


@pytest.fixture(scope="module")
def determinism(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("determinism")
    runs = {}
    # One after the other: with 3 workers the two tasks are split into 4 one-episode
    # groups, so episodes run on fresh workers, in another order and after other tasks.
    for workers in (1, 3):
        out = root / f"w{workers}"
        _ok(_cli([*DETERMINISM, f"runner.workers={workers}", f"output_dir={out}"], cwd=root))
        runs[workers] = out
    return runs


def test_same_episodes_and_outcomes_with_1_and_3_workers(determinism) -> None:
    one, three = _by_key(determinism[1]), _by_key(determinism[3])
    assert set(one) == set(three) == _planned_keys(determinism[1], "libero_object", [0, 1], 2, 7)
    for key, a in one.items():
        b = three[key]
        for field in ("task_index", "init_state", "seed", "success", "steps", "error_kind", "action_fingerprint"):
            assert a[field] == b[field], f"{field} differs for task {a['task_index']} init {a['init_state']}"
        assert a["error_kind"] is None and a["steps"] == 12 and len(a["action_fingerprint"]) == 64
    # The random policy is seeded per episode: every episode acts differently.
    assert len({r["action_fingerprint"] for r in one.values()}) == 4


def test_same_simulator_states_with_1_and_3_workers(determinism) -> None:
    """Video frames show the scene after every step: they must match frame for frame."""
    one, three = _by_key(determinism[1]), _by_key(determinism[3])
    for key, a in one.items():
        frames_a = _frames(determinism[1] / a["video"])
        frames_b = _frames(determinism[3] / three[key]["video"])
        assert len(frames_a) == len(frames_b) == a["steps"] + 1
        for i, (fa, fb) in enumerate(zip(frames_a, frames_b)):
            assert np.array_equal(fa, fb), f"task {a['task_index']} init {a['init_state']}: frame {i} differs"
        # The arm moves: the frames are not all the same picture.
        assert not np.array_equal(frames_a[0], frames_a[-1])


def test_summaries_agree_and_record_the_run(determinism) -> None:
    s1, s3 = _summary(determinism[1]), _summary(determinism[3])
    for s, workers in ((s1, 1), (s3, 3)):
        assert s["complete"] is True and s["incomplete_reasons"] == []
        assert s["totals"]["recorded"] == s["totals"]["episodes"] == 4 and s["totals"]["errors"] == 0
        assert s["metadata"]["workers"] == workers
        assert s["metadata"]["protocol"]["name"] == "openpi" and s["metadata"]["protocol"]["render_size"] == 32
    drop = ("time_s",)
    assert {k: v for k, v in s1["totals"].items() if k not in drop} == {k: v for k, v in s3["totals"].items() if k not in drop}
    assert s1["tasks"] == s3["tasks"]
    assert s1["metadata"]["context"] == s3["metadata"]["context"]


# ----- resume after kill -9 ---------------------------------------------------------------------------------

RESUME = ["suite=libero_object", "suite.tasks=[0,1]", "suite.episodes_per_task=3", "suite.max_steps=5",
          "policy=zero", "runner.workers=1", "video=all", *TINY]


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("resume")
    out = root / "run"
    args = [*RESUME, f"output_dir={out}"]
    episodes = out / "episodes.jsonl"

    proc = _start(args, cwd=root)
    try:
        kill_group_after_first_record(proc, episodes)  # the run and its workers, mid-run
    finally:
        killed = _finish(proc, timeout=60)
    assert killed.returncode == -signal.SIGKILL, f"the run ended before the kill (exit {killed.returncode}):\n{killed.stderr[-3000:]}"
    data = episodes.read_bytes()
    before = data[: data.rfind(b"\n") + 1]  # complete lines only
    videos_after_kill = sorted(p.name for p in (out / "videos").iterdir()) if (out / "videos").exists() else []

    resumed = _ok(_cli(args, cwd=root))
    after_resume = episodes.read_bytes()
    started = time.monotonic()
    rerun = _ok(_cli(args, cwd=root))
    rerun_seconds = time.monotonic() - started
    return {
        "out": out, "killed": killed, "before": before, "videos_after_kill": videos_after_kill,
        "resumed": resumed, "after_resume": after_resume, "rerun": rerun, "rerun_seconds": rerun_seconds,
    }


def test_the_run_was_killed_mid_run(killed_and_resumed) -> None:
    r = killed_and_resumed
    assert r["killed"].returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 1 <= r["before"].count(b"\n") < 6


def test_resume_loses_and_duplicates_nothing(killed_and_resumed) -> None:
    out = killed_and_resumed["out"]
    lines = killed_and_resumed["after_resume"].splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    planned = _planned_keys(out, "libero_object", [0, 1], 3, 7)
    assert sorted(keys) == sorted(planned), "each planned episode exactly once"
    summary = _summary(out)
    assert summary["complete"] is True and summary["totals"]["recorded"] == 6 and summary["totals"]["missing_episodes"] == 0


def test_episodes_finished_before_the_kill_are_kept_not_redone(killed_and_resumed) -> None:
    r = killed_and_resumed
    assert r["after_resume"].startswith(r["before"]), "records written before the kill must stay byte-identical"
    n_before = r["before"].count(b"\n")
    assert f"resuming: {n_before}/6 episodes already recorded" in r["resumed"].stderr
    assert r["resumed"].stderr.count("libero_object task") == 6 - n_before  # only the rest ran


def test_resume_leaves_complete_videos_only(killed_and_resumed) -> None:
    out = killed_and_resumed["out"]
    videos = out / "videos"
    assert not (out / ".scratch").exists(), "half-written videos of the killed run remain"
    records = _records(out)
    assert sorted(p.name for p in videos.iterdir()) == sorted(Path(r["video"]).name for r in records)
    for record in records:
        frames = _frames(out / record["video"])
        assert len(frames) == record["steps"] + 1 and frames[0].shape == (32, 32, 3)


def test_rerunning_a_finished_run_does_nothing_new(killed_and_resumed) -> None:
    r = killed_and_resumed
    assert (r["out"] / "episodes.jsonl").read_bytes() == r["after_resume"]
    assert "resuming: 6/6 episodes already recorded" in r["rerun"].stderr
    assert "libero_object task" not in r["rerun"].stderr  # no episode ran
    assert _summary(r["out"])["totals"]["recorded"] == 6


# ----- faults ----------------------------------------------------------------------------------------------------

FAULT_BASE = ["suite=libero_object", "suite.tasks=[0]", "suite.episodes_per_task=3", "suite.max_steps=3",
              "policy=faulty", "policy.on_init_states=[1]", *TINY]
FAULTS = {
    "raise": ["policy.mode=raise", "runner.workers=1", "video=failures"],
    "nan": ["policy.mode=nan", "runner.workers=1", "video=none"],
    "wrong_shape": ["policy.mode=wrong_shape", "policy.after_queries=1", "runner.workers=1", "video=none"],
    "kill_process": ["policy.mode=kill_process", "runner.workers=2", "video=all"],
}
EXPECTED_KIND = {"raise": "policy_error", "nan": "invalid_action", "wrong_shape": "invalid_action", "kill_process": "worker_crash"}


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    root = tmp_path_factory.mktemp("faults")
    # The four runs are independent: run them side by side.
    procs = {name: _start([*FAULT_BASE, *extra, f"output_dir={root / name}"], cwd=root) for name, extra in FAULTS.items()}
    return {name: (_finish(proc), root / name) for name, proc in procs.items()}


@pytest.mark.parametrize("mode", list(FAULTS))
def test_faulty_episodes_are_errors_and_the_others_have_verdicts(faults, mode: str) -> None:
    proc, out = faults[mode]
    _ok(proc)
    records = {r["init_state"]: r for r in _records(out)}
    assert sorted(records) == [0, 1, 2]
    bad = records[1]
    assert bad["error_kind"] == EXPECTED_KIND[mode]
    assert bad["error_message"] and "\n" not in bad["error_message"]
    assert bad["success"] is False
    for k in (0, 2):
        good = records[k]
        assert good["error_kind"] is None and good["error_message"] is None
        assert good["success"] is False and good["steps"] == 3 and good["attempts"] == 1


@pytest.mark.parametrize("mode", list(FAULTS))
def test_summary_counts_errors_apart_and_marks_the_run_incomplete(faults, mode: str) -> None:
    _, out = faults[mode]
    summary = _summary(out)
    totals = summary["totals"]
    assert summary["complete"] is False
    assert any(EXPECTED_KIND[mode] in reason for reason in summary["incomplete_reasons"])
    assert (totals["recorded"], totals["episodes"], totals["failures"], totals["errors"]) == (3, 2, 2, 1)
    assert totals["errors_by_kind"] == {EXPECTED_KIND[mode]: 1}
    assert totals["rate"] == 0.0  # 0 successes out of the 2 episodes with a verdict
    assert [e["init_state"] for e in summary["errored_episodes"]] == [1]


def test_error_messages_say_what_went_wrong(faults) -> None:
    messages = {mode: {r["init_state"]: r for r in _records(out)}[1]["error_message"] for mode, (_, out) in faults.items()}
    assert "simulated model failure" in messages["raise"]
    assert "non-finite" in messages["nan"]
    assert "(1, 6)" in messages["wrong_shape"]
    assert "signal 9" in messages["kill_process"] and "2 attempts" in messages["kill_process"]


def test_a_dying_worker_is_retried_once_then_recorded_as_a_crash(faults) -> None:
    proc, out = faults["kill_process"]
    records = {r["init_state"]: r for r in _records(out)}
    crashed = records[1]
    assert crashed["attempts"] == 2 and crashed["steps"] == 0 and crashed["video"] is None
    assert [records[k]["attempts"] for k in (0, 2)] == [1, 1]
    # The other episodes were filmed as usual; nothing half-written is left behind.
    videos = out / "videos"
    assert sorted(p.name for p in videos.iterdir()) == sorted(Path(records[k]["video"]).name for k in (0, 2))
    assert not (out / ".scratch").exists(), "the killed worker's half-written video remains"


def test_video_failures_keeps_failures_and_errors(faults) -> None:
    _, out = faults["raise"]
    records = _records(out)
    assert all(r["video"] for r in records)  # no success: every video is kept
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(Path(r["video"]).name for r in records)
    for record in records:
        suffix = "_error.mp4" if record["error_kind"] else "_failure.mp4"
        assert record["video"].endswith(suffix)
        assert len(_frames(out / record["video"])) == record["steps"] + 1


def test_video_none_writes_no_video(faults) -> None:
    for mode in ("nan", "wrong_shape"):
        _, out = faults[mode]
        assert all(r["video"] is None for r in _records(out))
        assert not (out / "videos").exists() or not any((out / "videos").iterdir())


def test_the_recorded_config_says_which_fault_ran(faults) -> None:
    """``policy.mode=nan`` reaches Hydra as a float NaN; it must run as the nan mode and be
    recorded in strict JSON (run.json, summary.json) as the word the user typed."""
    for mode, (_, out) in faults.items():
        run = json.loads((out / "run.json").read_text())
        assert run["config"]["policy"]["mode"] == mode
        assert run["context_inputs"]["policy"]["mode"] == mode
        assert _summary(out)["metadata"]["config"]["policy"]["mode"] == mode


# ----- a worker that can never start -----------------------------------------------------------------------


class DiesInWorker(ZeroPolicy):
    """Kills its own process when built inside a worker (the parent also builds the policy
    once, for its identity, and survives): like a worker OOM-killed while loading a
    checkpoint, it dies before it reports starting any episode."""

    def __init__(self, **kwargs: Any) -> None:
        if multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        super().__init__(**kwargs)


def test_a_worker_that_dies_before_any_episode_is_not_respawned_forever(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["suite=libero_object", "suite.tasks=[0]", "suite.episodes_per_task=2", "suite.max_steps=2", "policy=zero",
            f"policy._target_={__name__}.DiesInWorker", "runner.workers=1", "video=none", *TINY, f"output_dir={out}"]
    pythonpath = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    proc = _start(args, cwd=tmp_path, PYTHONPATH=pythonpath)
    try:
        result = _finish(proc, timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the run never ended: a worker dying at start-up is respawned without limit")
    _ok(result)
    records = _records(out)
    assert sorted(r["init_state"] for r in records) == [0, 1]
    for record in records:
        assert record["error_kind"] == "worker_crash" and record["attempts"] == 2 and record["success"] is False
    summary = _summary(out)
    assert summary["complete"] is False and summary["totals"]["errors"] == 2 and summary["totals"]["episodes"] == 0


def test_errored_episodes_run_again_only_when_asked(tmp_path) -> None:
    """A transient fault (a policy server that was down): resume keeps the errors; with
    runner.retry_errors=true they run again and the retry's verdict replaces them."""
    flag = tmp_path / "server-down"
    flag.touch()
    out = tmp_path / "run"
    args = [*TINY, "suite=libero_object", "suite.tasks=[0]", "suite.episodes_per_task=2", "suite.max_steps=3",
            "policy=faulty", "policy.mode=raise", "policy.on_init_states=[1]", f"policy.while_file_exists={flag}",
            "video=none", "runner.workers=0", f"output_dir={out}"]
    _ok(_cli(args, tmp_path))
    first = _records(out)
    assert sorted(r["error_kind"] or "verdict" for r in first) == ["policy_error", "verdict"]
    assert _summary(out)["complete"] is False

    flag.unlink()  # the fault is gone
    _ok(_cli(args, tmp_path))  # plain resume: errors are finished episodes, nothing runs
    assert _records(out) == first

    _ok(_cli([*args, "runner.retry_errors=true"], tmp_path))
    lines = _records(out)
    assert len(lines) == 3 and lines[:2] == first  # appended, never rewritten
    retried = lines[2]
    assert retried["init_state"] == 1 and retried["error_kind"] is None
    summary = _summary(out)
    assert summary["complete"] is True
    assert summary["totals"]["episodes"] == 2 and summary["totals"]["errors"] == 0


def test_a_second_run_into_the_same_folder_is_refused(tmp_path) -> None:
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "w") as held:  # another run is writing here
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = _cli([*TINY, "suite=smoke", "policy=zero", "suite.max_steps=1", "video=none", "runner.workers=0",
                     f"output_dir={out}"], tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "another evalharness run is writing to" in lines[0]
    assert not (out / "episodes.jsonl").exists()
