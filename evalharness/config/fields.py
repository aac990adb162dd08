"""Field types for settings models whose complaints say what is allowed.

Each type checks one value the way the harness always has (a bool is not an integer, a
number must be finite, an id list holds integers) and raises ``ValueError("allowed: ...")``,
which :func:`evalharness.config.validation.validate_settings` turns into one line naming the
key and the value. They return plain Python values (``int``, ``float``, tuples), so what a
part records in its ``describe()`` is the same whatever the YAML spelled (``256`` or ``256.0``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import PlainValidator

__all__ = ["Bool", "Count", "FiniteFloat", "Int", "IntList", "NonNegativeInt", "NumberOrList", "OptionalCount",
           "OptionalInt", "OptionalIntList", "PositiveFloat", "at_least"]


def _integer(value: Any, *, minimum: int | None = None, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("allowed: an integer or null" if nullable else "allowed: an integer")
    if minimum is not None and value < minimum:
        raise ValueError(f"allowed: an integer >= {minimum}")
    return int(value)


def at_least(minimum: int | None, *, nullable: bool = False) -> PlainValidator:
    """An integer >= ``minimum`` (any integer when ``minimum`` is None), or null when ``nullable``."""
    return PlainValidator(lambda value: _integer(value, minimum=minimum, nullable=nullable))


def _number(value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("allowed: a finite number")
    if positive and value <= 0:
        raise ValueError("allowed: a number > 0")
    return float(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("allowed: true, false")
    return value


def _int_list(value: Any, *, nullable: bool) -> tuple[int, ...] | None:
    if value is None and nullable:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValueError("allowed: a list of integers" + (" or null" if nullable else ""))
    items = list(value)
    if not items or any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise ValueError("allowed: a non-empty list of integers")
    return tuple(int(v) for v in items)


def _number_or_list(value: Any) -> float | tuple[float, ...] | None:
    if value is None:
        return None  # the part says whether it is required
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValueError("allowed: a number or a list of numbers")
    items = list(value)
    if not items:
        raise ValueError("allowed: a number or a non-empty list of numbers")
    return tuple(_number(v) for v in items)


Int = Annotated[int, at_least(None)]
OptionalInt = Annotated[int | None, at_least(None, nullable=True)]
Count = Annotated[int, at_least(1)]
OptionalCount = Annotated[int | None, at_least(1, nullable=True)]
NonNegativeInt = Annotated[int, at_least(0)]
FiniteFloat = Annotated[float, PlainValidator(_number)]
PositiveFloat = Annotated[float, PlainValidator(lambda value: _number(value, positive=True))]
Bool = Annotated[bool, PlainValidator(_boolean)]
IntList = Annotated[tuple[int, ...], PlainValidator(lambda value: _int_list(value, nullable=False))]
OptionalIntList = Annotated[tuple[int, ...] | None, PlainValidator(lambda value: _int_list(value, nullable=True))]
NumberOrList = Annotated[float | tuple[float, ...] | None, PlainValidator(_number_or_list)]
