"""The ``evalharness`` command: subcommands, or an evaluation configured by Hydra.

``evalharness <subcommand> ...`` runs one of :data:`SUBCOMMANDS`; anything else
(``evalharness suite=libero_10 policy=zero``, or ``evalharness eval ...``) is an
evaluation whose arguments are Hydra overrides. ``python -m evalharness`` is the same.

Each subcommand lives in ``evalharness.commands.<module>`` and provides
``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when used, so
``evalharness setup`` works before the simulator does.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from envs.errors import UserInputError

# name -> (module under evalharness.commands, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "setup": ("setup", "install LIBERO's assets and write its config (non-interactive)"),
    "doctor": ("doctor", "check render backend, versions, assets and config"),
    "tasks": ("tasks", "list LIBERO suites and tasks with their gymnasium ids"),
    "decode": ("decode", "decode policy tokens / chunks into robot actions, for debugging"),
    "fit-fast": ("fit_fast", "fit a FAST action tokenizer (BPE) on action chunks from a file"),
    "bench": ("bench", "measure simulation and rendering throughput on this machine"),
    "table": ("table", "paper-style table of one or more runs (Markdown, LaTeX, CSV)"),
    "gate": ("gate", "regression gate: compare a candidate run to a baseline (exit 1 on a regression)"),
    "power": ("power", "episodes a gate needs to see a drop, and the smallest drop a budget can see"),
    "report": ("report", "self-contained HTML report of runs: table, charts, episodes, videos"),
    "serve": ("serve", "serve a policy over the MinT protocol (one model for many workers)"),
    "checkpoint": ("checkpoint", "write a random reference checkpoint (init) or load and check one (check)"),
}


def _fail(message: str) -> int:
    print(f"evalharness: error: {message}", file=sys.stderr)
    return 2


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (not usage + error), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"evalharness: error: {self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def run_subcommand(name: str, argv: list[str]) -> int:
    module_name, help_text = SUBCOMMANDS[name]
    module = importlib.import_module(f"evalharness.commands.{module_name}")
    parser = _OneLineParser(prog=f"evalharness {name}", description=module.__doc__ or help_text,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except UserInputError as exc:
        return _fail(str(exc))


def _usage() -> str:
    lines = ["usage: evalharness [SUBCOMMAND ...] | [eval] [HYDRA OVERRIDES ...]", "", "subcommands:"]
    width = max(len(n) for n in SUBCOMMANDS)
    for name, (_, help_text) in SUBCOMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {help_text}")
    lines += [
        "",
        "evaluation (the default): Hydra overrides, e.g.",
        "  evalharness suite=libero_object policy=scripted suite.episodes_per_task=5",
        "  evalharness --cfg job            # print the resolved config",
        "  evalharness suite=libero_object policy=zero --dry-run   # episodes, time, memory; runs nothing",
        "  evalharness -m suite=libero_spatial,libero_goal policy=zero   # a sweep",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv and argv[0] in SUBCOMMANDS:
        return run_subcommand(argv[0], argv[1:])
    if argv and argv[0] == "eval":
        argv = argv[1:]
    dry_run = "--dry-run" in argv  # plan and print the cost, run nothing (evalharness/engine/dry_run.py)
    argv = [arg for arg in argv if arg != "--dry-run"]
    from evalharness.commands.words import check_command_words

    try:
        check_command_words(argv, [*SUBCOMMANDS, "eval"])
        from evalharness.engine.evaluate import run_hydra

        return run_hydra(argv, dry_run=dry_run)
    except UserInputError as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
