"""The report's figures, drawn with matplotlib (Agg, no display) and returned as PNG bytes.

PNG rather than SVG: a report of libero_90 (90 tasks x several runs, thousands of
episode points) stays a few hundred kB as PNG, while SVG grows with every mark drawn.
Each rate is drawn with its Wilson interval as a whisker, because a bar alone invites
reading differences the intervals do not support (docs/reference/statistics.md).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from evalharness.results.runs import LoadedRun
from evalharness.results.comparison_table import SUITE_COLUMNS

__all__ = ["per_task_chart", "length_chart", "learning_curve_chart"]

_OUTCOME_COLORS = {"success": "#2e7d32", "failure": "#c62828", "error": "#757575"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless: never needs a display
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _task_order(runs: Sequence[LoadedRun]) -> list[tuple[str, int]]:
    keys = {(t.suite, t.task_index) for r in runs for t in r.summary.tasks}
    order = list(SUITE_COLUMNS)
    return sorted(keys, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1]))


def per_task_chart(runs: Sequence[LoadedRun]) -> bytes:
    """Success rate per task, one bar per run, 95% Wilson interval whiskers."""
    plt = _pyplot()
    tasks = _task_order(runs)
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(tasks) * max(1, len(runs)) ** 0.5 + 2), 3.6))
    x = np.arange(len(tasks))
    for i, run in enumerate(runs):
        by_task = {(t.suite, t.task_index): t for t in run.summary.tasks}
        rates, lows, highs = [], [], []
        for key in tasks:
            t = by_task.get(key)
            if t is None or t.rate is None:
                rates.append(np.nan)
                lows.append(0.0)
                highs.append(0.0)
            else:
                rates.append(100 * t.rate)
                lows.append(100 * (t.rate - t.ci_low))
                highs.append(100 * (t.ci_high - t.rate))
        xs = x + (i - (len(runs) - 1) / 2) * width
        bars = ax.bar(xs, rates, width, yerr=[lows, highs], capsize=2, label=run.label, error_kw={"elinewidth": 0.8})
        # A tick at each rate, so that a 0% bar is still visibly there (and not a missing task).
        ax.scatter(xs, rates, marker="_", s=(width * 120) ** 2 / 4, color=bars.patches[0].get_facecolor(), zorder=3)
    ax.set_xticks(x, [f"{SUITE_COLUMNS.get(s, s)} {i}" for s, i in tasks], rotation=90 if len(tasks) > 12 else 0,
                  fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success rate (%)")
    ax.set_title("Success rate per task (whiskers: 95% Wilson interval)", fontsize=10)
    if len(runs) > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def length_chart(runs: Sequence[LoadedRun]) -> bytes | None:
    """Each episode's length (policy steps) by run, coloured by outcome; None without records."""
    with_records = [r for r in runs if r.records]
    if not with_records:
        return None
    plt = _pyplot()
    rng = np.random.default_rng(0)  # fixed jitter: the same runs draw the same picture
    fig, ax = plt.subplots(figsize=(7.0, 0.7 * len(with_records) + 1.6))
    labelled: set[str] = set()
    for row, run in enumerate(with_records):
        for outcome, color in _OUTCOME_COLORS.items():
            steps = [r.steps for r in run.records or [] if r.outcome == outcome]
            if steps:
                y = row + rng.uniform(-0.25, 0.25, len(steps))
                ax.scatter(steps, y, s=14, color=color, alpha=0.7, edgecolors="none",
                           label=None if outcome in labelled else outcome)
                labelled.add(outcome)
    ax.set_yticks(range(len(with_records)), [r.label for r in with_records], fontsize=8)
    ax.set_xlabel("episode length (policy steps)")
    ax.set_title("Success against episode length", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(-0.6, len(with_records) - 0.4)
    return _png(fig)


def _curve(ax, steps: list[int], blocks: list, label: str) -> None:
    """One line of success against step, with each point's Wilson interval as a whisker."""
    points = [(s, b) for s, b in zip(steps, blocks) if b is not None and b.rate is not None]
    if not points:
        return
    xs = [s for s, _ in points]
    rates = [100 * b.rate for _, b in points]
    low = [100 * (b.rate - b.ci_low) for _, b in points]
    high = [100 * (b.ci_high - b.rate) for _, b in points]
    ax.errorbar(xs, rates, yerr=[low, high], marker="o", markersize=4, capsize=3, linewidth=1.2, label=label)


def learning_curve_chart(runs: Sequence[LoadedRun]) -> bytes | None:
    """Success against training step, per suite (pooled) and per task, with 95% Wilson whiskers.

    Drawn for the runs that record a ``training_step`` (``evalharness.evaluate(step=...)``),
    when at least two do; None otherwise.
    """
    stepped = sorted((r for r in runs if r.summary.metadata.training_step is not None),
                     key=lambda r: r.summary.metadata.training_step)
    if len(stepped) < 2:
        return None
    plt = _pyplot()
    steps = [r.summary.metadata.training_step for r in stepped]
    suites = sorted({s for r in stepped for s in r.summary.suites})
    fig, axes = plt.subplots(len(suites), 2, figsize=(10, 3.2 * len(suites)), squeeze=False)
    for row, suite in enumerate(suites):
        pooled, per_task = axes[row]
        _curve(pooled, steps, [r.summary.suites.get(suite) for r in stepped], suite)
        pooled.set_title(f"{SUITE_COLUMNS.get(suite, suite)}: pooled (whiskers: 95% Wilson interval)", fontsize=10)
        tasks = sorted({t.task_index for r in stepped for t in r.summary.tasks if t.suite == suite})
        for index in tasks:
            blocks = [next((t for t in r.summary.tasks if (t.suite, t.task_index) == (suite, index)), None)
                      for r in stepped]
            _curve(per_task, steps, blocks, f"task {index}")
        per_task.set_title(f"{SUITE_COLUMNS.get(suite, suite)}: per task", fontsize=10)
        if len(tasks) <= 12:
            per_task.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        for ax in (pooled, per_task):
            ax.set_ylim(-5, 105)
            ax.set_xlabel("training step")
            ax.set_ylabel("success rate (%)")
            ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)
