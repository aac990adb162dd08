"""``evalharness bench --chaos``: the supervisor's verdict, its process finding, and a real run.

The comparison is checked on hand-made run folders first, so that a duplicated, lost or
differing episode is shown to fail the verdict (the bench cannot pass by construction).
Then the quick mode runs for real: the CLI under SIGKILLed workers and a SIGINT,
resumed to completion and compared with a clean run of the same plan.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evalharness.bench.chaos import ChaosFigures, compare_runs, find_workers
from evalharness.episode.video import EpisodeVideo
from factories import record_fields

REPO = Path(__file__).resolve().parents[1]


def _write_run(folder: Path, records: list[dict], context: str = "ctx", extra_lines: list[str] = ()) -> None:
    folder.mkdir(parents=True)
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    (folder / "episodes.jsonl").write_text("".join(line + "\n" for line in lines))
    (folder / "run.json").write_text(json.dumps({"context": context}))
    (folder / "summary.json").write_text(json.dumps({"complete": True}))


def _plan() -> list[dict]:
    return [record_fields(key=f"k{i}", init_state=i, success=i % 2 == 0, action_fingerprint=f"{i:064x}") for i in range(6)]


def _compare(tmp_path: Path, chaos: list[dict], **kwargs) -> ChaosFigures:
    _write_run(tmp_path / "clean", _plan())
    _write_run(tmp_path / "chaos", chaos, **kwargs)
    figures = ChaosFigures(mode="test", runner="local", seed=0, kills=3, sigints=1)
    return compare_runs(tmp_path / "clean", tmp_path / "chaos", figures)


def test_identical_runs_pass(tmp_path: Path) -> None:
    chaos = [dict(r, attempts=2 if r["key"] == "k3" else 1) for reversed_ in [_plan()[::-1]] for r in reversed_]
    figures = _compare(tmp_path, chaos)
    assert figures.ok, figures.problems
    assert (figures.planned, figures.recorded, figures.duplicated, figures.lost, figures.differing) == (6, 6, 0, 0, 0)
    assert figures.retried == 1


@pytest.mark.parametrize(
    ("change", "figure", "problem"),
    [
        (lambda plan: plan + [plan[2]], "duplicated", "1 duplicated"),
        (lambda plan: plan[:-1], "lost", "1 lost"),
        (lambda plan: [dict(r, success=not r["success"]) if r["key"] == "k1" else r for r in plan], "differing", "1 differing"),
        (lambda plan: [dict(r, action_fingerprint="ab" * 32) if r["key"] == "k4" else r for r in plan], "differing",
         "1 differing"),
        (lambda plan: [dict(r, error_kind="worker_crash", success=False) if r["key"] == "k0" else r for r in plan],
         "differing", "1 differing"),
    ],
)
def test_a_duplicated_lost_or_differing_episode_fails(tmp_path: Path, change, figure: str, problem: str) -> None:
    figures = _compare(tmp_path, change(_plan()))
    assert getattr(figures, figure) == 1
    assert not figures.ok and problem in figures.problems


def test_a_corrupt_line_another_plan_or_no_chaos_fails(tmp_path: Path) -> None:
    assert "1 corrupt lines" in _compare(tmp_path / "a", _plan(), extra_lines=["{not json"]).problems
    assert any("do not share a plan" in p for p in _compare(tmp_path / "b", _plan(), context="other").problems)
    _write_run(tmp_path / "c" / "clean", _plan())
    _write_run(tmp_path / "c" / "chaos", _plan())
    quiet = compare_runs(tmp_path / "c" / "clean", tmp_path / "c" / "chaos", ChaosFigures(mode="t", runner="local", seed=0))
    assert any("no chaos happened" in p for p in quiet.problems)


def test_a_missing_or_partial_video_fails(tmp_path: Path) -> None:
    chaos = [dict(r, video="videos/a.mp4") if r["key"] == "k0" else r for r in _plan()]
    figures = _compare(tmp_path, chaos)
    assert figures.bad_videos == ["videos/a.mp4"] and not figures.ok
    (tmp_path / "chaos" / "videos").mkdir()
    (tmp_path / "chaos" / "videos" / "a.mp4").write_bytes(b"not an mp4")
    half = compare_runs(tmp_path / "clean", tmp_path / "chaos", ChaosFigures(mode="t", runner="local", seed=0, kills=1, sigints=1))
    assert half.bad_videos == ["videos/a.mp4"]
    with EpisodeVideo(tmp_path / "chaos" / "videos" / "a.mp4", fps=10) as video:
        video.add_frame(np.zeros((16, 16, 3), dtype=np.uint8))
        video.finish(keep=True)
    (tmp_path / "chaos" / "videos" / ".b.partial.mp4").write_bytes(b"x")
    again = compare_runs(tmp_path / "clean", tmp_path / "chaos", ChaosFigures(mode="t", runner="local", seed=0, kills=1, sigints=1))
    assert again.bad_videos == ["videos/.b.partial.mp4"]


def test_workers_are_the_spawned_children_not_the_resource_tracker() -> None:
    ctx = mp.get_context("spawn")
    worker = ctx.Process(target=time.sleep, args=(60,), daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.pid not in find_workers(os.getpid(), "local") and time.monotonic() < deadline:
            time.sleep(0.1)
        found = find_workers(os.getpid(), "local")
        assert found == [worker.pid]
    finally:
        worker.kill()
        worker.join()
    assert find_workers(os.getpid(), "local") == []


def test_an_unknown_runner_is_one_line() -> None:
    out = subprocess.run([sys.executable, "-m", "evalharness", "bench", "--chaos", "quick", "--runner", "nope"],
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["evalharness: error: --runner 'nope' is not valid; allowed: "
                                               + ", ".join(sorted(p.stem for p in (REPO / "conf" / "runner").glob("*.yaml")))]


@pytest.mark.sim
def test_the_quick_chaos_run_loses_duplicates_and_changes_nothing(tmp_path: Path, assets_installed) -> None:
    figures_path = tmp_path / "chaos.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    out = subprocess.run(
        [sys.executable, "-m", "evalharness", "bench", "--chaos", "quick", "--chaos-dir", str(tmp_path / "runs"),
         "--json", str(figures_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    figures = json.loads(figures_path.read_text())
    assert figures["ok"] is True and figures["problems"] == []
    assert (figures["planned"], figures["recorded"]) == (4, 4)
    assert (figures["duplicated"], figures["lost"], figures["differing"], figures["orphans"]) == (0, 0, 0, 0)
    assert figures["kills"] >= 1 and figures["sigints"] == 1 and figures["launches"] >= 2
    assert "result: OK (0 lost, 0 duplicated, 0 differing)" in out.stdout
    clean = [json.loads(line) for line in (tmp_path / "runs" / "clean" / "episodes.jsonl").read_text().splitlines()]
    assert {r["success"] for r in clean} == {True, False}  # both outcomes are compared
