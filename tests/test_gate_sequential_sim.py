"""`evalharness gate --sequential` on the real LIBERO simulator (tiny: one task, 12 init states, 32 px).

The baseline is the scripted policy (solves LIBERO-Object task 0 from every init state in ~151
steps). A clearly broken candidate (the zero policy) is stopped as regressed after a few
rounds, exit 1; an equal candidate (the scripted policy again) passes, exit 0; a run stopped
after one round resumes to its budget with nothing redone, and the plain evaluation of the
full plan then finds every episode recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from evalharness.cli import main
from evalharness.config.conf import CONF_DIR
from evalharness.engine.evaluate import evaluate

pytestmark = pytest.mark.sim

COMMON = ["suite=libero_object", "suite.tasks=[0]", "suite.max_steps=170", "video=none", "camera_size=32",
          "runner.workers=0"]
STATES = 12


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _lines(run_dir: Path) -> list[str]:
    return (run_dir / "episodes.jsonl").read_text().splitlines()


def _evaluate(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return evaluate(cfg).to_document()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, assets_installed) -> Path:
    out = tmp_path_factory.mktemp("seq") / "scripted"
    summary = _evaluate(*COMMON, "policy=scripted", f"suite.episodes_per_task={STATES}", "run_name=base",
                        f"output_dir={out}")
    assert summary["totals"]["successes"] == STATES  # the scripted policy solves every init state
    return out


@pytest.mark.timeout(900)
def test_zero_policy_is_stopped_as_regressed_after_a_few_rounds(baseline, tmp_path, capsys):
    out = tmp_path / "zero"
    # horizon 5 = the protocol's replan: one camera render per 5 steps (the test's cost is rendering)
    code, text, _ = _cli(capsys, "gate", "--sequential", "--baseline", baseline, "--round", "3", *COMMON,
                         "policy=zero", "policy.horizon=5", f"output_dir={out}")
    assert code == 1
    assert "## evalharness gate --sequential: REGRESSED" in text
    # E(b, 0) = (2^(b+1) - 1) / (b + 1) first reaches 1 / alpha = 20 at b = 7: round 3 of 4
    assert "Episodes run: **9 of 12** (3 saved against the full run; 9 new in this invocation)" in text
    assert "**regressed** (at pair 7)" in text
    assert len(_lines(out)) == 9


@pytest.mark.timeout(900)
def test_equal_candidate_passes_and_a_stopped_run_resumes_with_nothing_redone(baseline, tmp_path, capsys):
    out = tmp_path / "same"
    args = ["gate", "--sequential", "--baseline", baseline, "--round", "3", *COMMON, "policy=scripted",
            f"output_dir={out}"]
    code, text, err = _cli(capsys, *args, "--max-rounds", "1")
    assert code == 2 and "INCOMPLETE" in text and "--max-rounds 1" in err
    first = _lines(out)
    assert len(first) == 3

    # Undecided after one round; after two, six episodes are left and even six drops cannot
    # reach the threshold (E(6, 0) = 18.1 < 20): no regression, decided early.
    code, text, _ = _cli(capsys, *args)
    assert code == 0 and "PASS: no regression" in text
    assert "Episodes run: **6 of 12** (6 saved against the full run; 3 new in this invocation)" in text
    assert "even if every remaining episode were a drop" in text
    assert _lines(out)[:3] == first  # resumed: the first round's records untouched

    code, text, _ = _cli(capsys, *args, "--run-to-budget")
    assert code == 0 and "Episodes run: **12 of 12** (0 saved against the full run; 6 new in this invocation)" in text
    assert "budget reached" in text
    lines = _lines(out)
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)) == STATES  # nothing redone, nothing duplicated
    assert [json.loads(line)["init_state"] for line in lines] == list(range(STATES))  # the plan's order

    # The folder is the plain run's: its full plan finds every episode recorded.
    summary = _evaluate(*COMMON, "policy=scripted", f"suite.episodes_per_task={STATES}", "run_name=same",
                        f"output_dir={out}")
    assert summary["totals"]["recorded"] == STATES and _lines(out) == lines
