"""What the README shows is what today's code prints.

The README's `table` and `gate` examples are rebuilt, through the real CLI, from the two
runs they were made from (``tests/data/readme_runs``: their ``episodes.jsonl`` and
``summary.json``, made by the commands the README prints beside them), and compared line
by line with the README's text. Fast: no simulator, only the readers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
RUNS = Path(__file__).resolve().parent / "data" / "readme_runs"
EXIT_SUFFIX = '; echo "exit $?"'


def _shown_outputs() -> dict[str, tuple[str, list[str]]]:
    """subcommand -> (the command line after '$ ', the lines shown under it) for each
    ```text block of the README that starts with '$ evalharness'."""
    shown = {}
    for block in re.findall(r"^```text\n(.*?)^```$", README.read_text(encoding="utf-8"), flags=re.S | re.M):
        first, *rest = block.rstrip("\n").split("\n")
        if first.startswith("$ evalharness "):
            command = first[2:]
            shown[command.split()[1]] = (command, rest)
    return shown


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with results/scripted and results/zero, as the README's commands name them."""
    root = tmp_path_factory.mktemp("readme")
    for name in ("scripted", "zero"):
        shutil.copytree(RUNS / name, root / "results" / name)
    return root


def _printed(command: str, cwd: Path) -> list[str]:
    echo_exit = command.endswith(EXIT_SUFFIX)
    argv = command.removesuffix(EXIT_SUFFIX).split()[1:]
    proc = subprocess.run([sys.executable, "-m", "evalharness", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.stderr == "", proc.stderr
    lines = proc.stdout.rstrip("\n").split("\n")
    if echo_exit:
        lines.append(f"exit {proc.returncode}")
    else:
        assert proc.returncode == 0
    # Markdown line breaks end some lines with two spaces; the README's copy has none.
    return [line.rstrip() for line in lines]


def test_committed_runs_are_the_documented_ones():
    """The data was made by the README's run commands (tasks 0-1, 3 init states, 64 px),
    with LIBERO's original assets."""
    import json

    for policy in ("scripted", "zero"):
        summary = json.loads((RUNS / policy / "summary.json").read_text())
        config = summary["metadata"]["config"]
        assert summary["metadata"]["policy"]["name"] == policy
        assert config["suite"]["name"] == "libero_object" and list(config["suite"]["tasks"]) == [0, 1]
        assert config["suite"]["episodes_per_task"] == 3 and summary["metadata"]["camera_size"] == 64
        assert summary["metadata"]["assets"]["provenance"] == "original"
        episodes = (RUNS / policy / "episodes.jsonl").read_text().splitlines()
        assert len(episodes) == 6


@pytest.mark.parametrize("subcommand", ["table", "gate"])
def test_readme_shows_what_the_command_prints(workdir, subcommand):
    shown = _shown_outputs()
    assert subcommand in shown, f"no '$ evalharness {subcommand} ...' block in the README"
    command, lines = shown[subcommand]
    assert _printed(command, workdir) == lines
