"""`gate --sequential` without the simulator: the pairs it builds from run folders, and bad input.

The rounds themselves run the real evaluation (tests/test_gate_sequential_sim.py); here the
baseline and candidate are run folders written by the test factories.
"""

from __future__ import annotations

import pytest

from evalharness.cli import main
from evalharness.commands.gate_sequential import baseline_plan, scan
from evalharness.errors import UserInputError
from evalharness.results.runs import load_run
from evalharness.results.sequential import family_thresholds, log_e_value
from factories import outcomes_records, run_metadata, write_run

SUITE = "libero_object"


def _run(tmp_path, name, tasks):
    records = []
    for index, outcomes in tasks.items():
        records += outcomes_records(SUITE, index, outcomes, policy=name)
    return write_run(tmp_path / name, records, run_metadata(name))


def test_pairs_follow_the_plan_order_per_task_and_state_by_state_for_the_suite(tmp_path):
    base = load_run(_run(tmp_path, "base", {0: "SSSSSS", 1: "SSSFFF"}))
    plan = baseline_plan(base, None)
    assert plan.tasks == [0, 1] and plan.init_states == list(range(6))
    # the candidate holds task 0 up to state 3 and task 1 up to state 1 (a round in progress)
    cand = {(0, k): False for k in range(4)} | {(1, 0): True, (1, 1): False}
    seqs, suite = scan(plan, cand, 0.05, 1.0)
    assert (seqs[0].pairs, seqs[0].b, seqs[0].c) == (4, 4, 0)
    assert (seqs[1].pairs, seqs[1].b, seqs[1].c) == (2, 1, 0)
    # pooled over the states every task has (0, 1), state by state: (0,0) (1,0) (0,1) (1,1)
    assert (suite.pairs, suite.b, suite.c, suite.budget) == (4, 3, 0, 12)
    task_thr, suite_thr = family_thresholds(0.05, 2)
    assert suite.max_log_e == pytest.approx(float(log_e_value(3, 0)))
    assert (round(2.718281828 ** task_thr), round(2.718281828 ** suite_thr)) == (80, 40)
    _, none = scan(plan, cand, 0.05, 1.0, pooled=False)
    assert none is None


def test_baseline_plan_refuses_what_cannot_be_paired(tmp_path):
    base = load_run(_run(tmp_path, "base", {0: "SSSS"}))
    with pytest.raises(UserInputError, match="--budget 9 is not valid; the baseline has 4 paired init states"):
        baseline_plan(base, 9)
    assert baseline_plan(base, 2).init_states == [0, 1]
    errors = load_run(_run(tmp_path, "errors", {0: "EE"}))
    with pytest.raises(UserInputError, match="no episode with a verdict"):
        baseline_plan(errors, None)


@pytest.mark.parametrize(("extra", "message"), [
    ([], "--sequential needs the candidate as Hydra overrides"),
    (["--candidate", "x", "policy=zero"], "--candidate is not valid with --sequential"),
    (["--round", "0", "policy=zero"], "--round 0 is not valid"),
    (["--margin", "0.02", "policy=zero"], "--margin is not available with --sequential"),
    (["suite=libero_goal", "policy=zero"], "suite=libero_goal is not valid here; the baseline is a libero_object run"),
    (["policy=nonexistent"], "policy"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    base = _run(tmp_path, "base", {0: "SSSS"})
    code = main(["gate", "--sequential", "--baseline", str(base), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_fixed_gate_still_needs_a_candidate(tmp_path, capsys):
    base = _run(tmp_path, "base", {0: "SSSS"})
    assert main(["gate", "--baseline", str(base)]) == 2
    assert "--candidate RUN is required" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(base), "--candidate", str(base), "policy=zero"]) == 2
    assert "Hydra overrides are for --sequential only" in capsys.readouterr().err


def test_another_seed_is_refused_before_any_episode_runs(tmp_path, capsys):
    base = _run(tmp_path, "base", {0: "SSSS"})  # the factories' records ran with seed 7
    code = main(["gate", "--sequential", "--baseline", str(base), "policy=zero", "suite=libero_object",
                 "protocol.seed=3", f"output_dir={tmp_path / 'cand'}"])
    err = capsys.readouterr().err
    assert code == 2 and "protocol.seed=3 is not valid here; the baseline's episodes ran with seed 7" in err
    assert not (tmp_path / "cand").exists()
