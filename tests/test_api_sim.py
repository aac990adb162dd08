"""evalharness.evaluate / Evaluator on real LIBERO (2 tasks x 1 init state, 10 steps, 64 px).

- An in-memory model (the reference network's tokens checkpoint, loaded in this process)
  evaluated with 0 workers and with 2 worker processes gives the action fingerprints of the
  same weights run through the CLI with ``policy=checkpoint``. With workers the model is
  served from this process; the workers report that they never imported torch.
- An ``Evaluator`` called 3 times on the same 2 tasks with 2 workers builds 2 envs in all
  (each worker keeps its task's env), and writes one folder per call under its parent.
- A small ``torch.nn.Module`` defined here, wrapped by ``CallablePolicy``: 0 and 2 workers
  agree; the same digest resumes (nothing reruns), a changed digest reruns in a new folder.
- An exception raised by the caller between calls leaves no worker process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import evalharness
from evalharness.errors import UserInputError
from evalharness.results.schema import Summary

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

ROOT = Path(__file__).resolve().parents[1]
RUN = {"suite": "libero_object", "tasks": [0, 1], "episodes": 1, "max_steps": 10, "camera_size": 64, "video": "none"}
CLI_RUN = ["suite=libero_object", "suite.tasks=[0,1]", "suite.episodes_per_task=1", "suite.max_steps=10",
           "camera_size=64", "video=none"]


def _fingerprints(out: Path) -> dict[tuple[int, int], str]:
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert all(r["error_kind"] is None for r in records), records
    return {(r["task_index"], r["init_state"]): r["action_fingerprint"] for r in records}


@pytest.fixture(scope="module")
def ckpt(reference_checkpoints) -> Path:
    return reference_checkpoints["tokens"]


@pytest.fixture(scope="module")
def cli_fingerprints(ckpt, tmp_path_factory) -> dict[tuple[int, int], str]:
    out = tmp_path_factory.mktemp("cli") / "run"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "evalharness", "policy=checkpoint", f"policy.path={ckpt}",
                           "policy.device=cpu", *CLI_RUN, "runner.workers=0", f"output_dir={out}"],
                          cwd=out.parent, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fingerprints = _fingerprints(out)
    assert len(fingerprints) == 2 and len(set(fingerprints.values())) == 2
    return fingerprints


@pytest.fixture(scope="module")
def model(ckpt):
    """The checkpoint's weights as a torch.nn.Module in this process, behind its policy."""
    from evalharness.policies.checkpoint import CheckpointPolicy

    policy = CheckpointPolicy(str(ckpt), device="cpu")
    policy.load()
    return policy, evalharness.weights_digest(policy._shared.model)


def test_in_memory_with_0_and_2_workers_equals_the_checkpoint_cli(model, cli_fingerprints, tmp_path) -> None:
    policy, digest = model
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        summary = evalharness.evaluate(policy, label="step0", weights_digest=digest, workers=workers,
                                       output_dir=out, **RUN)
        assert isinstance(summary, Summary) and summary.totals.recorded == 2 and summary.metadata.workers == workers
        assert _fingerprints(out) == cli_fingerprints, workers
        identity = json.loads((out / "summary.json").read_text())["metadata"]["policy"]
        assert identity["in_memory"] == {"label": "step0", "weights_sha256": digest}
        assert ("policy_server" in identity) is (workers > 0)


def test_evaluator_keeps_workers_and_envs_warm_over_3_calls(model, ckpt, cli_fingerprints, tmp_path) -> None:
    policy, digest = model
    times = []
    with evalharness.Evaluator(tmp_path / "curve", workers=2, **RUN) as ev:
        for step in range(3):
            started = time.monotonic()
            summary = ev.run(policy, label=f"step{step}", weights_digest=digest)
            times.append(time.monotonic() - started)
            assert summary.totals.recorded == 2
            assert ev.env_builds == 2, (step, ev.env_builds)  # one task per worker, built on the first call
            assert len(ev.worker_pids) == 2
        assert not ev.workers_imported_torch  # the model stayed here: the workers only ran the MinT client
        pids = ev.worker_pids
        # The control: the same weights built from config load torch in the (same, warm) workers.
        ev.run("checkpoint", label="from-config", overrides=[f"policy.path={ckpt}", "policy.device=cpu"])
        assert ev.workers_imported_torch and ev.env_builds == 2 and sorted(ev.worker_pids) == sorted(pids)
    assert sorted(p.name for p in (tmp_path / "curve").iterdir()) == [
        "from-config", *(f"step{s}-{digest[:12]}" for s in range(3))]
    for run in ev.runs:
        assert _fingerprints(run) == cli_fingerprints
    assert not [pid for pid in pids if _alive(pid)]
    print(f"evaluator call times (s): {[round(t, 1) for t in times]}")


