"""A perturbed run with clean controls keeps both videos of every pair (the CLI, real LIBERO).

Issue 22: the perturbed episode and its clean twin used to be written to one file, so one
overwrote the other. Here each planned pair leaves two distinct, decodable videos whose
frames differ (camera and light are visual dimensions), the clean one under the name an
unperturbed run always used, and the HTML report shows the two side by side with the
drawn parameters. Tiny runs: 1 task, 2 init states, 3 steps, 32-px camera, 0 workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import imageio.v3 as iio
import numpy as np
import pytest

from evalharness.plan.spec import EpisodeSpec
from evalharness.episode.video import mp4_is_complete, video_filename

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

ARGS = ["suite=libero_spatial", "suite.tasks=[0]", "suite.init_states=[0,1]", "suite.max_steps=3", "policy=zero",
        "camera_size=32", "runner.workers=0"]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def _frames(path: Path) -> np.ndarray:
    return np.stack(list(iio.imiter(path, plugin="FFMPEG"))).astype(np.int16)


# image: fog, whose level 1 is visible through H.264 (level-1 noise or blur are near its noise floor).
RUNS = [("camera", "all", []), ("light", "failures", []), ("image", "all", ["perturb.image.kinds=[fog]"])]


@pytest.fixture(scope="module", params=RUNS, ids=lambda p: f"{p[0]}-{p[1]}")
def run(request, tmp_path_factory) -> tuple[str, Path]:
    dimension, mode, extra = request.param
    root = tmp_path_factory.mktemp(dimension)
    out = root / "run"
    _cli([*ARGS, f"video={mode}", f"perturb={dimension}", "perturb.level=1", *extra, f"output_dir={out}"], root)
    return dimension, out


def test_each_pair_writes_two_distinct_decodable_videos(run) -> None:
    dimension, out = run
    records = {r["key"]: r for r in map(json.loads, (out / "episodes.jsonl").read_text().splitlines())}
    perturbed = [r for r in records.values() if r.get("perturbation")]
    assert len(records) == 4 and len(perturbed) == 2  # 2 planned pairs
    files = sorted(p.name for p in (out / "videos").iterdir())
    assert len(files) == 4 and len({r["video"] for r in records.values()}) == 4, files
    for r in perturbed:
        clean = records[r["control_key"]]
        assert clean.get("perturbation") is None
        a, b = out / r["video"], out / clean["video"]
        assert a != b and a.is_file() and b.is_file() and mp4_is_complete(a) and mp4_is_complete(b)
        # The clean twin keeps the name an unperturbed run gives it; the perturbed one says what it is.
        outcome = "failure"  # the zero policy does not solve the task in 3 steps
        assert clean["video"] == "videos/" + video_filename(clean["suite"], clean["task_index"], clean["task_name"],
                                                            clean["init_state"], outcome)
        assert f"_s{r['seed']}_{dimension}-L1_p" in r["video"] and r["video"].endswith("_failure.mp4")
        fa, fb = _frames(a), _frames(b)
        assert fa.shape == fb.shape and fa.shape[0] == r["steps"] + 1 and fa.shape[1:] == (32, 32, 3)
        # Every frame shows the perturbation: the policy's query frames and the ones filmed
        # between queries (for image corruptions too).
        diffs = np.abs(fa - fb).mean(axis=(1, 2, 3))
        assert diffs.min() > 3.0, f"{dimension}: a perturbed frame looks like the clean one (mean |diff| {diffs})"


def test_the_report_shows_each_perturbed_video_beside_its_clean_twin(run, tmp_path) -> None:
    dimension, out = run
    page = tmp_path / "report.html"
    _cli(["report", str(out), "-o", str(page)], tmp_path)
    html = page.read_text()
    section = html[html.index("Perturbed episodes beside their clean twins"):]
    rows = section.split("<tr>")[2:]  # after the header row
    records = {r["key"]: r for r in map(json.loads, (out / "episodes.jsonl").read_text().splitlines())}
    perturbed = sorted((r for r in records.values() if r.get("perturbation")), key=lambda r: r["init_state"])
    assert len(rows) == len(perturbed) == 2
    for row, r in zip(rows, perturbed):
        sources = [unquote(s.split('"')[0]) for s in row.split('<video controls muted playsinline preload="metadata" src="')[1:]]
        expected = [r["video"], records[r["control_key"]]["video"]]
        assert [(page.parent / s).resolve() for s in sources] == [(out / v).resolve() for v in expected]
        params = r["perturbation"]["dimensions"][dimension]["params"]
        assert f"{dimension} L1:" in row
        for name in params:  # every drawn parameter is shown
            assert f"{name}=" in row, (name, row)


def test_clean_unperturbed_video_names_are_todays() -> None:
    """The name the recorder gives an unperturbed spec is the one it gave before issue 22."""
    from evalharness.episode.video_names import video_name

    spec = EpisodeSpec("libero_goal", 2, "open_the_middle_drawer_of_the_cabinet", "open it", 7, 0, "ctx")
    assert video_name(spec, "success") == "libero_goal_t02_open_the_middle_drawer_of_the_cabinet_init007_success.mp4"
