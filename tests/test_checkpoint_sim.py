"""``policy=checkpoint`` in real LIBERO episodes (random reference weights, fixed seed, 64 px).

- the same episodes in-process (``runner.workers=0``) and with 2 worker processes give
  identical action fingerprints: each process loads the weights itself and the model's
  answers do not depend on where it runs; the 2-worker run also records raw outputs
  (``record.raw_outputs=true``), which must keep the checkpoint's declared pipeline;
- a checkpoint whose tensors do not fit its model stops a run with workers with one line
  and exit status 2 (found where the weights load, in the worker).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

ROOT = Path(__file__).resolve().parents[1]
# Two tasks, one init state each: with 2 workers the two episodes run in two processes. Two
# tasks (not two init states of one task) so that the random-weight model's greedy tokens
# surely differ between the episodes: its argmax can ignore the small image differences
# between init states (it did with the original assets), not a different instruction.
RUN = ["suite=libero_object", "suite.tasks=[0,1]", "suite.episodes_per_task=1", "suite.max_steps=10", "camera_size=64",
       "video=none"]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _records(out: Path) -> dict[str, dict]:
    return {r["key"]: r for r in map(json.loads, (out / "episodes.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def ckpt(reference_checkpoints) -> Path:
    return reference_checkpoints["tokens"]


@pytest.fixture(scope="module")
def runs(ckpt, tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("runs")
    outs = {}
    for workers in (0, 2):
        out = root / f"w{workers}"
        record = ["record.raw_outputs=true"] if workers else []
        proc = _cli(["policy=checkpoint", f"policy.path={ckpt}", "policy.device=cpu", *RUN, *record,
                     f"runner.workers={workers}", f"output_dir={out}"], root)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        outs[workers] = out
    return outs


def test_in_process_and_two_workers_give_identical_action_fingerprints(runs):
    inline, workers = _records(runs[0]), _records(runs[2])
    assert set(inline) == set(workers) and len(inline) == 2
    for key, record in inline.items():
        other = workers[key]
        assert record["error_kind"] is None and other["error_kind"] is None, (record, other)
        assert record["action_fingerprint"] == other["action_fingerprint"]
        assert (record["steps"], record["success"]) == (other["steps"], other["success"]) == (10, False)
        assert record["policy_stats"] == {"queries": 2.0}  # 10 steps, 5 actions per chunk (openpi protocol)
    # the two episodes got different actions: the model's answer depends on what it is given
    assert len({r["action_fingerprint"] for r in inline.values()}) == 2


def test_recorded_raw_outputs_are_the_models_tokens(runs):
    """The recorder sits between the model and its declared pipeline: the sidecar holds token
    ids while the episodes (equal fingerprints above) executed the decoded actions."""
    from evalharness.policies.raw_output_recorder import decode_output
    from evalharness.results.raw_output_log import load_raw_outputs

    episodes = load_raw_outputs(runs[2])
    assert len(episodes) == 2
    for episode in episodes:
        outputs = [decode_output(o) for o in episode.outputs]
        assert len(outputs) == 2 and all(o.dtype.kind == "i" and o.ndim == 1 for o in outputs)


def test_the_run_records_the_checkpoint_identity(runs, ckpt):
    identity = json.loads((runs[0] / "run.json").read_text())["context_inputs"]["policy"]
    assert identity["name"] == "checkpoint" and set(identity["files_sha256"]) == {
        "policy.yaml", "model.safetensors", "norm_stats.json"}
    assert identity["action_pipeline"]["decoder"]["name"] == "mint_uniform"
    assert identity["pipeline_source"]["normalize"] == "declared"


def test_weights_that_do_not_fit_stop_a_run_with_workers_in_one_line(ckpt, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    spec = bad / "policy.yaml"
    spec.write_text(spec.read_text().replace("embed: 64", "embed: 48"))
    proc = _cli(["policy=checkpoint", f"policy.path={bad}", "policy.device=cpu", *RUN, "suite.episodes_per_task=1",
                 "runner.workers=1", f"output_dir={tmp_path / 'out'}"], tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert "model.safetensors tensor 'camera_embedding' has shape [3, 64]" in lines[0]
    assert "expects [3, 48]" in lines[0]
    assert not (tmp_path / "out" / "episodes.jsonl").exists() or not (tmp_path / "out" / "episodes.jsonl").read_text()
