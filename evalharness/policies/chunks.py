"""What a policy's actions must be before the env steps them: a finite float (H, 7) array.

The rollout checks every chunk the action pipeline produces; the policy checker uses the
same rule, so a policy that passes ``check_policy`` passes the rollout's check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalharness.errors import InvalidActionError

__all__ = ["validate_chunk"]


def validate_chunk(chunk: Any) -> np.ndarray:
    """The policy's output as a float (H, 7) array, or an InvalidActionError saying why."""
    try:
        array = np.asarray(chunk, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidActionError(f"policy output is not numeric: {exc}") from None
    if array.ndim == 1 and array.shape[0] == 7:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 7 or array.shape[0] < 1:
        raise InvalidActionError(f"policy output has shape {array.shape}; expected (H, 7) with H >= 1")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise InvalidActionError(f"policy output has a non-finite value at step {bad[0]}, dim {bad[1]}: {array[tuple(bad)]}")
    return array
