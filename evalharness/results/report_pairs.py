"""The report's "perturbed vs clean" view: each perturbed episode beside its clean twin.

A perturbed record names its twin (``control_key``); the twin is the unperturbed episode
of the same task, init state and seed, recorded in the same run folder. Seeing the two
videos side by side, with the parameters the perturbed one drew, is how a person tells a
policy that failed because of the perturbation from one that failed anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evalharness.results.records import EpisodeRecord

__all__ = ["describe_perturbation", "format_params", "perturbed_pairs"]


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_value(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def format_params(params: dict[str, Any]) -> str:
    """``group=h, H=-9.312, S=1`` (floats to 4 significant digits, keys sorted)."""
    return ", ".join(f"{k}={_value(v)}" for k, v in sorted(params.items()))


def describe_perturbation(perturbation: dict[str, Any] | None) -> str | None:
    """``camera L1 + light L3`` for a record's ``perturbation``, None when unperturbed."""
    if not perturbation:
        return None
    dims = perturbation.get("dimensions") or {}
    return " + ".join(f"{name} L{d.get('level')}" for name, d in sorted(dims.items()))


def perturbed_pairs(records: Sequence[EpisodeRecord], video_src: Callable[[str | None], str | None]) -> list[dict[str, Any]]:
    """One row per perturbed record: its drawn parameters, its video and its twin's.

    ``video_src`` turns a record's ``video`` into the page's link (None when missing).
    A twin not (yet) recorded, or run with ``perturb.control=false``, is None.
    """
    by_key = {r.key: r for r in records}
    rows = []
    for r in sorted(records, key=lambda r: (r.suite, r.task_index, r.init_state, r.seed)):
        if not r.perturbation:
            continue
        twin = by_key.get(r.control_key) if r.control_key else None
        dims = r.perturbation.get("dimensions") or {}
        rows.append({
            "suite": r.suite, "task_index": r.task_index, "task_name": r.task_name,
            "init_state": r.init_state, "seed": r.seed,
            "perturbation": describe_perturbation(r.perturbation),
            "params": [{"name": name, "level": d.get("level"), "text": format_params(d.get("params") or {})}
                       for name, d in sorted(dims.items())],
            "attempt": r.perturbation.get("attempt", 0),
            "perturbed": _side(r, video_src),
            "clean": None if twin is None else _side(twin, video_src),
            "control_expected": r.control_key is not None,
        })
    return rows


def _side(r: EpisodeRecord, video_src: Callable[[str | None], str | None]) -> dict[str, Any]:
    return {"outcome": r.outcome, "steps": r.steps, "video": r.video, "video_src": video_src(r.video),
            "error_kind": r.error_kind}
