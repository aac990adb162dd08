"""Robust aggregates over many tasks: the interquartile mean with a stratified bootstrap.

For a suite of many tasks (libero_90), a plain mean of task rates is pulled around by a
few tasks at 0% or 100%; rliable's recommendation (Agarwal et al., 2021, "Deep RL at the
edge of the statistical precipice") is the interquartile mean (IQM: the mean of the
middle 50% of task rates) with a *stratified* bootstrap interval, i.e. resampling within
each task so that every task stays in every replicate.

Here the samples within a task are episodes with a binary outcome, so resampling a
task's n episodes with replacement is exactly drawing Binomial(n, k/n) successes: the
bootstrap draws those counts directly (vectorized, no per-episode loop). The generator
is seeded (``seed``, default 0), so the same results always print the same interval;
the interval is the percentile interval of ``reps`` (default 2000) replicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["IQM_BOOTSTRAP_REPS", "IQM_BOOTSTRAP_SEED", "IqmEstimate", "iqm", "iqm_with_interval"]

IQM_BOOTSTRAP_REPS = 2000
IQM_BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class IqmEstimate:
    value: float
    ci_low: float
    ci_high: float
    tasks: int
    reps: int
    seed: int


def _iqm_rows(rates: np.ndarray) -> np.ndarray:
    """IQM of each row (tasks along axis 1), as scipy.stats.trim_mean(rates, 0.25, axis=1)."""
    from scipy.stats import trim_mean

    return np.asarray(trim_mean(rates, 0.25, axis=-1), dtype=float)


def iqm(rates: Sequence[float]) -> float:
    """Interquartile mean of task rates (25% trimmed each side, as rliable)."""
    if not len(rates):
        raise ValueError("iqm of no tasks")
    return float(_iqm_rows(np.asarray(rates, dtype=float)[None, :])[0])


def iqm_with_interval(
    successes: Sequence[int], episodes: Sequence[int], *, confidence: float = 0.95,
    reps: int = IQM_BOOTSTRAP_REPS, seed: int = IQM_BOOTSTRAP_SEED,
) -> IqmEstimate:
    """IQM of per-task rates k_i/n_i with a stratified (per-task) percentile bootstrap interval."""
    k = np.asarray(successes, dtype=np.int64)
    n = np.asarray(episodes, dtype=np.int64)
    if k.shape != n.shape or k.ndim != 1 or not len(k):
        raise ValueError("need one (successes, episodes) pair per task")
    if np.any(n <= 0) or np.any(k < 0) or np.any(k > n):
        raise ValueError("every task needs 0 <= successes <= episodes and episodes > 0")
    rates = k / n
    rng = np.random.default_rng(seed)
    draws = rng.binomial(n[None, :], rates[None, :], size=(reps, len(k))) / n[None, :]
    boot = _iqm_rows(draws)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return IqmEstimate(iqm(rates), float(low), float(high), len(k), reps, seed)
