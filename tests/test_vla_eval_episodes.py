"""``policy=vla_eval protocol=vla_eval`` in real LIBERO episodes against vla-eval's own server code.

The server is ``vla_eval.model_servers.predict.PredictModelServer`` served by vla-eval's
``serve_async`` on 127.0.0.1 (tests/vla_eval_servers.py), with a deterministic
``predict``; the runs go through the ``evalharness`` command line:

- 0 and 2 workers give identical outcomes and action fingerprints, and so does the
  server batching across the two workers' connections (``max_batch_size=2``);
- a server with ``chunk_size`` is asked at every step and answers from its buffer;
- an error frame is that episode's ``policy_error``, the other episode is untouched;
- a connection dropped before the episode's first answer is retried and the episode is
  identical; one dropped later is ``policy_unavailable``, and ``runner.retry_errors=true``
  reruns it to the same result;
- a server whose action spec does not fit LIBERO stops the run with one line, before any
  episode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from vla_eval.specs import GRIPPER_01, POSITION_DELTA, ROTATION_AA

from vla_eval_servers import DeterministicServer, ServedInThread

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

STEPS = 12
EPISODES = ["suite=libero_spatial", "suite.tasks=[0,1]", "suite.episodes_per_task=2", f"suite.max_steps={STEPS}",
            "camera_size=64", "protocol=vla_eval", "policy=vla_eval", "policy.label=deterministic", "video=none",
            "policy.retries.backoff_s=0.05", "policy.retries.max_backoff_s=0.2", "policy.open_timeout_s=5",
            "policy.infer_timeout_s=30"]


def _cli(args: list[str], cwd: Path, timeout: float = 420) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


ONE_TASK = "suite.tasks=[0]"  # the fault tests: task 0's two episodes


def _run(served: ServedInThread, out: Path, *extra: str) -> dict[tuple[int, int], dict[str, Any]]:
    result = _cli([*EPISODES, f"policy.port={served.port}", f"output_dir={out}", *extra], out.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return _records(out)


def _records(out: Path) -> dict[tuple[int, int], dict[str, Any]]:
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    for record in records:
        latest[(record["task_index"], record["init_state"])] = record  # a rerun's line supersedes an errored one
    return latest


def _outcomes(records: dict[tuple[int, int], dict[str, Any]]) -> dict[tuple[int, int], tuple]:
    return {k: (r["success"], r["steps"], r["error_kind"], r["action_fingerprint"]) for k, r in records.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One unbatched server; the episodes with 0 workers, then with 2."""
    base = tmp_path_factory.mktemp("vla_eval")
    with ServedInThread(DeterministicServer()) as served:
        zero = _run(served, base / "w0", "runner.workers=0")
        two = _run(served, base / "w2", "runner.workers=2")
        ends = list(served.model_server.episode_ends)
    return zero, two, ends, base


def test_zero_and_two_workers_are_identical(reference) -> None:
    zero, two, ends, _ = reference
    assert sorted(zero) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["error_kind"] is None and r["steps"] == STEPS for r in zero.values()), zero
    assert _outcomes(zero) == _outcomes(two)
    assert len({r["action_fingerprint"] for r in zero.values()}) == 4  # the observation moves the actions
    assert zero[0, 0]["policy_stats"]["queries"] == STEPS  # vla-eval's loop: one observation per step
    # every episode told the server its end and verdict
    assert sorted((e["steps"], e["metrics"]["success"]) for e in ends) == sorted(
        (r["steps"], r["success"]) for r in [*zero.values(), *two.values()])


def test_the_server_hello_is_in_the_identity(reference) -> None:
    _, _, _, base = reference
    summary = json.loads((base / "w0" / "summary.json").read_text())
    text = json.dumps(summary)
    assert "DeterministicServer" in text and "deterministic" in text and "binary_close_positive" in text


