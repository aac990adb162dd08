"""Checking what a policy handed over before any arithmetic touches it.

Every check raises :class:`~evalharness.errors.DecodeError` with one line that names the
offending value and the rule, because these are runtime facts about one policy output
(the episode is recorded as a decode error, the run goes on).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalharness.errors import DecodeError


def token_ids(output: Any, where: str) -> np.ndarray:
    """``output`` as a 1-D int64 array of token ids; floats, ragged or 2-D input is refused."""
    try:
        arr = np.asarray(output)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{where}: output is not a sequence of integer token ids ({exc})") from None
    if arr.ndim != 1:
        raise DecodeError(f"{where}: expected a 1-D sequence of token ids; got an array of shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        first = arr[0]
        example = first.item() if isinstance(first, np.generic) else first
        raise DecodeError(f"{where}: expected integer token ids; got {arr.dtype} values (e.g. {example!r})")
    return arr.astype(np.int64)


def float_chunk(output: Any, where: str) -> np.ndarray:
    """``output`` as a finite 2-D float64 array (H, D) with H, D >= 1."""
    try:
        arr = np.asarray(output, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{where}: output is not a numeric (H, D) action chunk ({exc})") from None
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DecodeError(f"{where}: expected an (H, D) action chunk with H, D >= 1; got shape {arr.shape}")
    check_finite(arr, where)
    return arr


def check_finite(arr: np.ndarray, where: str) -> None:
    """Raise naming the first NaN / infinity and its (step, dim) position."""
    bad = ~np.isfinite(arr)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        position = f"step {index[0]}, dim {index[1]}" if len(index) == 2 else f"index {index}"
        raise DecodeError(f"{where}: value {float(arr[index])} at {position} is not finite; "
                          "every action value must be a finite number")
