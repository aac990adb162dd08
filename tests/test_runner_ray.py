"""``runner=ray`` on a local Ray instance (one per module: Ray starts slowly), real LIBERO.

- the Ray runner records the same episodes, outcomes, action fingerprints and video
  frames as the local runner, even though one of its worker processes is SIGKILLed
  mid-episode: no episode is lost or duplicated, the killed one is retried
  (``attempts == 2``); the driver writes the videos from the bytes actors return; a rerun
  resumes and runs nothing (one Ray run serves all of these: Ray is slow to start);
- a node whose simulator differs from the driver's is refused with one line;
- without Ray installed, ``runner=ray`` is one line naming the extra.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evalharness.policies.baselines import RandomPolicy
from proctable import cmdline, descendants

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]
ray = pytest.importorskip("ray")

TESTS = Path(__file__).parent
# Ray authenticates cluster clients with a token: the test instance and the runs that join
# it share one made up here (the test instance's, nobody's credential).
RAY_TOKEN = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}


class SlowRandomPolicy(RandomPolicy):
    """The random policy (same identity, so the same episode keys and actions), slower, so
    that a worker can be killed while an episode runs."""

    def act(self, observation):
        time.sleep(0.05)
        return super().act(observation)


ARGS = ["suite=libero_object", "suite.tasks=[0,1]", "suite.episodes_per_task=2", "suite.max_steps=20",
        "policy=random", f"policy._target_={__name__}.SlowRandomPolicy", "video=all", "protocol.render_size=32"]


def _env() -> dict[str, str]:
    pythonpath = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": pythonpath, **RAY_TOKEN}


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evalharness", *args], cwd=cwd, env=env or _env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> str:
    _, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr[-4000:]
    return stderr


def _records(out: Path) -> dict[str, dict]:
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    by_key = {r["key"]: r for r in records}
    assert len(by_key) == len(records), "an episode was recorded twice"
    return by_key


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray instance (2 CPUs, a small object store) that every run here joins."""
    script = ("import sys, ray; ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False, "
              "logging_level='WARNING'); print(ray.get_runtime_context().gcs_address, flush=True); sys.stdin.read(); "
              "ray.shutdown()")
    head = subprocess.Popen([sys.executable, "-c", script], env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=tmp_path_factory.mktemp("ray"))
    address = head.stdout.readline().strip()
    if not address:
        head.kill()
        pytest.fail("a local Ray instance did not start")
    yield head, address
    head.stdin.close()
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        head.kill()
        head.wait()


def _kill_an_actor_mid_episode(head: subprocess.Popen, proc: subprocess.Popen, out: Path) -> int | None:
    """Once an episode is recorded, SIGKILL a Ray worker process that is running one."""
    deadline = time.monotonic() + 300
    episodes = out / "episodes.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if episodes.exists() and episodes.read_text().count("\n") >= 1:
            # Ray titles an actor's process with the method it is running.
            busy = [pid for pid in descendants(head.pid) if cmdline(pid).startswith("ray::EpisodeActor.run_item")]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                return busy[0]
        time.sleep(0.05)
    return None


@pytest.fixture(scope="module")
def local_and_ray(cluster, tmp_path_factory) -> dict:
    """The same plan on the local runner and on Ray, side by side; one Ray worker process is
    killed mid-episode. Then the Ray run is started again (a resume with nothing left)."""
    head, address = cluster
    root = tmp_path_factory.mktemp("compare")
    runs = {"local": ["runner=local", "runner.workers=1"], "ray": ["runner=ray", f"runner.address={address}", "runner.workers=2"]}
    procs = {name: _start([*ARGS, *extra, f"output_dir={root / name}"], root) for name, extra in runs.items()}
    try:
        killed = _kill_an_actor_mid_episode(head, procs["ray"], root / "ray")
    finally:
        for proc in procs.values():
            _finish(proc)
    rerun = _finish(_start([*ARGS, *runs["ray"], f"output_dir={root / 'ray'}"], root))
    return {"local": root / "local", "ray": root / "ray", "killed": killed, "rerun_stderr": rerun}