def test_batching_across_connections_changes_nothing(tmp_path) -> None:
    """Longer episodes, one per task: the two workers' policy phases overlap, so batches form."""
    longer = ("suite.episodes_per_task=1", "suite.max_steps=30")
    with ServedInThread(DeterministicServer()) as served:
        alone = _run(served, tmp_path / "alone", "runner.workers=0", *longer)
    # a partial batch waits for the other worker up to 3 s (a step takes ~1 s on a loaded CPU)
    server = DeterministicServer(max_batch_size=2, max_wait_time=3.0)
    with ServedInThread(server) as served:
        batched = _run(served, tmp_path / "batched", "runner.workers=2", *longer)
    assert sorted(alone) == [(0, 0), (1, 0)] and _outcomes(batched) == _outcomes(alone)
    assert server.batch_sizes[2] > 0, server.batch_sizes  # the two workers' observations shared a predict_batch


def test_a_chunk_size_server_is_observed_every_step_and_answers_from_its_buffer(tmp_path) -> None:
    server = DeterministicServer(chunk_size=4)
    with ServedInThread(server) as served:
        first = _run(served, tmp_path / "chunk1", "runner.workers=0", ONE_TASK)
        again = _run(served, tmp_path / "chunk2", "runner.workers=0", ONE_TASK)
    assert all(r["error_kind"] is None and r["policy_stats"]["queries"] == STEPS for r in first.values()), first
    assert server.predictions == 2 * 2 * (STEPS // 4)  # two runs, two episodes, one predict per 4 steps
    assert _outcomes(first) == _outcomes(again)


def test_an_error_frame_is_that_episodes_policy_error(reference, tmp_path) -> None:
    zero, *_ = reference
    with ServedInThread(DeterministicServer(fail=((1, 3),))) as served:
        records = _run(served, tmp_path / "error", "runner.workers=0", ONE_TASK)
    assert records[0, 1]["error_kind"] == "policy_error" and records[0, 1]["steps"] == 3
    assert "deterministic failure at episode 1 step 3" in records[0, 1]["error_message"]
    assert _outcomes(records)[0, 0] == _outcomes(zero)[0, 0]


def test_a_dropped_connection_is_retried_then_unavailable_then_rerun(reference, tmp_path) -> None:
    zero, *_ = reference
    with ServedInThread(DeterministicServer(drop=((0, 0), (1, 4)))) as served:
        records = _run(served, tmp_path / "drop", "runner.workers=0", ONE_TASK)
        # dropped before any answer: reconnected, resent, identical
        assert _outcomes(records)[0, 0] == _outcomes(zero)[0, 0] and records[0, 0]["policy_stats"]["reconnects"] >= 1
        # dropped after 4 answers: the server's episode state is gone
        assert records[0, 1]["error_kind"] == "policy_unavailable" and records[0, 1]["steps"] == 4
        assert "connection lost after 4 observation(s)" in records[0, 1]["error_message"]
        rerun = _run(served, tmp_path / "drop", "runner.workers=0", "runner.retry_errors=true", ONE_TASK)
    assert _outcomes(rerun) == {k: v for k, v in _outcomes(zero).items() if k[0] == 0}


def test_an_incompatible_action_spec_stops_the_run_before_any_episode(tmp_path) -> None:
    spec = {"position": POSITION_DELTA, "rotation": ROTATION_AA, "gripper": GRIPPER_01}
    with ServedInThread(DeterministicServer(action_spec=spec)) as served:
        out = tmp_path / "bad"
        result = _cli([*EPISODES, f"policy.port={served.port}", f"output_dir={out}", "runner.workers=0", ONE_TASK],
                      tmp_path)
        served_predictions = served.model_server.predictions
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines == [f"evalharness: error: policy=vla_eval: the server DeterministicServer at "
                     f"ws://127.0.0.1:{served.port} sends action gripper as continuous_01 1-D in [0, 1], but LIBERO "
                     "with convert=none executes binary_close_positive 1-D in [-1, 1]"], result.stderr
    assert not (out / "episodes.jsonl").exists() and served_predictions == 0