class TinyNet:
    """Built lazily so that collecting this module does not import torch."""

    @staticmethod
    def make(seed: int):
        import torch

        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 14), torch.nn.Tanh())


def _callable_policy(net):
    import torch

    def act(observation):
        with torch.no_grad():
            out = net(torch.from_numpy(np.asarray(observation["state"], dtype=np.float32)[None]))
        return out.reshape(2, 7).double().numpy()  # a chunk of 2 LIBERO actions in [-1, 1]

    return evalharness.CallablePolicy(act, name="tiny", cameras=())


def test_a_callable_module_resumes_on_the_same_digest_and_reruns_on_a_new_one(tmp_path, monkeypatch) -> None:
    import torch

    monkeypatch.chdir(tmp_path)  # the default run folder is results/<run_name>, as on the CLI
    net = TinyNet.make(0)
    policy = _callable_policy(net)
    one = {**RUN, "tasks": [0], "init_states": [0, 1], "episodes": None}
    digest = evalharness.weights_digest(net)
    first = evalharness.evaluate(policy, label="tiny", weights_digest=digest, workers=0, **one)
    folder = tmp_path / "results" / f"libero_object-tiny-{digest[:12]}-openpi"
    lines = (folder / "episodes.jsonl").read_bytes()
    served = evalharness.evaluate(policy, label="tiny", weights_digest=digest, workers=2, output_dir="served", **one)
    assert _fingerprints(tmp_path / "served") == _fingerprints(folder)  # the module served to 2 workers
    assert first.totals.recorded == served.totals.recorded == 2
    again = evalharness.evaluate(policy, label="tiny", weights_digest=digest, workers=0, **one)
    assert (folder / "episodes.jsonl").read_bytes() == lines and again.totals.recorded == 2  # resumed: nothing reran
    with torch.no_grad():
        net[2].bias += 0.5
    changed = evalharness.weights_digest(net)
    assert changed != digest
    with pytest.raises(UserInputError, match="holds a run with another configuration"):
        evalharness.evaluate(policy, label="tiny", weights_digest=changed, workers=0, output_dir=folder, **one)
    rerun = evalharness.evaluate(policy, label="tiny", weights_digest=changed, workers=0, **one)
    new_folder = tmp_path / "results" / f"libero_object-tiny-{changed[:12]}-openpi"
    assert rerun.totals.recorded == 2 and rerun.metadata.context != first.metadata.context
    assert _fingerprints(new_folder) != _fingerprints(folder)
    assert (folder / "episodes.jsonl").read_bytes() == lines


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_an_exception_between_calls_leaves_no_worker(tmp_path) -> None:
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="the trainer failed"):
        with evalharness.Evaluator(tmp_path / "runs", workers=2, **{**RUN, "max_steps": 3}) as ev:
            ev.run("zero", label="zero")
            pids = ev.worker_pids
            assert len(pids) == 2 and all(_alive(p) for p in pids)
            raise RuntimeError("the trainer failed")
    assert not [pid for pid in pids if _alive(pid)]
    assert (tmp_path / "runs" / "zero" / "summary.json").is_file()  # the finished call's episodes are kept


def test_the_readme_training_loop_example_runs_as_written(tmp_path) -> None:
    """The README's example is examples/evaluate_during_training.py's code; run as a user would."""
    example = (ROOT / "examples" / "evaluate_during_training.py").read_text()
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Evaluating during training", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = example.split('"""', 2)[2].strip()
    assert [line for line in block.splitlines() if line.strip()] == [line for line in code.splitlines() if line.strip()]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "evaluate_during_training.py")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 1000", "step 2000", "step 3000"]
    assert all(line.endswith("env builds so far 2") for line in lines), lines  # built on the first call only
    assert "| task |" not in proc.stdout and "[1/4]" not in proc.stderr  # quiet: no tables, no progress lines
    runs = sorted(p.name for p in (tmp_path / "results" / "training").iterdir())
    assert len(runs) == 3 and all(name.startswith("step") for name in runs)
