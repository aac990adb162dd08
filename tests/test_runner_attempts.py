"""The crash-retry path: a worker that dies is retried, and the retry counts.

- unit: :class:`CrashAccounting` charges the first unfinished episode of a dead worker,
  requeues it with its next attempt number, and records a ``worker_crash`` with the
  attempts that actually ran only after ``max_attempts``;
- end to end (real LIBERO, real worker processes): a policy that kills its worker on an
  episode's *first* attempt only; the episode finishes on its second attempt with
  ``attempts == 2`` and exactly the outcome, action fingerprint and video frames of a
  clean run. A runner that never retries (``>=`` instead of ``>``) fails both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalharness.engine.crash_accounting import CrashAccounting, crash_record, exit_cause
from evalharness.plan.spec import EpisodeSpec
from evalharness.engine.worker import WorkItem


def _item(init_state: int, attempt: int = 1) -> WorkItem:
    spec = EpisodeSpec(suite="libero_object", task_index=0, task_name="t", instruction="do it", init_state=init_state,
                       seed=7, context="c")
    return WorkItem(spec, "no", attempt=attempt)


def test_a_dead_worker_costs_its_first_unfinished_episode_one_attempt() -> None:
    accounting = CrashAccounting(max_attempts=2)
    group = [_item(0), _item(1), _item(2)]
    requeue, crash = accounting.worker_died(group[1:], "signal 9")
    assert crash is None
    assert [(i.spec.init_state, i.attempt) for i in requeue] == [(1, 2), (2, 1)]
    assert accounting.deaths == 1


def test_an_episode_is_recorded_as_a_crash_only_after_max_attempts_ran() -> None:
    for max_attempts in (1, 2, 3):
        accounting = CrashAccounting(max_attempts)
        pending = [_item(0), _item(1)]
        runs = 0
        while pending and pending[0].spec.init_state == 0:
            runs += 1
            pending, crash = accounting.worker_died(pending, "signal 9")
        assert runs == max_attempts, "the episode ran a different number of times than allowed"
        assert crash is not None and accounting.crashes == [_item(0).spec.key]
        record = crash
        assert record.attempts == max_attempts and record.error_kind == "worker_crash" and record.success is False
        assert f"on each of {max_attempts} attempts" in record.error_message
        assert [(i.spec.init_state, i.attempt) for i in pending] == [(1, 1)]


def test_crash_record_reports_the_attempts_it_is_given_and_the_cause() -> None:
    record = crash_record(_item(3, attempt=1), 1, exit_cause(-9))
    assert record.attempts == 1 and record.error_message.startswith("the worker process died (signal 9)")
    assert exit_cause(1) == "exit code 1" and exit_cause(None) == "exit code None"


def test_nothing_unfinished_costs_nothing() -> None:
    accounting = CrashAccounting()
    assert accounting.worker_died([], "signal 9") == ([], None) and accounting.deaths == 0


# ----- end to end -------------------------------------------------------------------------------------------

RETRY = ["suite=libero_object", "suite.tasks=[0]", "suite.episodes_per_task=2", "suite.max_steps=4", "policy=faulty",
         "policy.mode=kill_process", "policy.first_attempt_only=true", "policy.after_queries=1", "video=all",
         "protocol.render_size=32"]


def _run(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.Popen([sys.executable, "-m", "evalharness", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _records(out: Path) -> dict[int, dict]:
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    by_init = {r["init_state"]: r for r in records}
    assert len(by_init) == len(records), "an episode was recorded twice"
    return by_init


@pytest.mark.sim
@pytest.mark.usefixtures("assets_installed")
def test_a_worker_killed_on_the_first_attempt_is_retried_and_the_episode_finishes_as_a_clean_run(tmp_path) -> None:
    import imageio.v3 as iio
    import numpy as np

    faulty, clean = tmp_path / "faulty", tmp_path / "clean"
    procs = [
        # The policy kills its worker mid-episode (after one query) on init state 1's first attempt.
        _run([*RETRY, "policy.on_init_states=[1]", "runner.workers=1", f"output_dir={faulty}"], tmp_path),
        # The same policy, never armed: the clean run to compare with (in-process, cheaper).
        _run([*RETRY, "policy.on_init_states=[]", "runner.workers=0", f"output_dir={clean}"], tmp_path),
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in stderr, stderr[-3000:]

    got, want = _records(faulty), _records(clean)
    assert sorted(got) == sorted(want) == [0, 1]
    assert got[1]["attempts"] == 2, "the killed episode must finish on its second attempt"
    assert got[0]["attempts"] == 1 and want[1]["attempts"] == 1
    for init in (0, 1):
        g, w = got[init], want[init]
        assert g["error_kind"] is None, f"init {init}: {g['error_message']}"
        for field in ("success", "steps", "action_fingerprint"):
            assert g[field] == w[field], f"init {init}: {field} differs from the clean run"
        frames_g = list(iio.imiter(faulty / g["video"], plugin="FFMPEG"))
        frames_w = list(iio.imiter(clean / w["video"], plugin="FFMPEG"))
        assert len(frames_g) == len(frames_w) == g["steps"] + 1
        assert all(np.array_equal(a, b) for a, b in zip(frames_g, frames_w)), f"init {init}: the scene differs"
    summary = json.loads((faulty / "summary.json").read_text())
    assert summary["complete"] is True and summary["totals"]["errors"] == 0
    assert not (faulty / ".scratch").exists(), "the killed attempt's half-written video remains"
