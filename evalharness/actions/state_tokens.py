"""The pi0-FAST prompt's state: each normalized state value as one of 256 bins.

pi0-FAST's prefix is ``Task: <instruction>, State: <s1> <s2> ...;\\n`` where each state
value (normalized, e.g. with the quantile stats of the ``state`` key) becomes
``digitize(s, linspace(-1, 1, 257)[:-1]) - 1``: bin ``i`` covers
``[i / 128 - 1, (i + 1) / 128 - 1)``, values at or above ``1 - 1/128`` give 255, and
values below -1 give **-1**, which is not a bin at all. openpi writes that -1 into the
prompt as is. Here the choice is explicit (``out_of_range``): ``openpi`` (``policy=mint``'s
default) writes exactly what openpi's ``FASTTokenizer.tokenize`` writes, non-finite
values included (``np.digitize`` puts NaN and +inf in bin 255, -inf in bin -1); ``keep``
does the same for finite values but refuses NaN / inf; ``clip`` clips to [-1, 1] first
(bin 0 where openpi writes -1); ``error`` refuses any value outside [-1, 1]. All but
``error`` report the values outside [-1, 1] (and ``openpi`` the non-finite ones) as an
event, so a state normalization mismatch shows up in the episode's record instead of
quietly degrading the prompt. ``tests/test_fidelity_openpi.py`` proves ``openpi`` against
openpi's own code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalharness.errors import PolicyError, UserInputError, choices_error

N_BINS = 256
OUT_OF_RANGE_CHOICES = ("clip", "keep", "error", "openpi")


def state_edges(n_bins: int = N_BINS) -> np.ndarray:
    """The lower edges of the bins: ``linspace(-1, 1, n_bins + 1)[:-1]``."""
    return np.linspace(-1.0, 1.0, n_bins + 1)[:-1]


@dataclass(frozen=True)
class StateTokens:
    """Bin indices of one state vector, and what was notable about it."""

    bins: tuple[int, ...]
    events: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The bins as the prompt writes them: space-separated integers."""
        return " ".join(str(b) for b in self.bins)


def discretize_state(state: Any, *, out_of_range: str = "clip", n_bins: int = N_BINS) -> StateTokens:
    """Normalized state vector -> bin indices for the pi0-FAST prompt.

    Raises PolicyError for a non-finite value, or for a value outside [-1, 1] when
    ``out_of_range`` is ``error``.
    """
    if out_of_range not in OUT_OF_RANGE_CHOICES:
        raise choices_error("state out_of_range", out_of_range, list(OUT_OF_RANGE_CHOICES))
    values = np.asarray(state, dtype=np.float64)
    if values.ndim != 1:
        raise UserInputError(f"state has shape {values.shape}; allowed: a 1-D vector")
    bad = np.flatnonzero(~np.isfinite(values))
    events: list[str] = []
    if bad.size and out_of_range == "openpi":
        events.append(f"state: {bad.size} of {values.size} normalized state values not finite (first: "
                      f"{float(values[bad[0]])} at index {int(bad[0])}); binned as openpi does "
                      "(NaN and +inf give 255, -inf gives -1)")
    elif bad.size:
        raise PolicyError(f"state value {float(values[bad[0]])} at index {int(bad[0])} is not finite; "
                          "the prompt needs finite normalized state values")
    outside = np.flatnonzero((values < -1.0) | (values > 1.0))
    if outside.size:
        i = int(outside[0])
        summary = (f"{outside.size} of {values.size} normalized state values outside [-1, 1] "
                   f"(first: {float(values[i])} at index {i})")
        if out_of_range == "error":
            raise PolicyError(f"state: {summary}; allowed: -1 <= value <= 1 (out_of_range=error)")
        if out_of_range == "clip":
            values = np.clip(values, -1.0, 1.0)
            events.append(f"state: {summary}; clipped to [-1, 1] before binning")
        else:
            events.append(f"state: {summary}; kept as openpi does (values below -1 give bin -1)")
    bins = np.digitize(values, state_edges(n_bins)) - 1
    return StateTokens(bins=tuple(int(b) for b in bins), events=events)


def pi0_fast_prefix(instruction: str, state: StateTokens) -> str:
    """The pi0-FAST prompt text: lower-cased, stripped instruction with ``_`` as spaces, then the state."""
    cleaned = instruction.strip().replace("_", " ").lower()
    return f"Task: {cleaned}, State: {state.text()};\n"
