"""`evalharness table --robustness --layout libero_plus|libero_pro [--reference ...]`.

Runs are written to disk as evaluate() leaves them (tests/factories.py) and read back by
the real CLI. The LIBERO-Plus layout needs the variant classification (setup --libero-plus).
"""

from __future__ import annotations

import json

import pytest

from envs.libero import plus_data
from evalharness.cli import main
from evalharness.results.benchmark_tables import load_reference
from evalharness.results.stats import wilson_interval
from factories import episode_record, run_metadata, write_run


def _pro_records(policy: str, outcomes: dict[str, str]) -> list:
    records = []
    for suite, pattern in outcomes.items():
        for i, ch in enumerate(pattern):
            records.append(episode_record(key=f"{policy}-{suite}-{i}", suite=suite, task_index=i % 10,
                                          task_name=f"task_{i % 10}", init_state=i // 10, success=ch == "S",
                                          error_kind="env_error" if ch == "E" else None))
    return records


def test_libero_pro_layout(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "pro", _pro_records("pi0", {
        "libero_pro_goal_object": "SSSF", "libero_pro_goal_swap": "SFFF", "libero_pro_goal_lan": "SSSS",
        "libero_pro_goal_task": "FFFE",
    }), run_metadata("pi0"))
    assert main(["table", "--robustness", "--reference", "libero_pro", str(run), "--label", "ours"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert header == "| model | goal Obj | goal Pos | goal Sem | goal Task |"  # only the base suite run
    row = out.splitlines()[2]
    low, high = wilson_interval(3, 4)
    assert row.startswith("| ours | 75.0 [" + f"{100 * low:.1f}, {100 * high:.1f}] n=4 | 25.0 [")
    assert "| 0.0 [0.0, " in row and row.endswith("n=3 |")  # the errored episode is not a failure
    assert "arXiv:2510.03827" in out and "2b910b5b" in out
    # the authors' leaderboard, in our column order (their README lists Goal first), as percent
    assert "| Pi0.5 (published) | 97.0 | 38.0 | 97.0 | 0.0 |" in out
    assert "| OpenVLA (published) | 96.0 | 0.0 | 98.0 | 0.0 |" in out
    assert "Errored episodes (no verdict; excluded from the rates, not failures): ours: 1." in out


def test_libero_pro_layout_needs_pro_runs(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "plain", _pro_records("p", {"libero_goal": "SS"}))
    assert main(["table", "--robustness", "--layout", "libero_pro", str(run)]) == 2
    assert "no suite=libero_pro_* episodes" in capsys.readouterr().err


def test_flags_need_robustness_and_agree(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "r", _pro_records("p", {"libero_pro_10_task": "S"}))
    assert main(["table", "--reference", "libero_pro", str(run)]) == 2
    assert "--reference is not valid without --robustness" in capsys.readouterr().err
    assert main(["table", "--robustness", "--layout", "libero_pro", "--reference", "libero_plus", str(run)]) == 2
    assert "--reference libero_plus is not valid with --layout libero_pro" in capsys.readouterr().err


def test_published_libero_plus_rows_are_the_readmes() -> None:
    reference = load_reference("libero_plus")
    rows = {row["model"]: row["values"] for row in reference["rows"]}
    assert reference["columns"] == ["Camera", "Robot", "Language", "Light", "Background", "Noise", "Layout", "Total"]
    assert rows["pi0"] == [13.8, 6.0, 58.8, 85.0, 81.4, 79.0, 68.9, 53.6]
    assert rows["pi0-FAST"][-1] == 61.6 and rows["OpenVLA-OFT"][-1] == 69.6
    assert "4976dc3" in reference["source"] and "arXiv:2510.13626" in reference["source"]


def test_published_libero_pro_rows_are_the_authors_leaderboard() -> None:
    """The README leaderboard at 2b910b5 lists LIBERO-Goal, -Spatial, -10, -Object, each Obj / Pos /
    Sem / Task / Env, as 0.00-1.00; the file holds our order (spatial, object, goal, 10) x 100."""
    reference = load_reference("libero_pro")
    rows = {row["model"]: dict(zip(reference["columns"], row["values"], strict=True)) for row in reference["rows"]}
    assert sorted(rows) == ["Molmoact", "NORA", "OpenVLA", "Pi0", "Pi0.5", "x-VLA"]
    # Pi0.5 as the README writes it: Goal 0.97 0.38 0.97 0.00, Spatial 0.97 0.20 0.97 0.01,
    # 10 0.92 0.08 0.93 0.01, Object 0.98 0.17 0.96 0.01
    pi05 = rows["Pi0.5"]
    assert [pi05[f"goal {c}"] for c in ("Obj", "Pos", "Sem", "Task")] == [97.0, 38.0, 97.0, 0.0]
    assert [pi05[f"spatial {c}"] for c in ("Obj", "Pos", "Sem", "Task")] == [97.0, 20.0, 97.0, 1.0]
    assert [pi05[f"10 {c}"] for c in ("Obj", "Pos", "Sem", "Task")] == [92.0, 8.0, 93.0, 1.0]
    assert [pi05[f"object {c}"] for c in ("Obj", "Pos", "Sem", "Task")] == [98.0, 17.0, 96.0, 1.0]
    assert rows["x-VLA"]["10 Task"] == 10.0 and rows["Molmoact"]["object Pos"] == 6.0
    assert rows["OpenVLA"]["10 Obj"] == 81.0 and rows["NORA"]["goal Obj"] == 58.0
    assert all(0.0 <= v <= 100.0 for row in rows.values() for v in row.values())
    assert "2b910b5b5f53016bef9907632f6f840f1ce2229c" in reference["source"] and "arXiv:2510.03827" in reference["source"]


@pytest.fixture
def plus_installed(assets_installed) -> None:
    if plus_data.snapshot() is None:
        pytest.fail("LIBERO-Plus's data is not set up: run 'evalharness setup --libero-plus' first")


def test_libero_plus_layout_with_reference(tmp_path, capsys, plus_installed) -> None:
    variants = plus_data.variants()
    camera = [v for v in variants if v.category == "camera"][:4]
    robot = [v for v in variants if v.category == "robot"][:2]
    records = [episode_record(key=f"pl-{v.index}", suite="libero_plus", task_index=v.index, task_name=v.name,
                              init_state=0, success=i % 2 == 0) for i, v in enumerate(camera + robot)]
    meta = run_metadata("pi0", config={"suite": {"name": "libero_plus", "prompt": "published"}})
    run = write_run(tmp_path / "plus", records, meta)
    assert main(["table", "--robustness", "--reference", "libero_plus", str(run), "--label", "ours"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "| model | Camera | Robot | Language | Light | Background | Noise | Layout | Total |"
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "ours" and cells[1].startswith("50.0 [") and cells[1].endswith("n=4")
    assert cells[2].endswith("n=2") and cells[3] == "–"
    assert cells[8].startswith("50.0 [") and cells[8].endswith("n=6")  # pooled: weighted by variant count
    assert "| pi0 (published) | 13.8 | 6.0 | 58.8 | 85.0 | 81.4 | 79.0 | 68.9 | 53.6 |" in out
    assert "suite.prompt=published" in out and "4976dc3" in out
    json.dumps(out)  # plain text
