"""Regression gate: is the candidate run worse than the baseline? One verdict per task and suite.

Verdicts: regressed / no evidence of change / improved. Episodes the two runs share
(same suite, task, init state and seed) are compared pairwise with an exact McNemar
test; otherwise an exact one-sided Boschloo (or Fisher) test. Holm-corrected over tasks.
A drop counts as a regression only when significant AND larger than --margin.

exit status: 0 no regression, 1 regression, 2 incomplete run (errors or missing
episodes, with the reason) or unusable input (e.g. runs under different protocols).
The Markdown summary is printed and, when $GITHUB_STEP_SUMMARY is set, appended to it.

examples:
  evalharness gate --baseline results/baselines/libero_object-pi0 --candidate results/libero_object-pi0-openpi
  evalharness gate --baseline ckpt-10k/summary.json --candidate ckpt-20k/summary.json --margin 0.02

in a GitHub Actions workflow (the baseline committed under results/baselines/):
  - run: evalharness suite=libero_object policy=... output_dir=results/candidate
  - run: evalharness gate --baseline results/baselines/libero_object --candidate results/candidate --margin 0.02
"""

from __future__ import annotations

import argparse
import os
import sys

from evalharness.errors import UserInputError
from evalharness.results.gate import render_markdown, run_gate
from evalharness.results.runs import load_runs
from evalharness.results.stats import UNPAIRED_TESTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, metavar="RUN", help="baseline run folder or its summary.json")
    parser.add_argument("--candidate", required=True, metavar="RUN", help="candidate run folder or its summary.json")
    parser.add_argument("--margin", type=float, default=0.0,
                        help="allowed drop in success rate, as a fraction (0.02 = 2 points); default 0")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise false alarm rate (Holm); default 0.05")
    parser.add_argument("--unpaired-test", default="boschloo", choices=UNPAIRED_TESTS,
                        help="exact test when episodes cannot be paired (default boschloo)")
    parser.add_argument("--label", nargs=2, metavar=("BASELINE", "CANDIDATE"), help="names for the two runs")


def _append_step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        raise UserInputError(f"cannot append to $GITHUB_STEP_SUMMARY={path}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    baseline, candidate = load_runs([args.baseline, args.candidate], args.label)
    result = run_gate(baseline, candidate, alpha=args.alpha, margin=args.margin, unpaired_test=args.unpaired_test)
    text = render_markdown(result)
    print(text, end="")
    _append_step_summary(text)
    if result.incomplete:
        print(f"evalharness: gate incomplete: {'; '.join(result.incomplete)}", file=sys.stderr)
    return result.exit_code
