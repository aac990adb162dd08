"""A word that is neither a command nor an override: one line naming the closest
command, exit status 2, nothing run. Each case runs the real ``evalharness`` command in a
subprocess (no simulator: the check runs before Hydra composes anything)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evalharness.cli import SUBCOMMANDS
from evalharness.commands.words import check_command_words
from envs.errors import UserInputError



def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "hydra.cc" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    return lines[0]


def test_typo_names_the_closest_command(tmp_path):
    line = _one_line(_cli("tabel", "results/x", cwd=tmp_path))
    assert line.startswith("evalharness: error: unknown command 'tabel' (did you mean 'table'?); commands: setup, doctor,")
    assert all(name in line for name in SUBCOMMANDS)
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "results").exists()


def test_subcommand_after_an_override_says_where_it_goes(tmp_path):
    line = _one_line(_cli("serve.port=8001", "serve", cwd=tmp_path))
    assert line == ("evalharness: error: command 'serve' must come first, before any override: "
                    "evalharness serve serve.port=8001")


def test_bare_word_without_a_close_command(tmp_path):
    line = _one_line(_cli("suite=libero_object", "banana", cwd=tmp_path))
    assert line.startswith("evalharness: error: unknown command 'banana'; commands: setup,")
    assert "did you mean" not in line


@pytest.mark.parametrize("argv", [
    ["suite=libero_object", "policy=zero"],
    ["~video", "--cfg", "job"],                       # a deletion, and --cfg's value
    ["-m", "suite=libero_spatial,libero_goal"],
    ["--info", "defaults", "suite=smoke"],            # an optional value of --info
    ["--info", "suite=smoke"],
    ["-cn", "config", "+extra.key=1"],
    ["--config-dir=conf", "policy=zero"],
])
def test_overrides_and_hydra_options_pass(argv):
    check_command_words(argv, [*SUBCOMMANDS, "eval"])  # raises nothing


@pytest.mark.parametrize(("argv", "text"), [
    (["--info", "defaults", "tabel"], "unknown command 'tabel' (did you mean 'table'?)"),
    (["--cfg", "job", "gate"], "command 'gate' must come first"),
    (["policy=zero", "+noise"], "override '+noise' has no value; expected +noise=VALUE"),
    (["suite=smoke", "eval"], "command 'eval' must come first, before any override: evalharness eval suite=smoke"),
])
def test_words_after_options_are_still_checked(argv, text):
    with pytest.raises(UserInputError) as caught:
        check_command_words(argv, [*SUBCOMMANDS, "eval"])
    assert text in str(caught.value)
