"""Ctrl-C and a killed parent, on real runs of the ``evalharness`` command (real LIBERO).

- first SIGINT: the run stops cleanly: finished records are kept, every worker ends after
  closing its policy, the command that resumes is printed, exit status 130; the printed
  command then completes the run with nothing lost or duplicated;
- second SIGINT: the run stops at once (130), its workers with it;
- SIGKILL of the parent alone: no worker outlives it.

"Outlives" is read from the process table (/proc): every descendant of the run seen while
it ran must be gone afterwards (a zombie counts as gone: it holds no resources).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalharness.policies.baselines import ZeroPolicy
from proctable import cmdline, descendants, gone_within

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]


class SlowClosingPolicy(ZeroPolicy):
    """Holds still, slowly (so a signal lands mid-episode), and logs each close() by pid."""

    def act(self, observation):
        time.sleep(0.1)
        return super().act(observation)

    def close(self) -> None:
        with open(os.environ["CLOSE_LOG"], "a") as log:
            log.write(f"{os.getpid()}\n")


def _args(out: Path, workers: int) -> list[str]:
    return ["suite=libero_object", "suite.tasks=[0,1]", "suite.episodes_per_task=2", "suite.max_steps=20",
            "policy=zero", f"policy._target_={__name__}.SlowClosingPolicy", f"runner.workers={workers}", "video=all",
            "protocol.render_size=32", f"output_dir={out}"]


def _env(tmp: Path) -> dict[str, str]:
    pythonpath = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": pythonpath,
            "CLOSE_LOG": str(tmp / "closed.log")}


def _start(args: list[str], tmp: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evalharness", *args], cwd=tmp, env=_env(tmp), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _run_until_a_record(proc: subprocess.Popen, out: Path, workers: int) -> tuple[dict[int, int], list[int]]:
    """Wait for the first finished episode (the workers are then mid-episode); return the
    run's processes and which of them are workers."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if _lines(out / "episodes.jsonl"):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be interrupted:\n{proc.communicate()[1][-3000:]}"
    processes = descendants(proc.pid)
    workers_seen = [pid for pid in processes if "spawn_main" in cmdline(pid)]
    assert len(workers_seen) >= workers, "the run's workers are not in the process table"
    return processes, workers_seen


def test_first_sigint_stops_cleanly_and_the_printed_command_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(_args(out, workers=2), tmp_path)
    try:
        processes, workers = _run_until_a_record(proc, out, workers=2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert gone_within(processes, 10) == [], "a worker outlived the interrupted run"

    kept = (out / "episodes.jsonl").read_bytes()
    records = [json.loads(line) for line in kept.splitlines()]
    assert 1 <= len(records) < 4 and len({r["key"] for r in records}) == len(records)
    # Each worker closed its policy on the way out (the parent's one close is for the identity).
    closed = {int(pid) for pid in _lines(tmp_path / "closed.log")}
    assert set(workers) <= closed, f"workers {sorted(workers)} did not all close their policy (closed: {sorted(closed)})"

    resume = [line for line in stderr.splitlines() if "resume with: " in line]
    assert len(resume) == 1 and resume[0].startswith("evalharness: interrupted: ")
    command = shlex.split(resume[0].split("resume with: ", 1)[1])
    assert command[0] == "evalharness"
    resumed = subprocess.run([sys.executable, "-m", "evalharness", *command[1:]], cwd=tmp_path, env=_env(tmp_path),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = (out / "episodes.jsonl").read_bytes()
    assert after.startswith(kept), "records finished before the interrupt must stay as they were"
    keys = [json.loads(line)["key"] for line in after.splitlines()]
    assert len(keys) == len(set(keys)) == 4, "each planned episode exactly once"
    assert json.loads((out / "summary.json").read_text())["complete"] is True
    assert not (out / ".scratch").exists()


@pytest.fixture(scope="module")
def hard_stops(tmp_path_factory) -> dict[str, tuple[subprocess.Popen, str, dict[int, int], float]]:
    """Two runs side by side: one gets SIGINT twice, the other's parent gets SIGKILL."""
    runs = {}
    for name in ("double_sigint", "sigkill_parent"):
        tmp = tmp_path_factory.mktemp(name)
        runs[name] = (tmp, _start(_args(tmp / "run", workers=1), tmp))
    results = {}
    try:
        for name, (tmp, proc) in runs.items():
            processes, _ = _run_until_a_record(proc, tmp / "run", workers=1)
            sent = time.monotonic()
            if name == "double_sigint":
                proc.send_signal(signal.SIGINT)
                time.sleep(0.2)
                proc.send_signal(signal.SIGINT)
            else:
                proc.kill()  # the parent only, not its process group
            _, stderr = proc.communicate(timeout=60)
            results[name] = (proc, stderr, processes, time.monotonic() - sent)
    finally:
        for _, proc in runs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return results


def test_a_second_sigint_stops_at_once(hard_stops) -> None:
    proc, stderr, processes, seconds = hard_stops["double_sigint"]
    assert proc.returncode == 130, stderr[-3000:]
    assert "stopped at once" in stderr and "Traceback" not in stderr
    assert seconds < 10, "the second Ctrl-C did not stop the run at once"
    assert gone_within(processes, 10) == [], "a worker outlived the run"


def test_no_worker_outlives_a_killed_parent(hard_stops) -> None:
    proc, _, processes, _ = hard_stops["sigkill_parent"]
    assert proc.returncode == -signal.SIGKILL
    assert len(processes) >= 2  # the worker and multiprocessing's resource tracker at least
    assert gone_within(processes, 10) == [], "a worker outlived its killed parent"
