"""Perturbed episodes and their clean twins, with parameters drawn from the episode's seed.

For every planned episode the perturbed spec carries ``perturbation``: the canonical JSON
of the dimensions' configs and of ``max_resamples + 1`` candidate parameter sets drawn
in advance, so the parameters are part of its key (and so of resume) and do not depend
on which worker runs it or in what order. Each dimension draws from its own stream,
seeded by (seed, suite, task, init state, dimension), so composing dimensions does not
change what each one draws. The clean twin is the unperturbed spec itself: its key is
the key the same episode has in a ``perturb=none`` run.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from typing import Any

import numpy as np

from envs.libero.catalog import get_task
from evalharness.perturb.config import PerturbConfig, build_parts
from evalharness.plan.spec import EpisodeSpec


def _stream(spec: EpisodeSpec, name: str) -> np.random.Generator:
    words = [zlib.crc32(text.encode()) for text in (spec.suite, spec.task_name, name)]
    return np.random.default_rng(np.random.SeedSequence([spec.seed, spec.init_state, *words]))


def draw_candidates(spec: EpisodeSpec, parts: list[Any], attempts: int) -> list[dict[str, dict[str, Any]]]:
    """``attempts`` parameter sets (the first is used unless the scene is invalid).

    Only physical dimensions are redrawn for a resample (only they can make a scene
    invalid); the others keep their first draw, so e.g. the planned instruction is the
    one the episode runs with whichever candidate is used.
    """
    task = get_task(spec.suite, spec.task_index)
    streams = {p.name: _stream(spec, p.name) for p in parts}
    first = {p.name: p.draw(streams[p.name], task) for p in parts}
    return [first] + [
        {p.name: p.draw(streams[p.name], task) if p.physical else first[p.name] for p in parts}
        for _ in range(attempts - 1)
    ]


def perturbation_json(parts_cfg: dict[str, dict[str, Any]], candidates: list[dict[str, Any]]) -> str:
    return json.dumps({"parts": parts_cfg, "candidates": candidates}, sort_keys=True, separators=(",", ":"))


def perturb_plan(plan: list[EpisodeSpec], config: PerturbConfig) -> list[EpisodeSpec]:
    """The run's episodes: each perturbed spec followed by its clean twin (if ``control``)."""
    if not config.active:
        return plan
    parts = build_parts(config.parts)
    attempts = config.settings.max_resamples + 1
    out = []
    for clean in plan:
        candidates = draw_candidates(clean, parts, attempts)
        instruction = next((c["instruction"] for c in candidates[0].values() if "instruction" in c), clean.instruction)
        perturbed = dataclasses.replace(
            clean,
            instruction=instruction,
            perturbation=perturbation_json(config.parts, candidates),
            control_key=clean.key if config.control else None,
        )
        out.append(perturbed)
        if config.control:
            out.append(clean)
    return out
