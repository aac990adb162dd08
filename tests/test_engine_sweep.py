"""Hydra multirun: one command sweeps several choices, each job into its own run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.sim


def test_sweep_over_policies_writes_one_run_per_choice(tmp_path, assets_installed):
    args = ["-m", "suite=smoke", "policy=zero,random", "suite.max_steps=2", "suite.tasks=[0]",
            "protocol.render_size=32", "video=none", "runner.workers=0"]
    proc = subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "results").iterdir() if p.name != "multirun")
    assert runs == ["libero_spatial-random-openpi", "libero_spatial-zero-openpi"]
    for run in runs:
        summary = json.loads((tmp_path / "results" / run / "summary.json").read_text())
        assert summary["totals"]["recorded"] == 1
        assert summary["metadata"]["policy"]["name"] == run.split("-")[1]
    assert list((tmp_path / "results" / "multirun").glob("*/multirun.yaml")), "the sweep's record is missing"
    assert not (tmp_path / "multirun.yaml").exists()
