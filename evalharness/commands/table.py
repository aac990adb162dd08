"""Paper-style table of one or more runs: one row per run, one column per suite.

Each cell is the success rate with its 95% Wilson interval (or k/n with --cells count);
the best value of a column is bold only where its interval overlaps no other run's
(--mark); footnotes state the protocol and everything non-standard (fewer than 50
episodes per task, modified assets, another MuJoCo / robosuite version, errors, a run
still in progress). Runs under different protocols are refused unless --force.

examples:
  evalharness table results/libero_object-scripted-openpi results/libero_object-zero-openpi
  evalharness table results/*/summary.json --format latex --label "pi0 10k" --label "pi0 20k"
  evalharness table results/run-a results/run-b --per-task --cells count --format csv -o table.csv
  evalharness table --robustness --per-level results/robust/*
  evalharness table --robustness --layout libero_plus --reference libero_plus results/plus-pi0
  evalharness table --robustness --reference libero_pro results/pro-*
"""

from __future__ import annotations

import argparse

from evalharness.errors import UserInputError
from evalharness.results.atomic import write_text_atomic
from evalharness.results.benchmark_tables import LAYOUTS
from evalharness.results.comparison_table import CELL_MODES, FORMATS, MARK_MODES, build_table, render
from evalharness.results.runs import load_runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (results/<run>/) or summary.json files")
    parser.add_argument("--format", default="md", choices=FORMATS, help="md (default), latex (booktabs) or csv")
    parser.add_argument("--cells", default="rate", choices=CELL_MODES,
                        help="rate: percent with 95%% interval (default); count: successes/episodes")
    parser.add_argument("--mark", default="overlap", choices=MARK_MODES,
                        help="overlap: bold the best only where its interval overlaps no other (default); "
                             "best: bold the best; none")
    parser.add_argument("--per-task", action="store_true", help="one row per task, one column per run")
    parser.add_argument("--label", action="append", metavar="NAME",
                        help="row name for each run, in order (default: the policy identity)")
    parser.add_argument("--force", action="store_true", help="tabulate runs made under different protocols (marked)")
    parser.add_argument("--robustness", action="store_true",
                        help="perturbed runs (perturb=...): success per dimension x suite with the drop from the clean control")
    parser.add_argument("--per-level", action="store_true", help="with --robustness: one row per dimension and level")
    parser.add_argument("--layout", choices=LAYOUTS,
                        help="with --robustness: a published benchmark's own table (suite=libero_plus / libero_pro_* runs)")
    parser.add_argument("--reference", choices=LAYOUTS,
                        help="with --robustness: append that paper's published rows (implies --layout of the same name)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the table here (atomically) instead of stdout")


def _benchmark_layout(runs, layout: str, reference: str | None) -> str:
    from evalharness.results import benchmark_tables

    if reference is not None and reference != layout:
        raise UserInputError(f"--reference {reference} is not valid with --layout {layout}; allowed: --reference {layout}")
    published = benchmark_tables.load_reference(reference) if reference else None
    labelled = [(run.label, run.records or []) for run in runs]
    if layout == "libero_pro":
        return benchmark_tables.libero_pro_table(labelled, published)
    from envs.libero import plus_data

    prompts = {str((run.summary.metadata.config or {}).get("suite", {}).get("prompt", "published")) for run in runs}
    return benchmark_tables.libero_plus_table(labelled, plus_data.category_of, published, prompt=" / ".join(sorted(prompts)))


def _robustness(runs, args: argparse.Namespace) -> str:
    from evalharness.results.robustness import robustness_table

    if args.format != "md":
        raise UserInputError(f"--format {args.format} is not valid with --robustness; allowed: md")
    missing = [run.source for run in runs if run.records is None]
    if missing:
        raise UserInputError(f"{missing[0]} has no episodes.jsonl; --robustness pairs episodes, so give run folders")
    layout = args.layout or args.reference
    if layout is not None:
        return _benchmark_layout(runs, layout, args.reference)
    return robustness_table([r for run in runs for r in run.records or []], per_level=args.per_level)


def run(args: argparse.Namespace) -> int:
    runs = load_runs(args.runs, args.label)
    if args.robustness:
        text = _robustness(runs, args)
    else:
        for flag, value in (("--per-level", args.per_level), ("--layout", args.layout), ("--reference", args.reference)):
            if value:
                raise UserInputError(f"{flag} is not valid without --robustness; allowed: --robustness {flag}")
        table = build_table(runs, cells=args.cells, mark=args.mark, per_task=args.per_task, force=args.force)
        text = render(table, args.format)
    if args.output:
        write_text_atomic(args.output, text)
    else:
        print(text, end="")
    return 0
