"""Reading the plain dicts that configure the action pipeline.

Hydra hands each group (``decoder``, ``normalize``, ``convert``) over as a plain dict.
These helpers merge it over a step's defaults and turn every mistake (unknown key, wrong
type, value outside its allowed set, missing file) into a one-line
:class:`~evalharness.errors.UserInputError` naming the value and what is allowed, so a
typo in a YAML file stops the run before the first episode instead of silently changing
what is evaluated.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from evalharness.errors import UserInputError, choices_error


def merge(section: str, cfg: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` overridden by ``cfg``; a key of ``cfg`` not in ``defaults`` is an error."""
    given = dict(cfg or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise choices_error(f"{section} parameter", unknown[0], sorted(defaults))
    merged = dict(defaults)
    merged.update(given)
    return merged


def choice(section: str, key: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if value not in allowed:
        raise choices_error(f"{section} {key}", value, allowed)
    return str(value)


def boolean(section: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: true, false")
    return value


def integer(section: str, key: str, value: Any, *, minimum: int | None = None,
            allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        what = "an integer or null" if allow_none else "an integer"
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: {what}")
    if minimum is not None and value < minimum:
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: an integer >= {minimum}")
    return int(value)


def number(section: str, key: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: a finite number")
    if positive and value <= 0:
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: a number > 0")
    return float(value)


def int_list(section: str, key: str, value: Any, *, allow_none: bool = True) -> tuple[int, ...] | None:
    """A list of integers (e.g. the encoded ids of a text marker), or None."""
    if value is None and allow_none:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: a list of integers"
                             + (" or null" if allow_none else ""))
    items = list(value)
    if not items or any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise UserInputError(f"{section} {key} {items!r} is not valid; allowed: a non-empty list of integers")
    return tuple(int(v) for v in items)


def number_or_list(section: str, key: str, value: Any) -> float | tuple[float, ...]:
    """A finite number, or a non-empty list of finite numbers."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(section, key, value)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: a number or a list of numbers")
    items = list(value)
    if not items:
        raise UserInputError(f"{section} {key} [] is not valid; allowed: a number or a non-empty list of numbers")
    return tuple(number(section, f"{key}[{i}]", v) for i, v in enumerate(items))


def existing_file(section: str, key: str, value: Any) -> Path:
    if value is None or value == "":
        raise UserInputError(f"{section} {key} is required; set it to the path of the file")
    if not isinstance(value, (str, Path)):
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: a file path")
    path = Path(value).expanduser()
    if not path.is_file():
        raise UserInputError(f"{section} {key} {str(path)!r} is not an existing file")
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, recorded so a result can be traced to the exact stats/tokenizer."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
