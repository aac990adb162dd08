"""Learning curves: runs that record a training step, read as a folder by table, report and gate.

Three runs of one policy at steps 1000, 2000, 3000 (written by the same writer as a run,
``write_run``), in an Evaluator-like parent folder whose names do not sort by step: the
table orders them by step, the report draws success against step (checked in real headless
Chromium), and gate compares any two of them.
"""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

from evalharness.cli import main
from evalharness.results.runs import expand_run_paths, load_runs
from factories import outcomes_records, run_metadata, write_run
from test_results_report import chromium

STEPS = {"b-late": (3000, "SSSS", "SSSF"), "c-first": (1000, "FFFF", "SFFF"), "a-mid": (2000, "SSFF", "SSFF")}


def _curve(tmp_path):
    parent = tmp_path / "training"
    for name, (step, task0, task1) in STEPS.items():
        records = (outcomes_records("libero_object", 0, task0, policy=name)
                   + outcomes_records("libero_object", 1, task1, policy=name))
        meta = {**run_metadata("in_memory"), "training_step": step, "run_name": name}
        write_run(parent / name, records, meta)
    return parent


def test_a_folder_of_runs_is_its_runs_ordered_by_step(tmp_path, capsys) -> None:
    parent = _curve(tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in expand_run_paths([str(parent)])] == ["c-first", "a-mid", "b-late"]
    runs = load_runs([str(parent)])
    assert [r.summary.metadata.training_step for r in runs] == [1000, 2000, 3000]
    assert [r.label for r in runs] == ["in_memory (step 1000)", "in_memory (step 2000)", "in_memory (step 3000)"]
    assert main(["table", str(parent)]) == 0
    out = capsys.readouterr().out
    assert out.index("step 1000") < out.index("step 2000") < out.index("step 3000")


def test_the_learning_curve_report_renders_in_chromium(tmp_path, capsys) -> None:
    parent = _curve(tmp_path)
    page = tmp_path / "report.html"
    assert main(["report", str(parent), "-o", str(page)]) == 0
    dom, console = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert console == [], console
    assert "Success against training step" in dom
    match = re.search(r'<figure id="chart-learning-curve"><img alt="[^"]+" src="data:image/png;base64,([^"]+)"', dom)
    assert match
    image = Image.open(io.BytesIO(base64.b64decode(match.group(1))))
    assert image.width > 500 and image.height > 200
    single = tmp_path / "single.html"  # one run has no curve
    assert main(["report", str(parent / "a-mid"), "-o", str(single)]) == 0
    assert "chart-learning-curve" not in single.read_text()


def test_gate_compares_any_two_steps(tmp_path, capsys) -> None:
    parent = _curve(tmp_path)
    status = main(["gate", "--baseline", str(parent / "b-late"), "--candidate", str(parent / "c-first")])
    text = capsys.readouterr().out
    assert status == 1 and "REGRESSED" in text and "step 3000" in text and "step 1000" in text  # 7/8 -> 1/8
