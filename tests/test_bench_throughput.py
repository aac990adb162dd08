"""``evalharness bench --quick`` runs every section end to end; its figures are printed.

The figures are not asserted (timing belongs to the bench, read on a quiet machine);
the test checks that the JSON holds every field with a sane type, and the two identity
checks the bench makes on the way (fast vs robosuite physics, render path vs
``MjSim.render``), which are correctness, not speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
           "EVALHARNESS_BENCH_CACHE": str(cwd / "bench-cache.json")}  # not the user's cache (--dry-run reads it)
    return subprocess.run([sys.executable, "-m", "evalharness", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def _number(value, low: float = 0.0) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and value >= low


@pytest.mark.sim
def test_quick_bench_writes_every_figure(tmp_path, assets_installed):
    out = tmp_path / "bench.json"
    result = _cli("--quick", "--json", str(out), cwd=tmp_path)
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "side by side" in result.stdout and "ratio" in result.stdout
    figures = json.loads(out.read_text())

    for side in ("plain_loop", "harness"):
        part = figures[side]
        for key in ("env_steps", "episodes", "loop_s", "wall_s", "steps_per_s", "steps_per_s_end_to_end", "env_builds_per_task"):
            assert _number(part[key]), (side, key, part[key])
        assert part["env_steps"] == figures["setup"]["episodes"] * (figures["setup"]["max_steps"] + figures["setup"]["settle_steps"])
        assert all(_number(v) for v in part["split_ms_per_step"].values()), part["split_ms_per_step"]
    assert {"physics", "render", "preprocess", "policy"} <= set(figures["plain_loop"]["split_ms_per_step"])
    assert {"physics", "render", "policy", "harness_overhead"} <= set(figures["harness"]["split_ms_per_step"])
    assert _number(figures["plain_loop"]["peak_rss_mb"], 100)
    assert figures["plain_loop"]["model_rebuilds_per_task"] == 1 + figures["setup"]["episodes"]
    assert all(_number(v, 100) for v in figures["harness"]["peak_rss_mb_per_worker"])
    assert _number(figures["speedup"]) and _number(figures["speedup_end_to_end"])

    physics = figures["physics"]
    assert _number(physics["robosuite_ms_per_step"]) and _number(physics["fast_ms_per_step"])
    assert physics["identical_final_state"] is True
    assert figures["frame"]["identical"] is True
    assert _number(figures["frame"]["robosuite_ms_both_cameras"]) and _number(figures["frame"]["harness_ms_both_cameras"])

    parallel = figures["parallel"]
    assert [p["workers"] for p in parallel] == list(range(1, figures["setup"]["workers"] + 1))
    assert all(_number(p[k]) for p in parallel for k in ("efficiency", "efficiency_in_episodes", "steps_per_s_end_to_end"))
    off = figures["cameras_off"]
    assert all(_number(off[k]) for k in ("bare_steps_per_s", "bare_steps_per_s_in_worker", "harness_steps_per_s"))
    assert isinstance(off["overhead"], float)
    assert set(figures["targets"]) == {
        "speedup_at_least_4x", "efficiency_at_least_90pct_one_worker_per_core", "overhead_at_most_10pct_cameras_off",
    }
    assert all(v is None or isinstance(v, bool) for v in figures["targets"].values())
    assert _number(figures["machine"]["load_1min_start"]) and figures["machine"]["cores"] >= 1


@pytest.mark.parametrize(("args", "needle"), [(["--tasks", "99"], "--tasks '99'"), (["--size", "3"], "--size 3"),
                                              (["--workers", "0"], "--workers 0"), (["--tasks", "a"], "--tasks 'a'")])
def test_bad_bench_flags_are_one_line(tmp_path, args, needle):
    result = _cli(*args, "--quick", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalharness: error:") and needle in lines[0], result.stderr
