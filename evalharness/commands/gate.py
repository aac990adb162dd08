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

sequential (runs the candidate itself, in rounds, and stops once the verdict is known;
evalharness/commands/gate_sequential.py):
  evalharness gate --sequential --baseline results/baselines/libero_object --round 5 \
      suite=libero_object policy=... output_dir=results/candidate
"""

from __future__ import annotations

import argparse
import sys

from evalharness.commands.step_summary import append_step_summary
from evalharness.errors import UserInputError
from evalharness.results.gate import render_markdown, run_gate
from evalharness.results.runs import load_runs
from evalharness.results.stats import UNPAIRED_TESTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, metavar="RUN", help="baseline run folder or its summary.json")
    parser.add_argument("--candidate", metavar="RUN", help="candidate run folder or its summary.json")
    parser.add_argument("--margin", type=float, default=0.0,
                        help="allowed drop in success rate, as a fraction (0.02 = 2 points); default 0")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise false alarm rate (Holm); default 0.05")
    parser.add_argument("--unpaired-test", default="boschloo", choices=UNPAIRED_TESTS,
                        help="exact test when episodes cannot be paired (default boschloo)")
    parser.add_argument("--label", nargs=2, metavar=("BASELINE", "CANDIDATE"), help="names for the two runs")
    seq = parser.add_argument_group("--sequential: run the candidate in rounds, stop when decided")
    seq.add_argument("--sequential", action="store_true",
                     help="run the candidate (Hydra overrides after the options) on the baseline's episodes in rounds")
    seq.add_argument("--round", type=int, default=5, help="init states per task added each round (default 5)")
    seq.add_argument("--budget", type=int, help="init states per task at most (default: all the baseline has)")
    seq.add_argument("--prior", type=float, default=1.0,
                     help="Beta(a, a) prior of the e-process on [1/2, 1]; default 1 (uniform)")
    seq.add_argument("--max-rounds", type=int, help="stop after this many rounds run now (exit 2 if undecided)")
    seq.add_argument("--run-to-budget", action="store_true",
                     help="do not stop when no task can reach the threshold any more; run every episode")
    seq.add_argument("--no-suite", action="store_true",
                     help="tasks only: no pooled suite e-process (all of alpha goes to the tasks)")
    seq.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="--sequential: the candidate's Hydra overrides")


def run(args: argparse.Namespace) -> int:
    if args.sequential:
        if args.candidate:
            raise UserInputError("--candidate is not valid with --sequential; give the candidate as Hydra overrides")
        from evalharness.commands import gate_sequential

        return gate_sequential.run(args)
    if not args.candidate:
        raise UserInputError("--candidate RUN is required (or --sequential with the candidate's Hydra overrides)")
    if args.overrides:
        raise UserInputError(f"{args.overrides[0]!r} is not valid here; Hydra overrides are for --sequential only")
    baseline, candidate = load_runs([args.baseline, args.candidate], args.label)
    result = run_gate(baseline, candidate, alpha=args.alpha, margin=args.margin, unpaired_test=args.unpaired_test)
    text = render_markdown(result)
    print(text, end="")
    append_step_summary(text)
    if result.incomplete:
        print(f"evalharness: gate incomplete: {'; '.join(result.incomplete)}", file=sys.stderr)
    return result.exit_code
