"""table / gate / report on two real short LIBERO runs: the scripted policy vs the zero policy.

Both runs evaluate the same 5 episodes (libero_object task 0, init states 0-4) at a 64 px
camera with a 160-step cap (scripted needs 151), so the answer is known: scripted solves every episode, zero
none, and 5 discordant pairs give an exact McNemar p of 1/32: a regression. The zero policy
returns 40-action chunks run whole (``protocol.replan_steps=40`` for both runs; the scripted
policy returns one action at a time, so it is unaffected) to render its cameras 4 times an
episode instead of 32: the test stays short.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evalharness.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
COMMON = ["suite=libero_object", "suite.tasks=[0]", "suite.episodes_per_task=5", "suite.max_steps=160",
          "camera_size=64", "video=none", "runner.workers=0", "protocol.replan_steps=40"]

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory, assets_installed):
    out = tmp_path_factory.mktemp("real")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    runs = {}
    for name, policy in (("scripted", ["policy=scripted"]), ("zero", ["policy=zero", "policy.horizon=40"])):
        run_dir = out / name
        proc = subprocess.run([sys.executable, "-m", "evalharness", *COMMON, *policy, f"output_dir={run_dir}"],
                              capture_output=True, text=True, timeout=600, cwd=out, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = run_dir
    return runs


def _normalize(text: str) -> str:
    """The assets footnote depends on the installed archive; everything else is fixed."""
    return re.sub(r"(<sup>\w</sup> |\\textsuperscript\{\w\}~)assets[^\n]*", r"\1<assets>", text)


@pytest.mark.parametrize("fmt", ["md", "latex"])
def test_table_of_real_runs_matches_golden(real_runs, capsys, fmt):
    assert main(["table", str(real_runs["scripted"]), str(real_runs["zero"]), "--format", fmt]) == 0
    text = _normalize(capsys.readouterr().out)
    name = f"table_real.{'md' if fmt == 'md' else 'tex'}"
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / name).write_text(text)
    assert text == (GOLDEN / name).read_text()


def test_gate_on_real_runs_says_regressed(real_runs, capsys):
    code = main(["gate", "--baseline", str(real_runs["scripted"]), "--candidate", str(real_runs["zero"])])
    out = capsys.readouterr().out
    assert code == 1
    assert "| 5/5 (100.0%) | 0/5 (0.0%) |" in out and "McNemar exact (paired), b=5 c=0 | 0.0312 | **regressed**" in out
    # The other way round it is an improvement, and the gate passes.
    assert main(["gate", "--baseline", str(real_runs["zero"]), "--candidate", str(real_runs["scripted"])]) == 0
    assert "**improved**" in capsys.readouterr().out


def test_report_of_real_runs(real_runs, tmp_path):
    page = tmp_path / "report.html"
    assert main(["report", str(real_runs["scripted"]), str(real_runs["zero"]), "-o", str(page)]) == 0
    html = page.read_text()
    assert html.count('class="outcome-success"') == 5 and html.count('class="outcome-failure"') == 5
    assert "Partial" not in html and 'id="chart-per-task"' in html
