"""Cross-run tables: golden Markdown / LaTeX / CSV, marks, footnotes, protocols, IQM.

Goldens live in tests/golden/; after an intended change, regenerate them with
``UPDATE_GOLDEN=1 pytest tests/test_results_run_table.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import trim_mean

from evalharness.cli import main
from evalharness.errors import UserInputError
from evalharness.results.aggregate import iqm_with_interval
from evalharness.results.atomic import write_json_atomic
from evalharness.results.comparison_table import build_table, render
from evalharness.results.runs import load_runs
from evalharness.results.summary import build_summary
from factories import outcomes_records, protocol_settings, run_metadata

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{name} differs from the golden file"


def summary_run(tmp_path, name, suites, meta=None, expected=None):
    """A finished run folder holding summary.json only: {suite: [outcome string per task]}."""
    records = []
    for suite, tasks in suites.items():
        for index, outcomes in enumerate(tasks):
            records += outcomes_records(suite, index, outcomes, policy=name)
    run = tmp_path / name
    write_json_atomic(run / "summary.json", build_summary(records, meta or run_metadata(name),
                                                          expected_episodes=expected).to_document())
    return str(run)


def task(k: int, n: int = 50, errors: int = 0) -> str:
    return "S" * k + "F" * (n - k - errors) + "E" * errors


@pytest.fixture
def three_runs(tmp_path):
    alpha = summary_run(tmp_path, "alpha", {
        "libero_spatial": [task(49), task(49)], "libero_object": [task(48), task(49)],
        "libero_goal": [task(45), task(45)], "libero_10": [task(30), task(30)],
    })
    beta = summary_run(tmp_path, "beta", {
        "libero_spatial": [task(40), task(40)], "libero_object": [task(50), task(49)],
        "libero_goal": [task(35), task(35)], "libero_10": [task(28), task(27)],
    }, run_metadata("beta", versions={"mujoco": "3.2.0", "robosuite": "1.4.0", "hf-libero": "0.1.4"}))
    gamma = summary_run(tmp_path, "gamma", {
        "libero_spatial": [task(25), task(25)], "libero_object": [task(40, errors=2), task(40)],
        "libero_goal": [task(20), task(20)], "libero_10": [task(10), task(10)],
    }, run_metadata("gamma", assets={"tree_sha256": "b" * 64, "provenance": "modified: 30 files differ"}))
    return [alpha, beta, gamma]


@pytest.mark.parametrize("fmt", ["md", "latex", "csv"])
def test_golden_suite_table(three_runs, fmt):
    table = build_table(load_runs(three_runs))
    check_golden(f"table_suites.{ {'md': 'md', 'latex': 'tex', 'csv': 'csv'}[fmt] }", render(table, fmt))


def test_marks_follow_the_intervals(three_runs):
    def marked(mode):
        table = build_table(load_runs(three_runs), mark=mode)
        return {col: [row.label for row in table.rows if row.cells[j] and row.cells[j].marked]
                for j, col in enumerate(table.columns)}

    overlap = marked("overlap")
    assert overlap["Spatial"] == ["alpha"]  # 98 [93.0, 99.4] vs 80 [71.1, 86.7]: clear
    assert overlap["Goal"] == ["alpha"]
    assert overlap["Object"] == []  # 97 vs 99: intervals overlap, no claim
    assert overlap["Long"] == []
    best = marked("best")
    assert best["Object"] == ["beta"] and best["Long"] == ["alpha"] and best["Spatial"] == ["alpha"]
    assert all(v == [] for v in marked("none").values())


def test_footnotes_name_everything_non_standard(three_runs):
    md = render(build_table(load_runs(three_runs)), "md")
    assert "Protocol: openpi." in md
    assert "| beta<sup>a</sup> |" in md and "<sup>a</sup> MuJoCo 3.2.0 (the other runs: 3.3.2)" in md
    assert "gamma<sup>b,c</sup>" in md
    assert "<sup>b</sup> assets modified: 30 files differ" in md
    assert "<sup>c</sup> 2 episode(s) errored (env_error: 1" not in md  # one task errored twice
    assert "<sup>c</sup> 2 episode(s) errored (env_error: 2), excluded from the rates" in md
    assert "| alpha |" in md  # a standard run carries no footnote


def test_few_episodes_and_capped_runs_are_footnoted(tmp_path):
    meta = run_metadata("small", camera_size=64, config={"suite": {"name": "libero_goal", "max_steps": 20}})
    run = summary_run(tmp_path, "small", {"libero_goal": ["SSF", "SFF"]}, meta)
    md = render(build_table(load_runs([run])), "md")
    assert "Protocol: openpi (camera 64 px instead of 256; max steps capped at 20)." in md
    assert "<sup>a</sup> 3 episodes per task (protocols use 50): wide intervals" in md
    assert "Average" not in md  # one suite: no average column


def test_mixed_protocols_are_refused_unless_forced(tmp_path, capsys):
    openpi = summary_run(tmp_path, "a", {"libero_goal": ["SSF"]})
    lerobot = summary_run(tmp_path, "b", {"libero_goal": ["SFF"]},
                          run_metadata("b", protocol=protocol_settings("lerobot")))
    with pytest.raises(UserInputError) as info:
        build_table(load_runs([openpi, lerobot]))
    message = str(info.value)
    assert "different protocols" in message and "openpi" in message and "lerobot" in message and "--force" in message
    assert main(["table", openpi, lerobot]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalharness: error: runs were made under different protocols") and err.count("\n") == 1

    forced = render(build_table(load_runs([openpi, lerobot]), force=True), "md")
    assert "Runs under DIFFERENT protocols (--force)" in forced
    assert "a<sup>a,b</sup>" in forced and "<sup>a</sup> protocol: openpi" in forced
    assert "protocol: lerobot" in forced


def test_libero_90_gets_an_iqm_with_a_seeded_stratified_bootstrap(tmp_path):
    rng = np.random.default_rng(3)
    ks = [int(k) for k in rng.integers(0, 11, size=8)]
    run = summary_run(tmp_path, "ninety", {"libero_90": [task(k, n=10) for k in ks]})
    table = build_table(load_runs([run]))
    assert table.columns == ["90", "90 IQM"]
    cell = table.rows[0].cells[1]
    assert cell.rate == pytest.approx(trim_mean(np.array(ks) / 10, 0.25))
    assert cell.rate == pytest.approx(np.mean(sorted(np.array(ks) / 10)[2:6]))
    assert cell.ci_low <= cell.rate <= cell.ci_high and cell.ci_high - cell.ci_low > 0.05
    again = iqm_with_interval(ks, [10] * 8)
    assert (again.ci_low, again.ci_high) == (cell.ci_low, cell.ci_high)  # seeded: same numbers every time
    # The binomial draw is the episode resample: a brute-force stratified bootstrap agrees.
    brute_rng = np.random.default_rng(11)
    outcomes = [np.array([1] * k + [0] * (10 - k)) for k in ks]
    resampled = np.stack([o[brute_rng.integers(0, 10, size=(2000, 10))].mean(axis=1) for o in outcomes], axis=1)
    boot = trim_mean(resampled, 0.25, axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    assert abs(low - cell.ci_low) < 0.03 and abs(high - cell.ci_high) < 0.03
    check_golden("table_libero90.md", render(table, "md"))


def test_per_task_table_with_counts(tmp_path):
    a = summary_run(tmp_path, "a", {"libero_goal": ["SSSSF", "FFFFF", "SSSSS"]})
    b = summary_run(tmp_path, "b", {"libero_goal": ["SSFFF", "SFFFF", "SSSSS"]})
    table = build_table(load_runs([a, b], ["ckpt 10k", "ckpt 20k"]), per_task=True, cells="count", mark="best")
    md = render(table, "md")
    assert table.columns == ["ckpt 10k", "ckpt 20k"]
    assert "| Goal 0: task_0 | **4/5** | 2/5 |" in md
    assert "| Goal 2: task_2 | **5/5** | **5/5** |" in md  # a tie: both best
    check_golden("table_per_task.md", md)
    check_golden("table_per_task.csv", render(table, "csv"))


def test_partial_run_is_shown_and_said(tmp_path):
    from factories import write_run

    run = write_run(tmp_path / "going", outcomes_records("libero_goal", 0, "SSF"), summary=False)
    md = render(build_table(load_runs([str(run)])), "md")
    assert "run in progress (no summary.json yet): 3 episodes recorded" in md
    assert "| scripted<sup>a</sup> | 66.7 [20.8, 93.9] |" in md


def test_table_command_writes_formats_and_errors_in_one_line(three_runs, tmp_path, capsys):
    out = tmp_path / "t.tex"
    assert main(["table", *three_runs, "--format", "latex", "-o", str(out)]) == 0
    assert out.read_text().startswith("% evalharness table; needs \\usepackage{booktabs}")
    assert main(["table", *three_runs, "--label", "only one"]) == 2
    assert "--label given 1 time(s) for 3 run(s)" in capsys.readouterr().err
    assert main(["table", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nope does not exist; give a run folder" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as info:
        main(["table", *three_runs, "--cells", "both"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("evalharness: error: evalharness table: argument --cells") and err.count("\n") == 1


@pytest.mark.parametrize("command", ["table", "gate", "report"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"evalharness {command} " in text.split("examples:")[1]


def test_episodes_ahead_of_the_summary_make_a_partial_run(tmp_path):
    from evalharness.results.runs import load_run
    from evalharness.results.store import ResultStore
    from factories import write_run

    run = write_run(tmp_path / "resumed", outcomes_records("libero_goal", 0, "SS"), expected_episodes=4)
    ResultStore(run).append(outcomes_records("libero_goal", 0, "F", start=2)[0])
    loaded = load_run(run)
    assert loaded.partial == ("run in progress (episodes.jsonl holds episodes that summary.json does not count yet): "
                              "3 of 4 episodes recorded")
    assert (loaded.summary.totals.successes, loaded.summary.totals.episodes) == (2, 3)
    assert loaded.summary.metadata.policy == {"name": "scripted"}  # metadata kept from the old summary
    assert load_run(run / "summary.json").partial == loaded.partial  # the same through the file
