"""``evalharness ... --dry-run``: the cost of a run before it starts; writes nothing, builds no env.

The counts are the run's own: a real (tiny) run recorded part of a plan, the dry run of the
full plan reports what is left, and the real run then records exactly that many.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalharness.cli import main

TINY = ["suite=libero_object", "policy=zero", "video=none", "camera_size=32", "suite.max_steps=5"]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def no_env(monkeypatch):
    """Any env built fails the test: a dry run must not build one."""
    import envs.libero.env as env_module

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run built a LIBERO env")

    monkeypatch.setattr(env_module.LiberoEnv, "__init__", refuse)


def _dry(capsys, *args: str) -> str:
    assert main([*args, "--dry-run"]) == 0
    return capsys.readouterr().out


def test_dry_run_plans_counts_and_estimates_without_writing(tmp_path, monkeypatch, capsys, no_env):
    cache = tmp_path / "bench.json"
    cache.write_text(json.dumps({"measured_at": "2026-12-03 09:00 UTC", "setup": {"suite": "libero_spatial", "size": 224},
                                 "harness": {"steps_per_s": 100.0}}))
    monkeypatch.setenv("EVALHARNESS_BENCH_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    out = _dry(capsys, *TINY, "suite.tasks=[0,1,2]", "suite.episodes_per_task=4", "runner.workers=2",
               f"output_dir={tmp_path / 'run'}")
    assert _tree(tmp_path) == before  # nothing written: no run folder, no Hydra output
    assert "episodes planned:      12" in out and "already recorded:      0" in out
    assert "to run:                12, on 2 worker(s)" in out
    # three tasks on two workers, one task's episodes per group: 4 + 4 and 4
    assert "episodes per worker:   8, 4" in out
    # 8 episodes x (5 policy steps + the openpi protocol's 10 settle steps) at 100 steps/s
    assert "wall time (estimate):  at most ~0m 01s (8 episodes x 15 steps at 100.0 steps/s" in out
    assert "2026-12-03 09:00 UTC" in out
    assert "memory per worker:     ~2.5 GiB" in out and "runner.workers=auto:   would start" in out


def test_dry_run_without_a_bench_figure_says_so(tmp_path, monkeypatch, capsys, no_env):
    monkeypatch.setenv("EVALHARNESS_BENCH_CACHE", str(tmp_path / "absent.json"))
    out = _dry(capsys, *TINY, "suite.tasks=[0]", "suite.episodes_per_task=2", "runner.workers=0",
               f"output_dir={tmp_path / 'run'}")
    assert "wall time:             unknown: no cached bench figure" in out
    assert "to run:                2, in this process (runner.workers=0)" in out
    assert not (tmp_path / "run").exists()


def test_a_large_run_prints_its_estimate_before_it_starts(tmp_path, capsys, no_env):
    from hydra import compose, initialize_config_dir

    from evalharness.engine.dry_run import LARGE_RUN_EPISODES, announce_large_run
    from evalharness.config.conf import CONF_DIR
    from evalharness.engine.evaluate import prepare, run_cost

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*TINY, "suite.episodes_per_task=50", "run_name=x",
                                                       "runner.workers=2"])
    run = prepare(cfg)
    assert len(run.plan) == 500 > LARGE_RUN_EPISODES
    announce_large_run(run_cost(run, tmp_path / "run"))
    err = capsys.readouterr().err
    assert "500 episodes to run (0 already recorded) on 2 worker(s), up to 250 each" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.sim
@pytest.mark.timeout(300)
def test_dry_run_counts_equal_the_real_runs(tmp_path, capsys, assets_installed):
    out_dir = tmp_path / "run"
    args = [*TINY, "suite.tasks=[0]", "runner.workers=0", "run_name=dry", f"output_dir={out_dir}"]
    assert main([*args, "suite.episodes_per_task=1"]) == 0  # a run that covers part of the plan
    capsys.readouterr()
    recorded = (out_dir / "episodes.jsonl").read_text()
    listing = _tree(tmp_path)
    text = _dry(capsys, *args, "suite.episodes_per_task=3")
    assert "episodes planned:      3" in text and "already recorded:      1" in text and "to run:                2," in text
    assert _tree(tmp_path) == listing and (out_dir / "episodes.jsonl").read_text() == recorded
    assert main([*args, "suite.episodes_per_task=3"]) == 0
    lines = (out_dir / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 3  # the real run recorded exactly the 2 the dry run said were left


def test_bench_cache_round_trip(tmp_path, monkeypatch):
    from evalharness.results.bench_cache import cache_path, load_figures, save_figures

    monkeypatch.delenv("EVALHARNESS_BENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path() == tmp_path / "xdg" / "evalharness" / "bench.json"
    assert load_figures() is None
    assert save_figures({"harness": {"steps_per_s": 42.0}}) == cache_path()
    figures = load_figures()
    assert figures["harness"] == {"steps_per_s": 42.0} and figures["measured_at"].endswith("UTC")
    cache_path().write_text("{not json")
    assert load_figures() is None  # a broken cache loses the estimate, never the run
