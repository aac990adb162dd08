"""Words on an evaluation's command line that are neither a command nor an override.

``evalharness`` treats everything that does not start with a subcommand as Hydra
overrides. Hydra answers a plain word (``evalharness tabel results/x``, or a subcommand
put after an override, ``evalharness serve.port=8001 serve``) with its override-grammar
error over several lines; :func:`check_command_words` turns that into one line naming
the closest command (``difflib``), before Hydra is imported.

A word is an override here when it has ``=`` (``key=value``, ``+key=value``,
``++key=value``), deletes a key (``~key``), or is an option of Hydra's own command line
(``--cfg job``, ``-m``, ...), including the value of an option that takes one. Hydra's
options are read from its argument parser, so they follow the installed Hydra.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Collection, Iterator

from envs.errors import UserInputError


def _hydra_options() -> tuple[set[str], set[str], dict[str, set[str]]]:
    """(options taking one value, options taking none, option -> values of an optional one)."""
    one: set[str] = set()
    none: set[str] = set()
    optional: dict[str, set[str]] = {}
    try:
        from hydra._internal.utils import get_args_parser

        actions = get_args_parser()._actions
    except (ImportError, AttributeError):  # a Hydra without this parser: its 1.3 options
        one = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
               "--config-dir", "-cd", "--experimental-rerun"}
        return one, none, {"--info": set(), "-i": set()}
    for action in actions:
        for flag in action.option_strings:
            if action.nargs == 0:
                none.add(flag)
            elif action.nargs == "?":
                optional[flag] = set(action.choices or ())
            else:
                one.add(flag)
    return one, none, optional


def _bare_words(argv: list[str]) -> Iterator[tuple[int, str]]:
    """(position, word) of each argument that is neither an override nor an option."""
    takes_value, _, optional = _hydra_options()
    skip_value = False
    optional_values: set[str] | None = None
    for position, arg in enumerate(argv):
        if skip_value:
            skip_value = False
            continue
        if optional_values is not None:
            values, optional_values = optional_values, None
            if arg in values:
                continue
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            if flag in takes_value and "=" not in arg:
                skip_value = True
            elif flag in optional and "=" not in arg:
                optional_values = optional[flag]
            continue
        if "=" in arg or arg.startswith("~"):
            continue
        yield position, arg


def check_command_words(argv: list[str], commands: Collection[str]) -> None:
    """Raise :class:`UserInputError` for the first word of ``argv`` that is neither a
    command in its place nor an override. ``argv`` is an evaluation's arguments (the words
    after ``evalharness``, without a leading ``eval``)."""
    for position, word in _bare_words(argv):
        listed = ", ".join(commands)
        if word in commands:
            rest = argv[:position] + argv[position + 1:]
            fixed = shlex.join(["evalharness", word, *rest])
            raise UserInputError(f"command {word!r} must come first, before any override: {fixed}")
        if word.startswith("+"):
            raise UserInputError(f"override {word!r} has no value; expected {word}=VALUE")
        close = difflib.get_close_matches(word, list(commands), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserInputError(
            f"unknown command {word!r}{hint}; commands: {listed}; "
            "an evaluation takes overrides key=value (evalharness --help)"
        )
