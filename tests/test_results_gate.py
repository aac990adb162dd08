"""The regression gate on constructed runs whose answer is known; p-values against scipy.stats."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest, boschloo_exact, fisher_exact

from evalharness.cli import main
from evalharness.results.gate import EXIT_INCOMPLETE, EXIT_PASS, EXIT_REGRESSED, run_gate
from evalharness.results.runs import load_runs
from evalharness.results.stats import difference_interval
from factories import outcomes_records, protocol_settings, run_metadata, write_run

SUITE = "libero_object"


def make(tmp_path, name, tasks, *, meta=None, expected=None, policy=None):
    """A run from {task_index: outcome string}; ``tasks`` values may be (outcomes, start)."""
    records = []
    for index, spec in tasks.items():
        outcomes, start = spec if isinstance(spec, tuple) else (spec, 0)
        records += outcomes_records(SUITE, index, outcomes, start=start, policy=name)
    return write_run(tmp_path / name, records, meta or run_metadata(policy or name), expected_episodes=expected)


def gate(base, cand, **kwargs):
    b, c = load_runs([str(base), str(cand)])
    return run_gate(b, c, **kwargs)


def cli(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clear_drop_is_a_regression_exit_1(tmp_path, capsys):
    base = make(tmp_path, "base", {0: "S" * 20, 1: "S" * 10 + "F" * 10})
    cand = make(tmp_path, "cand", {0: "S" * 8 + "F" * 12, 1: "S" * 10 + "F" * 10})
    result = gate(base, cand)
    t0, t1 = result.tasks
    assert t0.paired and t0.discordant == (12, 0)
    p = binomtest(12, 12, 0.5, alternative="greater").pvalue
    assert t0.p_drop == pytest.approx(p)
    assert t0.p_drop_adj == pytest.approx(min(1.0, 2 * p))  # Holm over 2 tasks, smallest p first
    assert t0.verdict == "regressed" and t1.verdict == "no evidence of change"
    assert result.suites[0].verdict == "regressed" and result.suites[0].discordant == (12, 0)
    code, out, _ = cli(capsys, "gate", "--baseline", base, "--candidate", cand)
    assert code == EXIT_REGRESSED == 1
    assert "## evalharness gate: REGRESSED" in out and "**regressed**" in out


def test_drop_within_noise_is_no_evidence_exit_0(tmp_path, capsys):
    base = make(tmp_path, "base", {0: "S" * 10})
    cand = make(tmp_path, "cand", {0: "SSFSSSSFSS"})
    result = gate(base, cand)
    (task,) = result.tasks
    assert task.discordant == (2, 0)
    assert task.p_drop == pytest.approx(binomtest(2, 2, 0.5, alternative="greater").pvalue) == pytest.approx(0.25)
    assert task.verdict == "no evidence of change" and result.exit_code == EXIT_PASS
    code, out, _ = cli(capsys, "gate", "--baseline", base, "--candidate", cand)
    assert code == 0 and "PASS: no regression" in out


def test_improvement_is_reported_and_passes(tmp_path):
    base = make(tmp_path, "base", {0: "S" * 5 + "F" * 15})
    cand = make(tmp_path, "cand", {0: "S" * 5 + "S" * 13 + "F" * 2})
    result = gate(base, cand)
    (task,) = result.tasks
    assert task.discordant == (0, 13)
    assert task.p_rise == pytest.approx(binomtest(0, 13, 0.5, alternative="less").pvalue)
    assert task.verdict == "improved" and result.exit_code == EXIT_PASS
    assert task.diff == pytest.approx(0.65) and task.ci_low > 0


@pytest.mark.parametrize("test", ["boschloo", "fisher"])
def test_unequal_episode_sets_use_the_unpaired_exact_test(tmp_path, test):
    base = make(tmp_path, "base", {0: ("S" * 18 + "F" * 2, 0)})  # init states 0..19
    cand = make(tmp_path, "cand", {0: ("S" * 15 + "F" * 15, 20)})  # init states 20..49
    result = gate(base, cand, unpaired_test=test)
    (task,) = result.tasks
    assert not task.paired and task.test.startswith(test.capitalize())
    table = [[18, 2], [15, 15]]
    if test == "boschloo":
        expected_drop = boschloo_exact(table, alternative="greater").pvalue
        expected_rise = boschloo_exact(table, alternative="less").pvalue
    else:
        expected_drop = fisher_exact(table, alternative="greater").pvalue
        expected_rise = fisher_exact(table, alternative="less").pvalue
    assert task.p_drop == pytest.approx(expected_drop)
    assert task.p_rise == pytest.approx(expected_rise)
    assert task.verdict == "regressed"  # 90% -> 50%: p well below 0.05
    assert result.suites[0].test.startswith(test.capitalize())


def test_margin_turns_a_small_significant_drop_into_a_pass(tmp_path, capsys):
    # 10 tasks x 50 paired episodes; the candidate loses 12 episodes and gains 1: a 2.2
    # point suite drop, real (p ~ 0.002) but no task alone is significant after Holm.
    base_tasks, cand_tasks = {}, {}
    losses = [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    for i in range(10):
        base_tasks[i] = "S" * 40 + "F" * 10
        cand_tasks[i] = "S" * (40 - losses[i]) + "F" * losses[i] + ("S" if i == 0 else "F") + "F" * 9
    base = make(tmp_path, "base", base_tasks)
    cand = make(tmp_path, "cand", cand_tasks)
    strict = gate(base, cand)
    suite = strict.suites[0]
    assert suite.discordant == (12, 1)
    assert suite.p_drop == pytest.approx(binomtest(12, 13, 0.5, alternative="greater").pvalue)
    assert suite.diff == pytest.approx(-11 / 500)
    assert suite.verdict == "regressed" and all(t.verdict == "no evidence of change" for t in strict.tasks)
    assert strict.exit_code == EXIT_REGRESSED
    assert gate(base, cand, margin=0.03).exit_code == EXIT_PASS
    assert gate(base, cand, margin=0.02).exit_code == EXIT_REGRESSED  # 2.2 points > 2
    code, out, _ = cli(capsys, "gate", "--baseline", base, "--candidate", cand, "--margin", "0.03")
    assert code == 0 and "margin 3 points" in out


@pytest.mark.parametrize(
    ("cand_tasks", "expected", "reason"),
    [
        ({0: "S" * 8 + "E" + "S"}, None, "candidate: 1 episode(s) errored (env_error: 1)"),
        ({0: "S" * 6}, 10, "candidate: 4 of 10 planned episode(s) not recorded"),
        ({1: "S" * 10}, None, "candidate lacks 1 task(s) of the baseline (libero_object 0)"),
    ],
)
def test_incomplete_candidate_exits_2_with_the_reason(tmp_path, capsys, cand_tasks, expected, reason):
    base = make(tmp_path, "base", {0: "S" * 10})
    cand = make(tmp_path, "cand", cand_tasks, expected=expected)
    code, out, err = cli(capsys, "gate", "--baseline", base, "--candidate", cand)
    assert code == EXIT_INCOMPLETE == 2
    assert "INCOMPLETE" in out and reason in out
    assert err.startswith("evalharness: gate incomplete: ") and reason in err


def test_a_candidate_still_running_is_incomplete(tmp_path, capsys):
    base = make(tmp_path, "base", {0: "S" * 10})
    cand = write_run(tmp_path / "cand", outcomes_records(SUITE, 0, "SSS"), summary=False)
    code, out, _ = cli(capsys, "gate", "--baseline", base, "--candidate", cand)
    assert code == 2 and "run in progress (no summary.json yet)" in out


def test_different_protocols_are_refused_in_one_line(tmp_path, capsys):
    base = make(tmp_path, "base", {0: "S" * 10})
    lerobot = run_metadata("cand", protocol=protocol_settings("lerobot"))
    cand = make(tmp_path, "cand", {0: "S" * 10}, meta=lerobot)
    code, out, err = cli(capsys, "gate", "--baseline", base, "--candidate", cand)
    assert code == 2 and out == ""
    assert err.startswith("evalharness: error: baseline (openpi) and candidate (lerobot) were made under different protocols")
    assert err.count("\n") == 1
    capped = run_metadata("cand", config={"suite": {"name": SUITE, "max_steps": 20}})
    cand2 = make(tmp_path, "cand2", {0: "S" * 10}, meta=capped)
    code, _, err = cli(capsys, "gate", "--baseline", base, "--candidate", cand2)
    assert code == 2 and "max steps capped at 20" in err


def test_other_context_differences_are_shown_not_refused(tmp_path):
    base = make(tmp_path, "base", {0: "S" * 10})
    meta = run_metadata("cand", versions={"mujoco": "3.2.0", "robosuite": "1.4.0", "hf-libero": "0.1.4"},
                        assets={"tree_sha256": "b" * 64, "provenance": "modified: 3 files differ"})
    cand = make(tmp_path, "cand", {0: "S" * 10}, meta=meta)
    result = gate(base, cand)
    differs = {item.name: item for item in result.context if item.differs}
    assert set(differs) == {"MuJoCo", "assets"}
    assert differs["MuJoCo"].candidate == "3.2.0" and not differs["MuJoCo"].blocking
    assert result.exit_code == EXIT_PASS


def test_a_baseline_whose_frames_were_rendered_at_the_step_end_is_shown(tmp_path):
    """Runs before envs.libero.sampled_scene recorded no frame timing: listed, not refused."""
    old = run_metadata("base")
    del old["env"]
    base = make(tmp_path, "base", {0: "S" * 10}, meta=old)
    cand = make(tmp_path, "cand", {0: "S" * 10})
    result = gate(base, cand)
    row = {item.name: item for item in result.context}["frames"]
    assert row.differs and not row.blocking and row.candidate == "observation_sample"
    assert row.baseline.startswith("step end (not recorded")
    assert result.exit_code == EXIT_PASS


def test_assets_row_shows_the_loaded_files_digest_of_todays_runs(tmp_path):
    """Today's runs record ``loaded_sha256`` (no tree checksum): the row shows its start."""
    today = {"provenance": "original", "loaded_sha256": "0c08a73b8f3e" + "0" * 52}
    base = make(tmp_path, "base", {0: "S" * 10}, meta=run_metadata("base", assets=today))
    cand = make(tmp_path, "cand", {0: "S" * 10}, meta=run_metadata("cand", assets=today))
    row = {item.name: item for item in gate(base, cand).context}["assets"]
    assert (row.baseline, row.candidate) == ("0c08a73b8f3e", "0c08a73b8f3e") and not row.differs


