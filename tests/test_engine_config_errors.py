"""Bad configuration values on the command line: one line on stderr naming the key, the
value and what is allowed; exit status 2; no traceback; nothing written.

Each case runs the real ``evalharness`` command in a subprocess. None of them reaches the
simulator (they fail while the run is being configured), but some import LIBERO first,
so the assets must be installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# A valid, tiny run; each case adds one bad value (a later override wins in Hydra).
BASE = ["suite=smoke", "policy=zero", "video=none", "runner.workers=0", "protocol.render_size=32", "suite.max_steps=2"]

# (override(s), texts the single error line must contain: key, value, allowed values)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "suite": (["suite=nope"], ["suite", "'nope'", "allowed", "libero_spatial", "libero_90"]),
    "policy": (["policy=nope"], ["policy", "'nope'", "allowed", "zero", "random"]),
    "workers": (["runner.workers=-1"], ["runner.workers=-1", "allowed", "auto", "positive integer"]),
    "episodes_per_task": (["suite.episodes_per_task=51"], ["suite.episodes_per_task=51", "allowed", "1..50"]),
    "tasks": (["suite.tasks=[99]"], ["suite.tasks=[99]", "99", "allowed", "0..9"]),
    "replan_steps": (["protocol.replan_steps=0"], ["protocol.replan_steps=0", "greater than or equal to 1"]),
    "video_mode": (["video.mode=sometimes"], ["video.mode", "'sometimes'", "allowed", "none", "failures", "first_n", "all"]),
    # more values a user can get wrong
    "init_states": (["suite.init_states=[50]"], ["suite.init_states=[50]", "allowed", "0..49"]),
    "no_tasks": (["suite.tasks=[]"], ["suite.tasks=[]", "allowed"]),
    "max_steps": (["suite.max_steps=0"], ["suite.max_steps=0", "allowed", ">= 1"]),
    "camera_size": (["camera_size=3"], ["camera_size=3", "allowed", "8..2048"]),
    "fast_physics": (["fast_physics=maybe"], ["fast_physics='maybe'", "allowed", "true, false"]),
    "max_attempts": (["runner.max_attempts=0"], ["runner.max_attempts=0", "allowed", ">= 1"]),
    "video_fps": (["video=all", "video.fps=-5"], ["video.fps=-5", "allowed", ">= 1"]),
    "first_n": (["video=first_n", "video.first_n=0"], ["video.first_n=0", "allowed", ">= 1"]),
    "seed": (["protocol.seed=-1"], ["protocol.seed=-1", "greater than or equal to 0"]),
    "faulty_mode": (["policy=faulty", "policy.mode=segfault"], ["policy.mode='segfault'", "allowed", "raise", "nan", "kill_process"]),
    # a mistyped key and broken override syntax (Hydra's own errors span several lines)
    "unknown_key": (["suite.max_step=3"], ["'suite.max_step'", "does not exist", "allowed keys in suite", "max_steps"]),
    "bad_syntax": (["suite.tasks=[0,"], ["override not valid", "[0,"]),
}


def _cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def results(tmp_path_factory, assets_installed) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    root = tmp_path_factory.mktemp("config_errors")

    def run(name: str):
        out = root / name / "out"
        (root / name).mkdir()
        return name, (_cli([*BASE, *CASES[name][0], f"output_dir={out}"], cwd=root / name), out)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, CASES))


def _assert_one_line_error(proc: subprocess.CompletedProcess, must_contain: list[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, f"exit {proc.returncode}; stderr:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    line = lines[0]
    assert line.startswith("evalharness: error: "), line
    for text in must_contain:
        assert text in line, f"{text!r} missing from: {line}"
    return line


@pytest.mark.parametrize("name", list(CASES))
def test_bad_value_is_one_line_exit_2_and_writes_nothing(results, name: str) -> None:
    proc, out = results[name]
    _assert_one_line_error(proc, CASES[name][1])
    assert not out.exists(), f"{out} was created for a run that never started: {sorted(p.name for p in out.iterdir())}"


def test_missing_assets_are_one_line_naming_the_fix(tmp_path: Path) -> None:
    home = tmp_path / "empty_home"
    home.mkdir()
    out = tmp_path / "out"
    proc = _cli([*BASE, f"output_dir={out}"], cwd=tmp_path, env={"EVALHARNESS_HOME": str(home)})
    line = _assert_one_line_error(proc, ["assets", "evalharness setup"])
    assert str(home) in line
    assert not out.exists()
