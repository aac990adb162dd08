"""Perturbed runs end to end (the CLI, real LIBERO): determinism across worker counts, resume.

- 0 (killed with SIGKILL, then resumed) and 2 workers record the same perturbed episodes (keys, drawn and applied parameters,
  outcomes) and the same clean twins;
- the killed run resumes without redoing or duplicating an episode, and a rerun of the
  finished run runs nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from proctable import kill_group_after_first_record

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

ARGS = ["suite=libero_spatial", "suite.tasks=[0]", "suite.episodes_per_task=2", "suite.max_steps=6", "policy=random",
        "video=none", "protocol.render_size=32", "perturb=[robot_init,camera]", "perturb.level=2"]


def _cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "evalharness", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(_cmd(args), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def _records(run_dir: Path) -> dict[str, dict[str, Any]]:
    lines = (run_dir / "episodes.jsonl").read_text().splitlines()
    records = {json.loads(line)["key"]: json.loads(line) for line in lines}
    assert len(records) == len(lines), "an episode was recorded twice"
    return records


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Any]:
    """A run with 2 workers, and one in-process (0 workers) killed with SIGKILL and resumed."""
    root = tmp_path_factory.mktemp("perturbed")
    two = root / "w2"
    _run([*ARGS, "runner.workers=2", f"output_dir={two}"], root)
    zero = root / "w0"
    args = [*ARGS, "runner.workers=0", f"output_dir={zero}"]
    episodes = zero / "episodes.jsonl"
    proc = subprocess.Popen(_cmd(args), cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        kill_group_after_first_record(proc, episodes)
    finally:
        proc.communicate(timeout=60)
    data = episodes.read_bytes()
    before = data[: data.rfind(b"\n") + 1]
    _run(args, root)
    after = episodes.read_bytes()
    _run(args, root)
    return {2: two, 0: zero, "killed": proc.returncode, "before": before, "after": after, "rerun": episodes.read_bytes()}


def test_same_perturbed_episodes_with_0_and_2_workers(runs) -> None:
    a, b = _records(runs[0]), _records(runs[2])
    assert set(a) == set(b) and len(a) == 4
    perturbed = [r for r in a.values() if r.get("perturbation")]
    assert len(perturbed) == 2 and {r["control_key"] for r in perturbed} == set(a) - {r["key"] for r in perturbed}
    for key, r in a.items():
        for field in ("success", "steps", "error_kind", "action_fingerprint", "perturbation", "control_key"):
            assert r.get(field) == b[key].get(field), (field, key)
    for r in perturbed:
        assert r["error_kind"] is None
        assert set(r["perturbation"]["dimensions"]) == {"camera", "robot_init"}
        assert len(r["perturbation"]["applied"]["robot_init"]["start_qpos"]) == 7
    summary = json.loads((runs[2] / "summary.json").read_text())
    [group] = summary["robustness"]
    assert group["dimension"] == "camera+robot_init" and group["level"] == 2 and group["pairs"] == 2
    assert "Robustness (perturbed vs same-seed clean control)" in (runs[2] / "summary.md").read_text()


def test_killed_perturbed_run_resumes_without_redoing_anything(runs) -> None:
    assert runs["killed"] == -signal.SIGKILL, "the run ended before the kill"
    assert 1 <= runs["before"].count(b"\n") < 4
    assert runs["after"].startswith(runs["before"]), "episodes recorded before the kill were rewritten"
    assert len(_records(runs[0])) == 4  # each planned episode exactly once
    assert runs["rerun"] == runs["after"], "a rerun of a finished run ran episodes again"