def test_summary_is_appended_to_github_step_summary(tmp_path, capsys, monkeypatch):
    base = make(tmp_path, "base", {0: "S" * 10})
    cand = make(tmp_path, "cand", {0: "S" * 10})
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    code, out, _ = cli(capsys, "gate", "--baseline", base, "--candidate", cand)
    assert code == 0
    assert step.read_text() == "earlier step\n" + out + "\n"


def test_paired_difference_interval_is_narrower_than_unpaired():
    # Newcombe's worked example (independent): 56/70 vs 48/80 -> 0.2 [0.0524, 0.3339].
    diff, low, high = difference_interval(48, 80, 56, 70)
    assert (round(diff, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)
    # Altman et al. (2000), "Statistics with confidence", Table 6.2 (paired, n = 41):
    # 14 both, 5 first only, 0 second only, 22 neither -> 0.122 [0.0115, 0.2265].
    diff, low, high = difference_interval(19, 41, 14, 41, discordant=(5, 0))
    assert (round(-diff, 3), round(-high, 4), round(-low, 4)) == (0.122, 0.0115, 0.2265)
    unpaired = difference_interval(40, 50, 34, 50)
    paired = difference_interval(40, 50, 34, 50, discordant=(6, 0))
    assert paired[0] == unpaired[0] == pytest.approx(-0.12)
    assert paired[2] - paired[1] < unpaired[2] - unpaired[1]
    assert paired[2] < 0 < unpaired[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--margin", "1.5"], "--margin 1.5 is not valid"),
        (["--alpha", "0"], "--alpha 0.0 is not valid"),
        (["--margin", "x"], "argument --margin: invalid float value: 'x'"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, args, message):
    base = make(tmp_path, "base", {0: "S"})
    code, _, err = cli(capsys, "gate", "--baseline", base, "--candidate", base, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and err.startswith("evalharness: error: ")
