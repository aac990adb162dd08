"""List LIBERO suites and tasks: suite, index, gymnasium id, name and instruction."""

from __future__ import annotations

import argparse

from envs.libero.catalog import SUITES, check_suite, suite_tasks
from envs.libero.registration import env_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "suites", nargs="*",
        help=f"suites to list (default: all of {', '.join(SUITES)}; LIBERO-PRO's, e.g. libero_pro_object_swap, by name)",
    )


def run(args: argparse.Namespace) -> int:
    for suite in args.suites or SUITES:
        check_suite(suite)
        tasks = suite_tasks(suite)
        print(f"{suite} ({len(tasks)} tasks)")
        for task in tasks:
            print(f"  {task.index:>2}  {env_id(suite, task.index):<26} {task.instruction}")
    return 0