def test_ray_records_the_local_runners_outcomes_fingerprints_and_frames(local_and_ray) -> None:
    import imageio.v3 as iio

    local, ray_run = _records(local_and_ray["local"]), _records(local_and_ray["ray"])
    assert set(local) == set(ray_run) and len(local) == 4
    for key, a in local.items():
        b = ray_run[key]
        for field in ("init_state", "success", "steps", "error_kind", "action_fingerprint"):
            assert a[field] == b[field], f"{field} differs for task {a['task_index']} init {a['init_state']}"
        assert a["error_kind"] is None and a["steps"] == 20
        # The driver wrote the video from the bytes the actor returned: frame for frame the local one.
        frames_a = list(iio.imiter(local_and_ray["local"] / a["video"], plugin="FFMPEG"))
        frames_b = list(iio.imiter(local_and_ray["ray"] / b["video"], plugin="FFMPEG"))
        assert len(frames_a) == len(frames_b) == 21
        assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b))
    assert len({r["action_fingerprint"] for r in local.values()}) == 4
    summary = json.loads((local_and_ray["ray"] / "summary.json").read_text())
    assert summary["complete"] is True and summary["metadata"]["config"]["runner"]["_target_"].endswith("RayRunner")


def test_killing_a_ray_worker_mid_episode_loses_and_duplicates_nothing(local_and_ray) -> None:
    assert local_and_ray["killed"] is not None, "no Ray worker was caught mid-episode"
    records = list(_records(local_and_ray["ray"]).values())  # each key once (checked there)
    assert len(records) == 4, "each planned episode exactly once"
    # The killed worker's episode ran again on a new actor (to the local outcome, above).
    assert sorted(r["attempts"] for r in records) == [1, 1, 1, 2]
    assert not (local_and_ray["ray"] / ".scratch").exists()


def test_a_ray_rerun_resumes_and_runs_nothing(local_and_ray) -> None:
    assert "resuming: 4/4 episodes already recorded" in local_and_ray["rerun_stderr"]
    assert "libero_object task" not in local_and_ray["rerun_stderr"]


REFUSAL = """
import sys
from evalharness.engine import ray_runner
from evalharness.errors import UserInputError
from evalharness.results.metadata import simulator_identity
from evalharness.plan.spec import EpisodeSpec
from evalharness.engine.worker import WorkerConfig, WorkItem

driver = {**simulator_identity(), "mujoco": "0.0.1"}  # the driver claims another MuJoCo
ray_runner.simulator_identity = lambda: driver
from evalharness.config.protocol import Protocol
import yaml
from evalharness.config.conf import CONF_DIR
protocol = Protocol.model_validate(yaml.safe_load((CONF_DIR / "protocol" / "openpi.yaml").read_text()))
config = WorkerConfig(policy={"_target_": "evalharness.policies.baselines.ZeroPolicy"}, pipeline={}, protocol=protocol,
                      run_dir=sys.argv[2], video_fps=10, camera_size=32)
spec = EpisodeSpec("libero_object", 0, "t", "do it", 0, 7, "c")
recorded = []
try:
    ray_runner.RayRunner(config, workers=1, address=sys.argv[1]).run([WorkItem(spec, "no")], recorded.append)
except UserInputError as exc:
    print(f"refused: {exc}")
print(f"recorded: {len(recorded)}")
"""


def test_a_node_with_another_simulator_is_refused_with_one_line(cluster, tmp_path) -> None:
    """The actors (other processes) compare their real versions with a driver claiming
    another MuJoCo; the run refuses before any episode."""
    from evalharness.results.metadata import simulator_identity

    _, address = cluster
    proc = subprocess.run([sys.executable, "-c", REFUSAL, address, str(tmp_path)], env=_env(), capture_output=True,
                          text=True, timeout=300)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines[-1] == "recorded: 0", proc.stderr[-3000:]
    refused = [line for line in lines if line.startswith("refused: ")]
    assert len(refused) == 1, proc.stdout
    assert f"mujoco {simulator_identity()['mujoco']!r} (driver: '0.0.1')" in refused[0]
    assert "Ray worker on " in refused[0] and "install the same simulator and assets on every node" in refused[0]


def test_without_ray_runner_ray_is_one_line_naming_the_extra(tmp_path) -> None:
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(fake.parent), env["PYTHONPATH"]])
    proc = _start(["runner=ray", "suite=smoke", "policy=zero", "video=none", f"output_dir={tmp_path / 'run'}"], tmp_path, env)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == ["evalharness: error: runner=ray needs Ray, which is not installed; install it with: "
                     "pip install 'evalharness[ray]'"]
    assert not (tmp_path / "run" / "episodes.jsonl").exists()


def test_each_actor_renders_on_the_gpu_ray_assigns_it() -> None:
    """No GPU here: the choice itself (robosuite requires an id listed in CUDA_VISIBLE_DEVICES,
    which Ray sets to the assigned ids)."""
    from evalharness.engine.ray_runner import render_device

    assert render_device([]) is None
    assert render_device([3]) == "3" and render_device(["1", "2"]) == "1"
